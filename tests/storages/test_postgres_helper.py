"""The throwaway PostgreSQL server of the tests and benchmarks (benchmarks/_postgres.py)."""

from __future__ import annotations

import _postgres  # benchmarks/ is on pyproject's pythonpath
import pytest


def test_no_binaries_is_postgres_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_postgres.shutil, "which", lambda name: None)
    monkeypatch.setattr(_postgres.glob, "glob", lambda pattern: [])
    with pytest.raises(_postgres.PostgresUnavailable, match="apt-get install postgresql"):
        _postgres.find_server_binaries()
    with pytest.raises(_postgres.PostgresUnavailable):
        _postgres.PostgresServer.start()


@pytest.mark.postgres
def test_fresh_databases_are_empty_and_separate(postgres_server, postgres_db_url: str) -> None:
    import sqlalchemy

    other = postgres_server.create_database()
    assert other != postgres_db_url and other.startswith(
        "postgresql+psycopg2://postgres@127.0.0.1:"
    )
    for url in (postgres_db_url, other):
        engine = sqlalchemy.create_engine(url)
        try:
            assert sqlalchemy.inspect(engine).get_table_names() == []
        finally:
            engine.dispose()
    postgres_server.drop_database(other.rsplit("/", 1)[1])
    with pytest.raises(ValueError, match="database name"):
        postgres_server.create_database("Bad-Name")
