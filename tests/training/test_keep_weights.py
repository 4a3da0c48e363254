"""NASObjective(keep_weights=k): the best k trials keep their trained weights, the others not."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import optuna
from optuna.artifacts import FileSystemArtifactStore
from optuna.trial import TrialState
import pytest
import torch
from torch import nn

from optuna_nas._weights import WeightKeeper
from optuna_nas._weights import best_numbers
from optuna_nas.training import EmbeddedDataModule
from optuna_nas.training import NASObjective


CPU = {"accelerator": "cpu"}


def _objective(space: Any, dm: EmbeddedDataModule, **kwargs: Any) -> NASObjective:
    options: dict[str, Any] = {
        "max_epochs": 1,
        "trainer_kwargs": CPU,
        "latency_repeats": 1,
        "suggest_hyperparameters": lambda t: {"lr": t.suggest_float("lr", 1e-4, 1.0, log=True)},
    }
    options.update(kwargs)
    return NASObjective(space, dm, **options)


class _Remembering(NASObjective):
    networks: dict[int, nn.Module] = {}

    def build_network(self, trial: optuna.Trial, arch: Any) -> nn.Module:
        network = super().build_network(trial, arch)
        self.networks[trial.number] = network
        return network


def test_weights_dir_keeps_the_best_and_removes_the_fallen(
    digits: EmbeddedDataModule, fake_space: Any, tmp_path: Path
) -> None:
    objective = _Remembering(
        fake_space,
        digits,
        max_epochs=1,
        trainer_kwargs=CPU,
        latency_repeats=1,
        suggest_hyperparameters=lambda t: {"lr": t.suggest_float("lr", 1e-4, 1.0, log=True)},
        keep_weights=2,
        weights_dir=tmp_path / "weights",
    )
    objective.networks = {}
    study = optuna.create_study(direction="maximize", study_name="a/b")
    # Learning rates from useless to good, so that kept trials fall out as better ones finish.
    for lr in (1e-4, 2e-4, 0.05, 0.1, 0.3):
        objective.enqueue(study, "ok", params={"lr": lr})
    study.optimize(objective, n_trials=5)

    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 5
    best = {t.number for t in sorted(complete, key=lambda t: (-t.value, t.number))[:2]}
    for trial in complete:
        path = trial.user_attrs.get("weights_path")
        assert trial.user_attrs["keep_weights"] == 2
        if trial.number in best:
            # The study name's "/" does not make a sub-folder.
            assert path == str(
                tmp_path / "weights" / "a_b" / f"trial_{trial.number}" / "weights.pt"
            )
            state = torch.load(path, weights_only=True)
            trained = objective.networks[trial.number].state_dict()
            assert all(torch.equal(state[k], trained[k]) for k in trained)
        else:
            assert path is None or not os.path.exists(os.path.dirname(path))
    # The first two trials were kept when they finished (nothing better had finished yet).
    assert "weights_path" in study.trials[0].user_attrs
    assert "weights_path" in study.trials[1].user_attrs
    kept_dirs = sorted(os.listdir(tmp_path / "weights" / "a_b"))
    assert kept_dirs == sorted(f"trial_{n}" for n in best)


def test_keep_weights_off_by_default(digits: EmbeddedDataModule, fake_space: Any) -> None:
    objective = _objective(fake_space, digits)
    study = optuna.create_study(direction="maximize")
    objective.enqueue(study, "ok", params={"lr": 0.1})
    study.optimize(objective, n_trials=1)
    attrs = study.trials[0].user_attrs
    assert not {"keep_weights", "weights_path", "weights_artifact_id"} & set(attrs)
    assert attrs["build"] == {
        "num_classes": 10,
        "in_channels": 1,
        "image_size": 8,
        "kwargs": {},
        "space_kwargs": {},
    }


def test_bad_keep_weights_is_rejected(digits: EmbeddedDataModule, fake_space: Any) -> None:
    for bad in (-1, 1.5, True, "2", None):
        with pytest.raises(ValueError, match="keep_weights must be an int >= 0"):
            _objective(fake_space, digits, keep_weights=bad, weights_dir="w")
    with pytest.raises(ValueError, match="keep_weights=2 needs somewhere to keep the weights"):
        _objective(fake_space, digits, keep_weights=2)


def test_build_kwargs_must_be_recordable(digits: EmbeddedDataModule, fake_space: Any) -> None:
    # (The fake space builds with any options; a built-in space rejects unknown ones first.)
    with pytest.raises(ValueError, match="build_kwargs must be JSON-able.*object"):
        _objective(fake_space, digits, build_kwargs={"width": 4, "init": object})


# --------------------------------------------------------------------------- ranking, unit level
def _finished(values: list[list[float]]) -> list[optuna.trial.FrozenTrial]:
    study = optuna.create_study(directions=["maximize"] * len(values[0]))
    for v in values:
        study.add_trial(optuna.trial.create_trial(values=v))
    return study.trials


def test_best_numbers_single_objective_with_the_running_trial() -> None:
    trials = _finished([[0.5], [0.9], [0.7], [0.9]])
    maximize = [optuna.study.StudyDirection.MAXIMIZE]
    minimize = [optuna.study.StudyDirection.MINIMIZE]
    assert best_numbers(trials, maximize, 2) == [1, 3]  # ties go to the earlier trial
    assert best_numbers(trials, maximize, 2, (4, [0.95])) == [4, 1]
    assert best_numbers(trials, minimize, 2, (4, [0.95])) == [0, 2]
    assert best_numbers(trials, maximize, 10) == [1, 3, 2, 0]


def test_best_numbers_multi_objective_by_pareto_front() -> None:
    # (accuracy, -size) both maximized here: 0, 1 and 3 are on the front; 2 is dominated by 1.
    trials = _finished([[0.9, -10.0], [0.8, -1.0], [0.7, -2.0], [0.95, -20.0]])
    directions = [optuna.study.StudyDirection.MAXIMIZE] * 2
    assert best_numbers(trials, directions, 3) == [0, 1, 3]
    assert best_numbers(trials, directions, 4) == [0, 1, 3, 2]
    # A new trial dominating 0 and 1 pushes them off the front.
    assert best_numbers(trials, directions, 2, (4, [0.92, -0.5])) == [3, 4]


def test_keeper_ranks_the_running_trial_and_tolerates_missing_files(tmp_path: Path) -> None:
    study = optuna.create_study(directions=["maximize", "minimize"], study_name="mo")
    gone = str(tmp_path / "gone" / "weights.pt")  # removed by another worker already
    kept = tmp_path / "kept" / "weights.pt"
    os.makedirs(kept.parent)
    torch.save({}, kept)
    for values, path in (([0.5, 10.0], gone), ([0.6, 20.0], str(kept))):
        study.add_trial(
            optuna.trial.create_trial(values=values, user_attrs={"weights_path": path})
        )
    keeper = WeightKeeper(1, artifact_store=None, weights_dir=str(tmp_path / "w"))
    trial = study.ask()
    network = nn.Linear(2, 3)
    keeper.after_trial(trial, [0.7, 5.0], network)  # dominates both: the only one kept
    path = trial.study.get_trials()[2].user_attrs["weights_path"]
    assert path == str(tmp_path / "w" / "mo" / "trial_2" / "weights.pt")
    state = torch.load(path, weights_only=True)
    assert torch.equal(state["weight"], network.weight.detach())
    assert not kept.exists() and not kept.parent.exists()


def test_keeper_with_an_artifact_store(tmp_path: Path) -> None:
    store = FileSystemArtifactStore(str(tmp_path))
    study = optuna.create_study(direction="minimize")
    keeper = WeightKeeper(1, artifact_store=store, weights_dir=None)
    ids = []
    for value in (3.0, 1.0, 2.0):
        trial = study.ask()
        keeper.after_trial(trial, [value], nn.Linear(2, 2))
        study.tell(trial, value)
        ids.append(study.trials[-1].user_attrs.get("weights_artifact_id"))
    assert ids[0] is not None and ids[1] is not None and ids[2] is None
    assert not os.path.exists(tmp_path / ids[0]) and os.path.exists(tmp_path / ids[1])
