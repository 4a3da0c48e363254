"""``python -m optuna_nas``: the ``optuna-nas`` command line."""

import sys

from optuna_nas.cli import main


if __name__ == "__main__":
    sys.exit(main())
