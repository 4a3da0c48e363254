"""A real browser on optuna-dashboard: the trial page shows the cell diagram and the NAS note.

Playwright drives Debian's headless chromium (``/usr/bin/chromium``, or ``$CHROMIUM``) through
``executable_path``, so no ``playwright install`` is needed. Without chromium or the
``playwright`` package the test is skipped, with the reason; when the environment variable
``CI`` is set it fails instead (``.ci/run`` installs chromium; ``playwright`` is in the test
extra).

The full-page screenshot goes to ``$OPTUNA_NAS_SCREENSHOT_DIR/dashboard_trial.png`` when that
variable is set, else to pytest's ``tmp_path``; its path is printed (``pytest -s`` shows it).
The README's picture is made with::

    OPTUNA_NAS_SCREENSHOT_DIR=docs/images python -m pytest -s tests/visualization/test_browser.py
"""

from __future__ import annotations

from collections.abc import Callable
import os
from pathlib import Path
import shutil
from typing import Any

from dashboard import DashboardServer  # tests/helpers/
from dashboard import dashboard_server  # noqa: F401  (the fixture)
from dashboard import evolution_study
from optuna.artifacts import FileSystemArtifactStore
import pytest

from optuna_nas.dashboard import annotate_study
from optuna_nas.dashboard import trial_url


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but {reason}")
    pytest.skip(reason)


def _chromium() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        _unavailable(f"chromium is not installed (looked for {path!r}; set $CHROMIUM)")
    return path


def _sync_playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install playwright)")
    return sync_playwright


def test_trial_page_shows_diagram_and_note(
    tmp_path: Path,
    dashboard_server: Callable[..., DashboardServer],  # noqa: F811
) -> None:
    executable = _chromium()
    sync_playwright = _sync_playwright()
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    study = evolution_study(
        FileSystemArtifactStore(str(artifacts)), storage=storage, study_name="nas-dashboard"
    )
    annotate_study(study)
    child = next(t for t in study.trials if "evolution:parent" in t.user_attrs)
    parent = child.user_attrs["evolution:parent"]
    server = dashboard_server(storage, str(artifacts))

    out_dir = Path(os.environ.get("OPTUNA_NAS_SCREENSHOT_DIR") or tmp_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    screenshot = out_dir / "dashboard_trial.png"
    with sync_playwright() as p:
        # Root in a container: no sandbox; a small /dev/shm there would crash the renderer.
        browser = p.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        try:
            # Tall enough for the note and the artifact card (the page scrolls inside a pane,
            # which a full-page screenshot does not unroll).
            page = browser.new_page(viewport={"width": 1280, "height": 2100})
            page.goto(server.url + trial_url(study, child.number), wait_until="networkidle")
            page.get_by_text(f"Trial {child.number} · COMPLETE").wait_for(timeout=30_000)
            assert page.get_by_text("Evolution", exact=False).first.is_visible()
            assert page.get_by_text(child.user_attrs["arch"]).first.is_visible()
            image = page.locator("img[alt$='.svg']").first
            image.wait_for(timeout=30_000)
            page.wait_for_function(
                "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
            )
            box = image.bounding_box()
            assert box is not None and box["width"] >= 150, box
            # The note shows the diagram at its natural size, where every label is readable.
            in_note = page.locator(f"img[alt='cell diagram of trial {child.number}']")
            in_note.wait_for(timeout=30_000)
            page.wait_for_function(
                "img => img.complete && img.naturalWidth > 0", arg=in_note.element_handle()
            )
            note_box = in_note.bounding_box()
            assert note_box is not None and note_box["width"] >= 300, note_box
            page.screenshot(path=str(screenshot), full_page=True)
            print(f"\ndashboard screenshot: {screenshot}")

            # The note's parent link opens the parent's page (the dashboard's trial URL).
            page.get_by_role("link", name=f"trial {parent}").first.click()
            page.get_by_text(f"Trial {parent} · COMPLETE").wait_for(timeout=30_000)
            assert page.url.endswith(f"trials?numbers={parent}")
        finally:
            browser.close()
    assert screenshot.stat().st_size > 10_000
