"""From search to a trained model with the CLI alone: search -> export -> retrain -> dashboard.

The flow of a new user, on the embedded digits and on a generated image folder: ``optuna-nas
search`` keeps the best trials' weights, ``export`` writes architecture.json + weights +
ONNX (and ``load_model`` rebuilds the trained network: same outputs as ONNX Runtime's),
``retrain --from`` trains it with its space's protocol (shortened) and records the result in
the study, and ``optuna-nas dashboard`` serves the notes, plots and diagrams over HTTP.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import socket
import subprocess
import sys
import time
from typing import Any
import urllib.error
import urllib.request

import numpy as np
import optuna
import pytest
import torch

from optuna_nas import cli
from optuna_nas.export import load_architecture
from optuna_nas.export import load_model
from optuna_nas.retrain import retrain_results
from optuna_nas.search_spaces import create_search_space


ROOT = Path(__file__).resolve().parents[1]
TINY_NETWORK = ["--channels", "4", "--epochs", "1", "--batch-size", "32", "--accelerator", "cpu"]
# NAS-Bench-201's protocol, shortened to one epoch of the search's tiny network.
SMOKE_RETRAIN = ["--epochs", "1", "--build-args", '{"channels": 4, "cells_per_stage": 1}']


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def _run(*argv: str) -> None:
    assert cli.main(list(argv)) == 0, argv


def _search(storage: str, *data: str, n_trials: int = 3) -> optuna.Study:
    _run(
        "search",
        "--storage",
        storage,
        "--sampler",
        "evolution",
        "--n-trials",
        str(n_trials),
        "--keep-weights",
        "2",
        "--no-progress-bar",
        *data,
        *TINY_NETWORK,
    )
    return optuna.load_study(study_name=cli.DEFAULT_STUDY_NAME, storage=storage)


def _check_export(folder: Path, study: optuna.Study) -> Any:
    exported = load_architecture(folder)
    best = max(
        (t for t in study.trials if t.state.name == "COMPLETE"),
        key=lambda t: (float(t.value or 0.0), -t.number),
    )
    assert exported.source["trial_number"] == best.number
    assert exported.arch == best.user_attrs["arch"]
    assert {"architecture.json", "search.json", "weights.pt", "model.onnx"} <= set(
        os.listdir(folder)
    )
    # The folder alone rebuilds the trained network: the kept weights, and the ONNX file runs
    # to the same logits.
    model = load_model(folder)
    kept = torch.load(best.user_attrs["weights_path"], weights_only=True)
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(tensor, kept[name])
    import onnxruntime

    x = torch.randn(3, exported.in_channels, exported.image_size, exported.image_size)
    session = onnxruntime.InferenceSession(str(folder / "model.onnx"))
    (onnx_logits,) = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(onnx_logits, model(x).numpy(), atol=1e-5)
    return best


def _check_retrain(folder: Path, storage: str, best: Any) -> None:
    out = folder / "retrain"
    _run("retrain", "--from", str(folder), "--out", str(out), "--no-progress-bar", *SMOKE_RETRAIN)
    retrained = load_architecture(out)
    assert retrained.arch == best.user_attrs["arch"]
    assert retrained.build_kwargs == {"channels": 4, "cells_per_stage": 1}
    assert retrained.source["retrain"]["epochs"] == 1
    assert (out / "checkpoints" / "last.ckpt").is_file()
    model = load_model(out)
    assert sum(p.numel() for p in model.parameters()) > 0
    # Recorded in the search's study, next to the search accuracy, and in the trial's note.
    study = optuna.load_study(study_name=cli.DEFAULT_STUDY_NAME, storage=storage)
    recorded = retrain_results(study)[best.number]
    assert recorded["epochs"] == 1
    assert 0.0 <= recorded["test_acc"] <= 1.0
    system_attrs = study._storage.get_study_system_attrs(study._study_id)
    notes = [v for k, v in system_attrs.items() if "note" in k]
    assert any("Retrained" in json.dumps(v) for v in notes)


def test_search_export_retrain_on_the_embedded_digits(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    study = _search(storage, "--dataset", "digits", "--subset", "200", "--image-size", "8")
    assert study.metric_names == ["val_acc"]
    kept = [t.number for t in study.trials if "weights_path" in t.user_attrs]
    assert kept  # the best trials keep their weights (--keep-weights 2)
    folder = tmp_path / "best_model"
    _run("export", "--storage", storage, "--trial", "best", "--out", str(folder))
    best = _check_export(folder, study)
    # From another working directory: the export knows its study's storage (absolute path).
    os.chdir(tmp_path / "best_model")
    _check_retrain(folder, storage, best)


def test_search_export_retrain_on_an_image_folder(tmp_path: Path) -> None:
    from cli_helpers import make_image_folder

    images = make_image_folder(tmp_path / "images", classes=3, per_class=10, size=12)
    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    study = _search(storage, "--dataset", f"imagefolder:{images}", "--image-size", "8")
    assert study.user_attrs["demo_config"]["dataset"] == f"imagefolder:{images}"
    folder = tmp_path / "best_model"
    _run("export", "--storage", storage, "--out", str(folder))
    best = _check_export(folder, study)
    assert load_architecture(folder).num_classes == 3
    assert load_architecture(folder).in_channels == 3  # RGB shapes
    # retrain reads the image folder from the export's search.json.
    _check_retrain(folder, storage, best)


def test_retrain_a_trial_of_the_study_directly(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    study = _search(
        storage, "--dataset", "digits", "--subset", "200", "--image-size", "8", n_trials=2
    )
    number = next(t.number for t in study.trials if t.state.name == "COMPLETE")
    out = tmp_path / "retrained"
    _run(
        "retrain",
        "--storage",
        storage,
        "--trial",
        str(number),
        "--out",
        str(out),
        "--no-progress-bar",
        *SMOKE_RETRAIN,
    )
    assert load_architecture(out).source["trial_number"] == number
    assert number in retrain_results(
        optuna.load_study(study_name=study.study_name, storage=storage)
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["export", "--trial", "7", "--out", "x"], "7"),
        (["export", "--trial", "seven", "--out", "x"], "'seven'"),
        (["retrain"], "--from DIR"),
        (["retrain", "--from", "nowhere"], "nowhere"),
        (["retrain", "--trial", "0", *SMOKE_RETRAIN, "--protocol-args", '{"momentum": 2}'], "2"),
        (["retrain", "--trial", "0", "--protocol", "resnet"], "resnet"),
    ],
    ids=["no-such-trial", "bad-trial", "no-source", "no-folder", "bad-field", "bad-protocol"],
)
def test_export_and_retrain_errors_are_one_line(
    tmp_path: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    # One completed NB201 trial, as NASObjective records it (no training needed here).
    space = create_search_space("nasbench201")
    study.enqueue_trial(space.to_params(space.sample(np.random.default_rng(0))))
    trial = study.ask()
    space.suggest(trial)
    trial.set_user_attr("search_space", "nasbench201")
    build = {"num_classes": 10, "in_channels": 1, "image_size": 8, "kwargs": {"channels": 4}}
    trial.set_user_attr("build", build)
    study.tell(trial, 0.5)
    assert cli.main([*argv, "--storage", storage]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"optuna-nas {argv[0]}: error:")
    assert len(err.splitlines()) == 1
    assert message in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, deadline: float) -> Any:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return json.loads(response.read())
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_dashboard_command_serves_notes_plots_and_diagrams(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    _search(storage, "--dataset", "digits", "--subset", "200", "--image-size", "8", n_trials=2)
    port = _free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    argv = ["dashboard", "--storage", storage, "--port", str(port)]
    with subprocess.Popen(
        [sys.executable, "-m", "optuna_nas", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            (summary,) = _get(f"{base}/api/studies", deadline)["study_summaries"]
            detail = _get(f"{base}/api/studies/{summary['study_id']}?after=0", deadline)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    assert detail["objective_names"] == ["val_acc"]
    assert detail["plotly_graph_objects"]  # the NAS plots
    for trial in detail["trials"]:
        arch = next(a["value"] for a in trial["user_attrs"] if a["key"] == "arch")
        assert arch in trial["note"]["body"]
        assert [a["mimetype"] for a in trial["artifacts"]] == ["image/svg+xml"]
