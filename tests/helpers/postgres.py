"""Pytest fixtures for a throwaway PostgreSQL server (registered in ``tests/conftest.py``).

- ``postgres_server`` (session): a server started for the test session (see
  ``benchmarks/_postgres.py``: initdb into a temporary folder, 127.0.0.1 on a free port, trust
  authentication, as the ``postgres`` system user when run as root), stopped and removed at the
  end of the session.
- ``postgres_url`` (session): the URL of that server's ``postgres`` database.
- ``postgres_db_url`` (function): a fresh, empty database for one test, e.g.
  ``postgresql+psycopg2://postgres@127.0.0.1:PORT/test_123_4``, dropped after it.

Without PostgreSQL's server binaries the tests that use them are skipped, with the reason;
when the environment variable ``CI`` is set they fail instead (CI installs PostgreSQL, see
``.ci/run``). Any other problem (the server does not start, psycopg2 is missing) is an error.
Mark such tests ``@pytest.mark.postgres`` (``-m postgres`` selects them).
"""

from __future__ import annotations

from collections.abc import Iterator
import os

from _postgres import PostgresServer  # benchmarks/ is on pyproject's pythonpath
from _postgres import PostgresUnavailable
import pytest


__all__ = ["postgres_db_url", "postgres_server", "postgres_url"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server for the session; skips (fails under CI) without one."""
    try:
        server = PostgresServer.start()
    except PostgresUnavailable as error:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but PostgreSQL is not installed: {error}")
        pytest.skip(str(error))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of the session server's ``postgres`` database."""
    return postgres_server.url()


@pytest.fixture
def postgres_db_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database of the session server, for one test."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url.rsplit("/", 1)[1])
