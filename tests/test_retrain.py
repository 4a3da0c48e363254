"""Tests of optuna_nas.retrain: protocols, a tiny real retrain, resume, and the study record."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
import subprocess
import sys
from typing import Any

import lightning.pytorch as pl
import optuna
import pytest
import torch

from optuna_nas.retrain import PROTOCOLS
from optuna_nas.retrain import RetrainProtocol
from optuna_nas.retrain import get_protocol
from optuna_nas.retrain import retrain
from optuna_nas.retrain import retrain_results
from optuna_nas.search_spaces import DARTS_V2
from optuna_nas.search_spaces import create_search_space
from optuna_nas.training import EmbeddedDataModule
from optuna_nas.training._module import ChildModule
from optuna_nas.trial_outcome import InvalidArchitectureError
from optuna_nas.trial_outcome import NonFiniteError


CELL = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|"
    "nor_conv_1x1~2|"
)
TINY_NB201 = {"channels": 4, "cells_per_stage": 1}
TINY_DARTS = {"channels": 4, "layers": 3, "auxiliary": True}
CPU: dict[str, Any] = {"accelerator": "cpu"}


def _digits(**kwargs: Any) -> EmbeddedDataModule:
    return EmbeddedDataModule(
        dataset="digits", subset=kwargs.pop("subset", 200), image_size=8, **kwargs
    )


def _smoke(epochs: int = 1) -> RetrainProtocol:
    return get_protocol("nasbench201", epochs=epochs, batch_size=32, build_kwargs=TINY_NB201)


# ------------------------------------------------------------------------------------ protocols
# DESIGN.md section 11, typed in: (field, value) per space.
DESIGN_TABLE: dict[str, dict[str, Any]] = {
    "darts": {
        "epochs": 600,
        "batch_size": 96,
        "optimizer": "sgd",
        "lr": 0.025,
        "momentum": 0.9,
        "nesterov": False,  # DARTS' train.py: plain momentum
        "weight_decay": 3e-4,
        "lr_min": 0.0,
        "scheduler": "cosine",
        "cutout": 16,
        "drop_path_prob": 0.2,
        "aux_weight": 0.4,
        "gradient_clip_val": 5.0,
        "build_kwargs": {"channels": 36, "layers": 20, "auxiliary": True},
        "label_smoothing": 0.0,
    },
    "nasbench201": {
        "epochs": 200,
        "batch_size": 256,
        "optimizer": "sgd",
        "lr": 0.1,
        "momentum": 0.9,
        "nesterov": True,
        "weight_decay": 5e-4,
        "lr_min": 0.0,
        "scheduler": "cosine",
        "cutout": 0,
        "drop_path_prob": 0.0,
        "aux_weight": 0.0,
        "gradient_clip_val": None,
        "build_kwargs": {"channels": 16, "cells_per_stage": 5},
        "label_smoothing": 0.0,
    },
}


@pytest.mark.parametrize("space", sorted(DESIGN_TABLE))
def test_protocols_match_the_design(space: str) -> None:
    protocol = PROTOCOLS[space]
    for name, expected in DESIGN_TABLE[space].items():
        assert getattr(protocol, name) == expected, name
    assert protocol.source


def test_macro_protocol_says_where_it_comes_from() -> None:
    macro = PROTOCOLS["macro"]
    assert "No published" in macro.source and "NAS-Bench-201" in macro.source
    nb201 = dataclasses.replace(PROTOCOLS["nasbench201"], build_kwargs={}, source=macro.source)
    assert macro == nb201
    assert sorted(PROTOCOLS) == ["darts", "macro", "nasbench201"]


def test_every_protocol_builds_its_space() -> None:
    for name, protocol in PROTOCOLS.items():
        space = create_search_space(name)
        arch = space.sample(__import__("numpy").random.default_rng(0))
        net = space.build(arch, num_classes=10, **protocol.build_kwargs)
        assert isinstance(net, torch.nn.Module)


def test_replace_validates_names_and_values() -> None:
    base = get_protocol("darts")
    changed = base.replace(epochs=3, cutout=0)
    assert (changed.epochs, changed.cutout, base.epochs) == (3, 0, 600)
    with pytest.raises(ValueError, match=r"\['bogus', 'epoch'\].*'epochs'"):
        base.replace(epoch=1, bogus=2)
    for key, bad in [
        ("epochs", 0),
        ("batch_size", 1.5),
        ("lr", -0.1),
        ("lr_min", 1.0),  # above lr
        ("momentum", 1.0),
        ("nesterov", 1),
        ("weight_decay", math.nan),
        ("cutout", -1),
        ("drop_path_prob", 1.0),
        ("aux_weight", -1.0),
        ("gradient_clip_val", 0.0),
        ("label_smoothing", 1.0),
        ("optimizer", "adam"),
        ("scheduler", "step"),
        ("build_kwargs", [1]),
        ("source", None),
    ]:
        with pytest.raises(ValueError, match=f"{key}.*{bad!r}" if key != "lr_min" else key):
            base.replace(**{key: bad})
    # A protocol keeps its own copy of build_kwargs.
    options = {"channels": 4}
    protocol = base.replace(build_kwargs=options)
    options["channels"] = 8
    assert protocol.build_kwargs == {"channels": 4}


def test_get_protocol_unknown_space_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"'nope'.*\['darts', 'macro', 'nasbench201'\]"):
        get_protocol("nope")
    assert get_protocol("nasbench201", epochs=2).epochs == 2


def test_importing_the_module_does_not_import_lightning() -> None:
    root = str(Path(__file__).resolve().parents[1])
    code = (
        "import sys, optuna_nas.retrain; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('lightning', 'pytorch_lightning') or m.startswith('optuna_nas.training')))"
    )
    env = {**os.environ, "PYTHONPATH": root}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------ retraining
def test_nasbench201_retrain_records_the_result_in_the_study() -> None:
    study = optuna.create_study(direction="maximize")
    study.add_trial(optuna.trial.create_trial(value=0.5, user_attrs={"arch": CELL}))
    study.add_trial(optuna.trial.create_trial(value=0.6))
    dm = _digits(test_fraction=0.2)
    result = retrain(
        "nasbench201",
        CELL,  # a string architecture
        dm,
        protocol=_smoke(),
        trainer_kwargs=CPU,
        study=study,
        trial_number=0,
    )
    assert result.split == "test"
    assert 0.0 <= result.test_acc <= 1.0 and math.isfinite(result.test_loss)
    assert result.epochs == 1 and len(result.val_acc_curve) == 1
    assert result.n_params == sum(p.numel() for p in result.network.parameters())
    assert result.arch == CELL and result.checkpoint_path is None
    assert not result.network.training
    # The data module's batch size and cutout are put back.
    assert (dm.batch_size, dm.cutout) == (128, 0)

    recorded = retrain_results(study)
    assert list(recorded) == [0]
    entry = recorded[0]
    assert entry["test_acc"] == result.test_acc
    assert entry["test_loss"] == result.test_loss
    assert entry["epochs"] == 1
    assert entry["n_params"] == result.n_params
    assert entry["train_time_s"] == result.train_time_s
    assert entry["protocol"] == dataclasses.asdict(result.protocol)
    assert entry["finished_at"].endswith("+00:00")
    assert (entry["arch"], entry["search_space"], entry["split"]) == (CELL, "nasbench201", "test")
    assert set(study.user_attrs) == {"retrain:trial_0"}
    json.dumps(entry)  # storable in any Optuna storage


def test_darts_retrain_uses_the_auxiliary_head_drop_path_and_cutout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, list[Any]] = {"drop_path": [], "zeros": [], "loss_calls": []}
    original = ChildModule._loss

    def spy(self: ChildModule, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.training:
            seen["loss_calls"].append(self.global_step)
        return original(self, logits, y)

    monkeypatch.setattr(ChildModule, "_loss", spy)

    class Watch(pl.Callback):
        def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, i: int) -> None:
            seen["drop_path"].append((trainer.current_epoch, module.network.drop_path_prob))
            # Normalized digits have no pixel equal to 0: the zeros are the Cutout squares.
            seen["zeros"].append((batch[0] == 0).flatten(1).sum(1))

    protocol = get_protocol("darts", epochs=2, batch_size=64, cutout=4, build_kwargs=TINY_DARTS)
    dm = _digits(subset=150)
    result = retrain(
        "darts",
        DARTS_V2,
        dm,
        protocol=protocol,
        trainer_kwargs={**CPU, "callbacks": [Watch()]},
    )
    assert result.split == "val" and result.epochs == 2
    # Auxiliary head: two loss terms per training step (logits and auxiliary logits).
    steps = seen["loss_calls"]
    assert len(steps) == 2 * len(set(steps)) and len(set(steps)) >= 2
    # Published counts leave the auxiliary head out.
    assert result.n_params < sum(p.numel() for p in result.network.parameters())
    # Drop-path ramps linearly from 0: 0.2 * epoch / 2.
    ramp = dict(seen["drop_path"])
    assert ramp == {0: 0.0, 1: pytest.approx(0.1)}
    # Cutout: every training image has a zeroed square of at most 4 x 4 pixels.
    zeros = torch.cat(seen["zeros"])
    assert int(zeros.min()) >= 1 and int(zeros.max()) <= 16
    assert dm.cutout == 0


def test_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    protocol = _smoke(epochs=3)

    class Interrupt(Exception):
        pass

    class StopAfterFirstEpoch(pl.Callback):
        def on_train_epoch_start(self, trainer: Any, module: Any) -> None:
            if trainer.current_epoch == 1:
                raise Interrupt

    full = retrain("nasbench201", CELL, _digits(), protocol=protocol, trainer_kwargs=CPU, seed=3)
    folder = tmp_path / "run"
    with pytest.raises(Interrupt):
        retrain(
            "nasbench201",
            CELL,
            _digits(),
            protocol=protocol,
            trainer_kwargs={**CPU, "callbacks": [StopAfterFirstEpoch()]},
            checkpoint_dir=folder,
            seed=3,
        )
    assert (folder / "last.ckpt").is_file()
    resumed = retrain(
        "nasbench201", CELL, _digits(), protocol=protocol, trainer_kwargs=CPU,
        checkpoint_dir=folder, seed=3,
    )  # fmt: skip
    assert resumed.checkpoint_path == str(folder / "last.ckpt")
    assert resumed.epochs == full.epochs == 3
    assert resumed.val_acc_curve == full.val_acc_curve
    assert (resumed.test_acc, resumed.test_loss) == (full.test_acc, full.test_loss)
    full_state, resumed_state = full.network.state_dict(), resumed.network.state_dict()
    assert full_state.keys() == resumed_state.keys()
    for key, value in full_state.items():
        assert torch.equal(value, resumed_state[key]), key
    # Another protocol refuses the checkpoint.
    with pytest.raises(ValueError, match="other settings.*'protocol'"):
        retrain(
            "nasbench201", CELL, _digits(), protocol=_smoke(epochs=4), trainer_kwargs=CPU,
            checkpoint_dir=folder, seed=3,
        )  # fmt: skip


def test_a_diverged_retrain_raises_and_records_nothing() -> None:
    study = optuna.create_study()
    study.add_trial(optuna.trial.create_trial(value=0.5))
    dm = _digits()
    dm.setup("fit")
    x, y = dm._tensors["train"]
    dm._tensors["train"] = (x * math.nan, y)
    with pytest.raises(NonFiniteError, match="diverged"):
        retrain(
            "nasbench201", CELL, dm, protocol=_smoke(), trainer_kwargs=CPU,
            study=study, trial_number=0,
        )  # fmt: skip
    assert retrain_results(study) == {}


# ------------------------------------------------------------------------------------ arguments
def test_invalid_architecture_string_is_named() -> None:
    with pytest.raises(InvalidArchitectureError, match=r"'\|bogus~0\|'.*nasbench201"):
        retrain("nasbench201", "|bogus~0|", _digits(), protocol=_smoke())
    with pytest.raises(ValueError, match="Unknown search space 'nope'"):
        retrain("nope", CELL, _digits())


def test_bad_arguments_fail_before_training() -> None:
    study = optuna.create_study()
    study.add_trial(optuna.trial.create_trial(value=0.5))
    dm = _digits()
    with pytest.raises(ValueError, match="study and trial_number"):
        retrain("nasbench201", CELL, dm, protocol=_smoke(), study=study)
    with pytest.raises(ValueError, match="trial_number=5"):
        retrain("nasbench201", CELL, dm, protocol=_smoke(), study=study, trial_number=5)
    with pytest.raises(ValueError, match="trial_number.*-1"):
        retrain("nasbench201", CELL, dm, protocol=_smoke(), study=study, trial_number=-1)
    with pytest.raises(ValueError, match=r"\['max_epochs'\].*epochs="):
        retrain("nasbench201", CELL, dm, protocol=_smoke(), trainer_kwargs={"max_epochs": 2})
    with pytest.raises(ValueError, match="cutout=8"):
        retrain("nasbench201", CELL, dm, protocol=_smoke().replace(cutout=8))
    with pytest.raises(ValueError, match="seed"):
        retrain("nasbench201", CELL, dm, protocol=_smoke(), seed=-1)
    with pytest.raises(ValueError, match="protocol must be"):
        retrain("nasbench201", CELL, dm, protocol=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="No retraining protocol"):
        retrain("nasbench201", CELL, dm, protocol="nope")
    with pytest.raises(ValueError, match="ddp_spawn"):
        retrain(
            "nasbench201", CELL, dm, protocol=_smoke(),
            trainer_kwargs={"accelerator": "cpu", "devices": 2, "strategy": "ddp"},
        )  # fmt: skip
    assert retrain_results(study) == {}
