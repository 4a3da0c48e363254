"""Storages for long, many-worker NAS runs: crashes cost only the crashed trial.

:func:`create_storage` opens an Optuna storage from a URL (or returns a storage object as it
is) with Optuna's heartbeat **on by default** for database storages: every running trial
writes a heartbeat; when a worker is killed (SIGKILL, a lost machine, a preempted job), the
next trial started by any worker finds the trial whose heartbeat is older than the grace
period, marks it FAIL with a ``fail_reason`` user attribute saying it went stale, and queues
it once more with the same parameters (Optuna's heartbeat-stale retry callback, keeping its
reported learning curve). Samplers never learn from the FAIL trial; the re-run is an ordinary
trial with fixed parameters. With :class:`~optuna_nas.training.NASObjective`'s
``checkpoint_dir``, the re-run resumes training from the stale trial's last epoch.

Storage URLs:

- ``sqlite:///nas.db``, ``postgresql://user@host/db``, ``mysql://...``: an RDB storage
  (heartbeat on);
- a path ending in ``.log`` or ``.journal`` (or ``journal:PATH``): Optuna's JournalStorage on
  a file, for many processes on one machine without a database server. Optuna's journal
  storage has no heartbeat, so a killed worker's trial stays RUNNING there;
- ``grpc://host:port``: Optuna's gRPC storage proxy (``optuna.storages.run_grpc_proxy_server``
  in front of an RDB storage), for very many workers; heartbeats are not sent through the proxy.

Create the study **once** before starting workers (``optuna.create_study(...,
load_if_exists=True)`` in the launching process, as ``optuna-nas worker`` does): several
processes creating the schema of an empty database at the same moment can race (PostgreSQL's
``DuplicateTable``). :func:`create_storage` also retries that race itself.

Example:

    .. code-block:: python

        import optuna

        from optuna_nas.storages import create_storage

        storage = create_storage("sqlite:///nas.db")  # heartbeat every 60 s, grace 120 s
        study = optuna.create_study(storage=storage, study_name="nas", load_if_exists=True)
"""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING
from typing import Any
import warnings

import optuna
from optuna.storages import BaseStorage
from optuna.storages import RDBStorage

from optuna_nas import _optuna_compat
from optuna_nas._validation import check_int


if TYPE_CHECKING:
    from optuna.study import Study
    from optuna.trial import FrozenTrial


__all__ = [
    "DEFAULT_GRACE_PERIOD",
    "DEFAULT_HEARTBEAT_INTERVAL",
    "STALE_REASON_PREFIX",
    "create_storage",
    "retried_trial_number",
]

#: Seconds between two heartbeats of a running trial (Optuna's unit).
DEFAULT_HEARTBEAT_INTERVAL = 60
#: Seconds without a heartbeat after which a running trial is stale (Optuna's default: twice
#: the interval).
DEFAULT_GRACE_PERIOD = 120
#: How a stale trial's ``fail_reason`` begins.
STALE_REASON_PREFIX = "stale:"
# Attributes describing how the stale run ended, which its re-run must not inherit.
_OUTCOME_ATTRS = ("fail_reason", "pruned_reason")
_JOURNAL_SUFFIXES = (".log", ".journal")
_SCHEMA_RACE_ATTEMPTS = 5


def create_storage(
    storage: str | BaseStorage,
    *,
    heartbeat_interval: int | None = DEFAULT_HEARTBEAT_INTERVAL,
    grace_period: int | None = None,
    max_retry: int = 1,
) -> BaseStorage:
    """Open an Optuna storage for a NAS run, with the heartbeat on.

    Args:
        storage: A storage URL (see the module docstring) or an Optuna storage object, which is
            returned unchanged (configure its heartbeat yourself).
        heartbeat_interval: Seconds between heartbeats of a running trial, for RDB storages
            (journal and gRPC storages have no heartbeat in Optuna: the three heartbeat
            arguments are checked but not used there); ``None`` turns the heartbeat (and so
            the detection of killed workers) off.
        grace_period: Seconds without a heartbeat after which a running trial is failed as
            stale; default ``2 * heartbeat_interval``; it must be longer than the interval.
            Make it longer than any pause of a healthy worker (e.g. a long data loading step
            in the main thread does not stop the heartbeat thread, but a frozen machine does).
        max_retry: How many times a stale trial is queued again with the same parameters
            (0: never).

    Returns:
        The storage.

    Raises:
        ValueError: On a bad argument, or a URL Optuna cannot open: malformed, an unknown
            dialect, a missing database driver (the one-line message names the URL).
        sqlalchemy.exc.OperationalError: A well-formed database URL whose database cannot be
            reached (a server down, a missing folder of a SQLite file), as Optuna raises it.
    """
    if heartbeat_interval is not None:
        check_int("heartbeat_interval", heartbeat_interval, minimum=1)
    if grace_period is not None:
        check_int("grace_period", grace_period, minimum=1)
        if heartbeat_interval is None:
            raise ValueError(
                f"grace_period={grace_period!r} needs a heartbeat, but heartbeat_interval is None."
            )
        if grace_period <= heartbeat_interval:
            raise ValueError(
                f"grace_period must be longer than heartbeat_interval={heartbeat_interval!r} "
                f"(or every running trial looks stale), got {grace_period!r}."
            )
    check_int("max_retry", max_retry, minimum=0)
    if isinstance(storage, BaseStorage):
        return storage
    if not isinstance(storage, str) or not storage.strip():
        raise ValueError(f"storage must be a storage URL or an Optuna storage, got {storage!r}")
    if storage != storage.strip() or any(not c.isprintable() for c in storage):
        raise ValueError(f"storage {storage!r}: the URL has surrounding blanks or control chars")

    scheme, separator, _ = storage.partition("://")
    if storage.startswith("journal:") or (not separator and storage.endswith(_JOURNAL_SUFFIXES)):
        return _open_journal(storage, storage.removeprefix("journal:"))
    if scheme == "grpc" and separator:
        return _open_grpc(storage)
    if not separator or not scheme:
        raise ValueError(
            f"storage {storage!r} is not a storage URL: expected e.g. sqlite:///nas.db, "
            "postgresql://user@host/db, a journal file ending in .log, or grpc://host:port"
        )

    heartbeat: dict[str, Any] = {}
    if heartbeat_interval is not None:
        heartbeat = {
            "heartbeat_interval": heartbeat_interval,
            "grace_period": grace_period or 2 * heartbeat_interval,
            _optuna_compat.STALE_TRIAL_CALLBACK_ARG: _RetryStaleTrial(max_retry=max_retry),
        }
    return _open_rdb(storage, heartbeat)


