"""What every Lightning fit of a trial shares (``NASObjective`` and the DARTS search): quiet
output and Ctrl+C handling. How the trial ends on an exception is
:mod:`optuna_nas.trial_outcome`'s policy."""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import logging
import signal
import threading
import warnings


_QUIET_LOGGERS = ("lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning")


@contextlib.contextmanager
def quiet_lightning(enabled: bool) -> Iterator[None]:
    """Silence Lightning's per-fit banners ("GPU available ...") and hints for one trial."""
    if not enabled:
        yield
        return
    loggers = [logging.getLogger(name) for name in _QUIET_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            # In-memory data needs no workers; Lightning's hint about them is noise here.
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            # ChildModule logs per epoch only, so the per-step logging interval does not matter.
            warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
            # Lightning 2.6 on recent torch warns about its own use of torch's pytree API.
            warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


@contextlib.contextmanager
def restore_sigint() -> Iterator[None]:
    """Turn Lightning's Ctrl+C handling back into a plain ``KeyboardInterrupt``.

    On Ctrl+C, ``Trainer.fit`` ignores SIGINT for the rest of the process and calls
    ``sys.exit(1)``; inside ``study.optimize`` Optuna should instead see the usual
    ``KeyboardInterrupt`` (and a second Ctrl+C must still work).
    """
    in_main = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGINT) if in_main else None
    try:
        yield
    except SystemExit as exit_:
        if in_main and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            signal.signal(signal.SIGINT, handler)
            raise KeyboardInterrupt from exit_
        raise
