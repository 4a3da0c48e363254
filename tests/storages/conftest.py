"""Worker processes for the storage tests (``_worker.py`` beside this file), as a fixture."""

from __future__ import annotations

from collections.abc import Iterator
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

import pytest


WORKER = Path(__file__).resolve().with_name("_worker.py")
# The checkout that holds this test file: worker processes import optuna_nas from it.
REPO_ROOT = Path(__file__).resolve().parents[2]


class Workers:
    """Starts ``_worker.py`` processes; the test's teardown kills those still running."""

    def __init__(self, base: Path) -> None:
        self._base = base
        self._rounds = 0
        self.signal_dir = base
        self.new_round()
        self.processes: list[subprocess.Popen[str]] = []
        path = os.environ.get("PYTHONPATH")
        self.env = {
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT) + (os.pathsep + path if path else ""),
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }

    def new_round(self) -> None:
        """A fresh signal folder (for another ``ready``/``go`` barrier)."""
        self._rounds += 1
        self.signal_dir = self._base / f"signals_{self._rounds}"
        self.signal_dir.mkdir()

    def start(self, mode: str, *args: object) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, str(WORKER), mode, *map(str, args)],
            env=self.env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.processes.append(process)
        return process

    def go(self, n: int, timeout: float = 120.0) -> None:
        """Wait until ``n`` workers wrote ``ready_*``, then let them all start at once."""
        deadline = time.monotonic() + timeout
        while len(list(self.signal_dir.glob("ready_*"))) < n:
            self._check_alive(deadline)
        (self.signal_dir / "go").touch()

    def wait_for_file(self, name: str, timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        path = self.signal_dir / name
        while not path.exists():
            self._check_alive(deadline)
        return path.read_text()

    def _check_alive(self, deadline: float) -> None:
        for process in self.processes:
            if process.poll() not in (None, 0):
                _, err = process.communicate()
                pytest.fail(f"worker exited with {process.returncode}:\n{err[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail("workers did not get ready in time")
        time.sleep(0.02)

    def finish(self, process: subprocess.Popen[str], timeout: float = 180.0) -> str:
        """Wait for ``process``; fail the test with its stderr unless it exited with 0."""
        try:
            _, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate()
            pytest.fail(f"worker still running after {timeout} s:\n{err[-3000:]}")
        assert process.returncode == 0, f"worker exited with {process.returncode}:\n{err[-3000:]}"
        return err

    def sigkill(self, process: subprocess.Popen[str]) -> None:
        os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)
        assert process.returncode == -signal.SIGKILL
        self.processes.remove(process)  # killed on purpose: not a failure of later waits

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.communicate(timeout=30)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    launcher = Workers(tmp_path)
    try:
        yield launcher
    finally:
        launcher.close()
