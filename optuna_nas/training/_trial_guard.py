"""What every training trial shares (``NASObjective`` and the DARTS search): quiet Lightning
output, telling failures apart (also those re-raised from DDP workers) and Ctrl+C handling."""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Sequence
import contextlib
import logging
import signal
import threading
import warnings

import torch
from torch.multiprocessing import ProcessRaisedException


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


def is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, torch.cuda.OutOfMemoryError):
        return True
    worker = worker_exception(error)
    if worker is not None:
        return worker[0].endswith("OutOfMemoryError") or "out of memory" in worker[1].lower()
    # Other backends (and the CPU allocator) raise a plain RuntimeError.
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


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


def qualified_name(cls: type) -> str:
    """The class name as a traceback's last line spells it."""
    if cls.__module__ in ("builtins", "__main__"):
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def worker_exception(error: BaseException) -> tuple[str, str] | None:
    """``(class name, message)`` of the exception that ended a DDP worker process.

    With ``ddp_spawn``/``ddp_fork``, ``torch.multiprocessing`` re-raises a worker's exception in
    this process as a ``ProcessRaisedException`` that holds only the worker's traceback text.
    """
    if not isinstance(error, ProcessRaisedException):
        return None
    lines = str(error).rstrip().splitlines()
    # The exception text follows the last (indented) frame line of the traceback.
    last_frame = max((i for i, line in enumerate(lines) if line.startswith(" ")), default=-1)
    name, _, message = "\n".join(lines[last_frame + 1 :]).partition(": ")
    return name.strip(), message.strip()


def describe_error(error: BaseException) -> tuple[str, str]:
    """Class name and message of ``error``, or of the DDP worker's exception it reports."""
    worker = worker_exception(error)
    if worker is not None:
        return worker[0].rsplit(".", 1)[-1], worker[1]
    return type(error).__name__, str(error)


def worker_raised(error: BaseException, types: Sequence[type[Exception]]) -> bool:
    """Whether a DDP worker raised an exception of exactly one of ``types``."""
    worker = worker_exception(error)
    return worker is not None and any(worker[0] == qualified_name(t) for t in types)
