"""What every Lightning fit of a trial shares (``NASObjective`` and the DARTS search): the
Trainer defaults, quiet output and Ctrl+C handling. How the trial ends on an exception is
:mod:`optuna_nas.trial_outcome`'s policy."""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
import contextlib
import copy
import logging
import signal
import threading
from typing import TYPE_CHECKING
from typing import Any
import warnings


if TYPE_CHECKING:
    import lightning.pytorch as pl


_QUIET_LOGGERS = ("lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning")
#: The ``lightning.Trainer`` defaults of one trial.
TRIAL_TRAINER_DEFAULTS: Mapping[str, Any] = {
    "accelerator": "auto",
    "devices": 1,
    "enable_checkpointing": False,
    "logger": False,
    "enable_model_summary": False,
    "enable_progress_bar": False,
    # The same code validates every network: the sanity check would only cost time.
    "num_sanity_val_steps": 0,
}


def trial_trainer_kwargs(
    trainer_kwargs: Mapping[str, Any], callbacks: Sequence[pl.Callback]
) -> dict[str, Any]:
    """``lightning.Trainer`` arguments of one trial: the defaults, updated by ``trainer_kwargs``.

    The callbacks are ``callbacks`` (the trial's own: pruning, recording) followed by fresh
    deep copies of the user's ``trainer_kwargs["callbacks"]``, so that stateful ones (e.g.
    ``EarlyStopping``) do not leak state from one trial into the next.
    """
    kwargs = {**TRIAL_TRAINER_DEFAULTS, **trainer_kwargs}
    user_callbacks = copy.deepcopy(list(kwargs.pop("callbacks", None) or []))
    kwargs["callbacks"] = [*callbacks, *user_callbacks]
    return kwargs


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

    On Ctrl+C, ``Trainer.fit`` ignores SIGINT while it shuts down and then calls
    ``sys.exit(1)`` (Lightning 2.6 restores the SIGINT handler in its teardown; older releases
    left SIGINT ignored for the rest of the process). Optuna does not catch ``SystemExit``, so
    the trial would stay RUNNING; inside ``study.optimize`` Optuna must instead see the usual
    ``KeyboardInterrupt`` (which FAILs the trial), and a second Ctrl+C must still work.
    """
    in_main = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGINT) if in_main else None
    try:
        yield
    except SystemExit as exit_:
        # Lightning exits while handling the KeyboardInterrupt: it is the exit's context.
        interrupted = isinstance(exit_.__context__, KeyboardInterrupt)
        if in_main and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            signal.signal(signal.SIGINT, handler)
            interrupted = True
        if interrupted:
            raise KeyboardInterrupt from exit_
        raise