def retried_trial_number(trial: FrozenTrial | optuna.Trial) -> int | None:
    """The number of the first trial of which ``trial`` is a heartbeat re-run, else ``None``.

    A stale trial re-run several times points back to the original trial, so the original's
    number keys what the re-runs share (e.g. a training checkpoint).
    """
    if isinstance(trial, optuna.Trial):
        attrs = trial.study._storage.get_trial_system_attrs(trial._trial_id)
    else:
        attrs = trial.system_attrs
    number = attrs.get("failed_trial")
    return None if number is None else int(number)


def _open_journal(url: str, path: str) -> BaseStorage:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    if not path:
        raise ValueError(f"storage {url!r}: expected journal:PATH with a file path")
    try:
        return JournalStorage(JournalFileBackend(path))
    except OSError as error:
        raise ValueError(f"Cannot open storage {url!r}: {_one_line(error)}") from error


def _open_grpc(url: str) -> BaseStorage:
    from optuna.storages import GrpcStorageProxy

    host, _, port = url.removeprefix("grpc://").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"storage {url!r}: expected grpc://HOST:PORT")
    try:
        return GrpcStorageProxy(host=host, port=int(port))
    except ImportError as error:  # grpcio is an optional dependency of Optuna
        raise ValueError(f"Cannot open storage {url!r}: {_one_line(error)}") from error


def _open_rdb(url: str, heartbeat: dict[str, Any]) -> BaseStorage:
    # Several workers starting on an empty database race to create the schema (PostgreSQL
    # raises DuplicateTable / a unique violation on its catalog, SQLite a unique violation on
    # alembic_version or "table already exists"); the loser only has to retry.
    from sqlalchemy.exc import ArgumentError
    from sqlalchemy.exc import IntegrityError
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.exc import ProgrammingError

    for attempt in range(_SCHEMA_RACE_ATTEMPTS):
        try:
            with warnings.catch_warnings():
                # Optuna flags its heartbeat as experimental; here it is the documented default.
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return _HeartbeatRDBStorage(url, **heartbeat)
        # SQLite reports a table created meanwhile as an OperationalError ("table ... already
        # exists"); any other OperationalError (a server down) is raised as it is.
        except (IntegrityError, OperationalError, ProgrammingError) as error:
            if attempt + 1 == _SCHEMA_RACE_ATTEMPTS or not _is_schema_race(error):
                raise
            time.sleep(0.2 * (attempt + 1))
        except (
            ValueError,
            ImportError,
            ArgumentError,  # no such dialect (foo://), an unparsable URL
            optuna.exceptions.StorageInternalError,
        ) as error:
            raise ValueError(f"Cannot open storage {url!r}: {_one_line(error)}") from error
    raise AssertionError("unreachable")


def _is_schema_race(error: Exception) -> bool:
    text = str(error).lower()
    return any(sign in text for sign in ("already exists", "duplicate", "unique constraint"))


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


class _HeartbeatRDBStorage(RDBStorage):
    """Optuna's RDB storage, writing a ``fail_reason`` on each stale trial before it fails.

    Optuna fails a stale trial (``optuna.storages.fail_stale_trials``) and only then calls the
    stale-trial callback, when a finished trial's attributes can no longer be written; the
    stale trials are found here, while they are still RUNNING.
    """

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        stale = super()._get_stale_trial_ids(study_id)
        reason = (
            f"{STALE_REASON_PREFIX} no heartbeat for over {self.grace_period} s (its worker "
            "was killed, lost or hung)"
        )
        for trial_id in stale:
            try:
                self.set_trial_user_attr(trial_id, "fail_reason", reason)
            except optuna.exceptions.UpdateFinishedTrialError:
                pass  # another worker failed it first
        return stale


class _RetryStaleTrial:
    """Optuna's heartbeat-stale retry with the learning curve kept and the outcome dropped.

    The re-run inherits the stale trial's parameters, user attributes (architecture, costs)
    and intermediate values (the curve continues where the checkpoint resumes), but not its
    ``fail_reason``.
    """

    def __init__(self, *, max_retry: int) -> None:
        self.max_retry = max_retry

    def __call__(self, study: Study, trial: FrozenTrial) -> None:
        if self.max_retry == 0:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            retry = _optuna_compat.RetryStaleTrialCallback(
                max_retry=self.max_retry, inherit_intermediate_values=True
            )
        rerun = copy.deepcopy(trial)
        rerun.user_attrs = {k: v for k, v in trial.user_attrs.items() if k not in _OUTCOME_ATTRS}
        retry(study, rerun)
