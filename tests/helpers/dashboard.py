"""A throwaway optuna-dashboard server on loopback, for tests that read it back.

``serve_dashboard(storage, artifact_dir)`` (a context manager) serves optuna-dashboard's WSGI
app (``optuna_dashboard.wsgi``, the app that ``run_server`` and the ``optuna-dashboard``
command serve) from a thread on ``127.0.0.1`` on a free port the OS picks, yields a
:class:`DashboardServer` and shuts the server down on exit. The ``dashboard_server`` fixture
is that, as a factory: ``server = dashboard_server(storage, artifact_dir)``; every server it
started is stopped after the test.

``evolution_study(store, **create_study_kwargs)`` makes a small NAS study to show: six
NAS-Bench-201 trials of :class:`RegularizedEvolutionSampler` (three random, three mutated
children) whose stand-in objective (:func:`nas_objective`) records the user attributes that
``NASObjective`` records, without training, and uploads each cell diagram to ``store``.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
import contextlib
from dataclasses import dataclass
import json
import threading
from typing import Any
import urllib.request
from wsgiref.simple_server import WSGIRequestHandler
from wsgiref.simple_server import WSGIServer
from wsgiref.simple_server import make_server

import optuna
from optuna.artifacts import FileSystemArtifactStore
import pytest

from optuna_nas.samplers import RegularizedEvolutionSampler
from optuna_nas.search_spaces import create_search_space
from optuna_nas.visualization import upload_cell_diagram


__all__ = [
    "SPACE",
    "DashboardServer",
    "dashboard_server",
    "evolution_study",
    "nas_objective",
    "serve_dashboard",
]


SPACE = create_search_space("nasbench201")


def _score(arch_ops: tuple[str, ...]) -> float:
    return 0.5 + 0.08 * sum(op == "nor_conv_3x3" for op in arch_ops)


def nas_objective(store: FileSystemArtifactStore | None = None) -> Callable[[optuna.Trial], float]:
    """A cheap stand-in for NASObjective: the same user attributes, no training."""

    def objective(trial: optuna.Trial) -> float:
        arch = SPACE.suggest(trial)
        trial.set_user_attr("search_space", SPACE.name)
        trial.set_user_attr("arch", SPACE.to_string(arch))
        if store is not None:
            upload_cell_diagram(trial, arch, artifact_store=store)
        n_convs = sum(op.startswith("nor_conv") for op in arch.ops)
        trial.set_user_attr("n_params", 100_000 + 250_000 * n_convs)
        trial.set_user_attr("flops", 4.56e7 * (1 + n_convs))
        trial.set_user_attr("latency_ms", 0.5 + 0.1 * n_convs)
        curve = [round(_score(arch.ops) * f, 4) for f in (0.6, 0.9, 1.0)]
        for epoch, value in enumerate(curve):
            trial.report(value, epoch)
        trial.set_user_attr("epochs_trained", len(curve))
        trial.set_user_attr("train_time_s", 1.5)
        trial.set_user_attr("val_acc_curve", curve)
        trial.set_user_attr("best_val_acc", max(curve))
        return curve[-1]

    return objective


def evolution_study(store: FileSystemArtifactStore | None = None, **kwargs: Any) -> optuna.Study:
    sampler = RegularizedEvolutionSampler(population_size=3, sample_size=2, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler, **kwargs)
    study.optimize(nas_objective(store), n_trials=6)
    return study


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@dataclass
class DashboardServer:
    """A running optuna-dashboard: its base URL and helpers to read its HTTP API."""

    url: str

    def get(self, path: str, *, timeout: float = 30) -> bytes:
        """The body of ``GET url + path``."""
        with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
            return response.read()

    def get_json(self, path: str) -> Any:
        """``GET url + path`` decoded as JSON."""
        return json.loads(self.get(path))


@contextlib.contextmanager
def serve_dashboard(storage: Any, artifact_dir: str | None = None) -> Iterator[DashboardServer]:
    """Serve optuna-dashboard for ``storage`` (a URL or a storage object) on loopback."""
    import optuna_dashboard

    store = None
    if artifact_dir is not None:
        from optuna.artifacts import FileSystemArtifactStore

        store = FileSystemArtifactStore(artifact_dir)
    app = optuna_dashboard.wsgi(storage, artifact_store=store)
    server: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.daemon = True
    thread.start()
    try:
        yield DashboardServer(url=f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def dashboard_server() -> Iterator[Callable[..., DashboardServer]]:
    """A factory ``(storage, artifact_dir=None) -> DashboardServer``; servers stop after."""
    with contextlib.ExitStack() as stack:

        def start(storage: Any, artifact_dir: str | None = None) -> DashboardServer:
            return stack.enter_context(serve_dashboard(storage, artifact_dir))

        yield start
