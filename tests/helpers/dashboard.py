"""A throwaway optuna-dashboard server on loopback, for tests that read it back.

``serve_dashboard(storage, artifact_dir)`` (a context manager) serves optuna-dashboard's WSGI
app (``optuna_dashboard.wsgi``, the app that ``run_server`` and the ``optuna-dashboard``
command serve) from a thread on ``127.0.0.1`` on a free port the OS picks, yields a
:class:`DashboardServer` and shuts the server down on exit. The ``dashboard_server`` fixture
is that, as a factory: ``server = dashboard_server(storage, artifact_dir)``; every server it
started is stopped after the test.
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

import pytest


__all__ = ["DashboardServer", "dashboard_server", "serve_dashboard"]


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
