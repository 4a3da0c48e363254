"""Export a trial (architecture.json, weights, ONNX) and load it back."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any
import warnings

import numpy as np
import optuna
from optuna.artifacts import FileSystemArtifactStore
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState
import pytest
import torch
from torch import nn

import optuna_nas
from optuna_nas._weights import build_record
from optuna_nas.export import ExportedArchitecture
from optuna_nas.export import export_trial
from optuna_nas.export import load_architecture
from optuna_nas.export import load_model
from optuna_nas.export import write_onnx
from optuna_nas.search_spaces import SearchSpace
from optuna_nas.search_spaces import create_search_space
from optuna_nas.training import EmbeddedDataModule
from optuna_nas.training import NASObjective


ort = pytest.importorskip("onnxruntime")

TINY_BUILD = {"channels": 4, "cells_per_stage": 1}
JSON_KEYS = {
    "format",
    "version",
    "search_space",
    "search_space_kwargs",
    "arch",
    "params",
    "hyperparameters",
    "build_kwargs",
    "num_classes",
    "in_channels",
    "image_size",
    "source",
    "weights",
    "onnx",
}


class _RememberingObjective(NASObjective):
    """Keeps every trial's network (the module trained in place) to compare with exports."""

    networks: dict[int, nn.Module]

    def build_network(self, trial: optuna.Trial, arch: Any) -> nn.Module:
        network = super().build_network(trial, arch)
        self.networks[trial.number] = network
        return network


class _Searched:
    def __init__(self, tmp: Path) -> None:
        self.store = FileSystemArtifactStore(str(tmp / "artifacts"))
        os.makedirs(tmp / "artifacts")
        self.dm = EmbeddedDataModule(dataset="digits", subset=300, image_size=8, batch_size=32)
        self.objective = _RememberingObjective(
            create_search_space("nasbench201"),
            self.dm,
            max_epochs=1,
            build_kwargs=TINY_BUILD,
            trainer_kwargs={"accelerator": "cpu"},
            suggest_hyperparameters=lambda t: {"lr": t.suggest_float("lr", 0.02, 0.2)},
            latency_repeats=1,
            artifact_store=self.store,
            keep_weights=2,
        )
        self.objective.networks = {}
        self.study = optuna.create_study(
            direction="maximize", sampler=optuna.samplers.RandomSampler(3)
        )
        # A pruned trial among them: never ranked, never kept.
        decision = self.objective.space.decisions[0]
        self.study.add_trial(
            optuna.trial.create_trial(
                state=TrialState.PRUNED,
                params={decision.name: decision.choices[0]},
                distributions={decision.name: CategoricalDistribution(decision.choices)},
            )
        )
        self.study.optimize(self.objective, n_trials=4)


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> _Searched:
    return _Searched(tmp_path_factory.mktemp("searched"))


def _ranked(study: optuna.Study) -> list[int]:
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    return [t.number for t in sorted(complete, key=lambda t: (-t.value, t.number))]


def _artifact_exists(store: FileSystemArtifactStore, artifact_id: str) -> bool:
    try:
        with store.open_reader(artifact_id):
            return True
    except Exception:
        return False


def test_only_the_best_two_keep_their_weights(searched: _Searched) -> None:
    study = searched.study
    assert len(_ranked(study)) == 4
    kept = {
        t.number
        for t in study.trials
        if "weights_artifact_id" in t.user_attrs
        and _artifact_exists(searched.store, t.user_attrs["weights_artifact_id"])
    }
    assert kept == set(_ranked(study)[:2])
    for number in kept:
        trial = study.trials[number]
        with searched.store.open_reader(trial.user_attrs["weights_artifact_id"]) as f:
            state = torch.load(f, weights_only=True)
        trained = searched.objective.networks[number].state_dict()
        assert state.keys() == trained.keys()
        assert all(torch.equal(state[k], trained[k]) for k in state)
    for trial in study.trials[1:]:
        assert trial.user_attrs["keep_weights"] == 2
        build = trial.user_attrs["build"]
        assert build["kwargs"] == TINY_BUILD
        assert (build["num_classes"], build["in_channels"], build["image_size"]) == (10, 1, 8)


def test_export_best_round_trips_through_torch_and_onnx(
    searched: _Searched, tmp_path: Path
) -> None:
    study = searched.study
    best = study.best_trial
    exported = export_trial(study, out_dir=tmp_path / "best", artifact_store=searched.store)
    assert exported.notice is None and exported.weights == "weights.pt"
    assert sorted(os.listdir(tmp_path / "best")) == [
        "architecture.json",
        "model.onnx",
        "weights.pt",
    ]
    with open(tmp_path / "best" / "architecture.json") as f:
        data = json.load(f)
    assert set(data) == JSON_KEYS
    assert data["format"] == "optuna-nas/architecture" and data["version"] == 1
    assert data["search_space"] == "nasbench201" and data["arch"] == best.user_attrs["arch"]
    assert data["params"] == {k: v for k, v in best.params.items() if k.startswith("nb201/")}
    assert data["hyperparameters"] == {"lr": best.params["lr"]}
    assert data["build_kwargs"] == TINY_BUILD
    assert (data["num_classes"], data["in_channels"], data["image_size"]) == (10, 1, 8)
    assert data["source"]["trial_number"] == best.number
    assert data["source"]["study_name"] == study.study_name
    assert data["source"]["values"] == [best.value]
    assert data["source"]["user_attrs"]["val_acc_curve"] == best.user_attrs["val_acc_curve"]
    assert data["source"]["user_attrs"]["n_params"] == best.user_attrs["n_params"]
    assert (data["weights"], data["onnx"]) == ("weights.pt", "model.onnx")

    trained = copy.deepcopy(searched.objective.networks[best.number]).eval()
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        expected = trained(x)
        actual = load_model(tmp_path / "best")(x)
    torch.testing.assert_close(actual, expected, rtol=0, atol=0)
    session = ort.InferenceSession(
        str(tmp_path / "best" / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    (logits,) = session.run(["logits"], {"input": x.numpy()})
    np.testing.assert_allclose(logits, expected.numpy(), rtol=0, atol=1e-5)

    loaded = load_architecture(tmp_path / "best")
    assert loaded.to_json() == data
    assert loaded.architecture == searched.objective.space.from_params(best.params)
    assert isinstance(loaded.build(channels=8), nn.Module)
    # The top-level lazy names are the module's.
    assert optuna_nas.export_trial is export_trial and optuna_nas.load_model is load_model


def test_a_trial_without_weights_exports_its_architecture_only(
    searched: _Searched, tmp_path: Path
) -> None:
    study = searched.study
    dropped = _ranked(study)[-1]
    # A folder reused from an export with weights loses them (no stale weights.pt).
    export_trial(study, _ranked(study)[0], out_dir=tmp_path, artifact_store=searched.store)
    with pytest.warns(UserWarning, match=f"Trial {dropped}'s weights were not kept"):
        exported = export_trial(study, dropped, out_dir=tmp_path, artifact_store=searched.store)
    assert exported.weights is None and exported.onnx is None
    assert exported.notice is not None and "keep_weights=2" in exported.notice
    assert os.listdir(tmp_path) == ["architecture.json"]
    with pytest.raises(ValueError, match="has no weights"):
        load_model(tmp_path)
    assert isinstance(load_architecture(tmp_path).build(), nn.Module)
    with pytest.raises(ValueError, match=f"Trial {dropped}'s weights were not kept"):
        export_trial(
            study, dropped, out_dir=tmp_path, artifact_store=searched.store, require_weights=True
        )


def test_errors_name_the_trial(searched: _Searched, tmp_path: Path) -> None:
    study = searched.study
    with pytest.raises(ValueError, match="Trial 0 is PRUNED, not COMPLETE"):
        export_trial(study, 0, out_dir=tmp_path)
    with pytest.raises(ValueError, match="no trial 99"):
        export_trial(study, 99, out_dir=tmp_path)
    with pytest.raises(ValueError, match="trial must be 'best'"):
        export_trial(study, "latest", out_dir=tmp_path)
    best = _ranked(study)[0]
    with pytest.raises(ValueError, match=f"Trial {best} kept its weights as artifact") as info:
        export_trial(study, best, out_dir=tmp_path)
    assert "\n" not in str(info.value)  # one line, for the CLI


# ----------------------------------------------------------------------------- synthetic trials
def _add_kept_trial(
    study: optuna.Study,
    space: SearchSpace[Any],
    arch: Any,
    build_kwargs: dict[str, Any],
    weights_dir: Path,
    *,
    in_channels: int = 3,
    image_size: int = 8,
) -> nn.Module:
    """A COMPLETE trial as NASObjective records it, its weights (BN statistics moved) kept."""
    network = space.build(arch, num_classes=5, in_channels=in_channels, **build_kwargs)
    generator = torch.Generator().manual_seed(0)
    for module in network.modules():  # BatchNorm statistics unlike a fresh network's
        if isinstance(module, nn.BatchNorm2d) and module.running_mean is not None:
            assert module.running_var is not None
            module.running_mean.copy_(torch.randn(module.num_features, generator=generator))
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
    os.makedirs(weights_dir, exist_ok=True)
    torch.save(network.state_dict(), weights_dir / "weights.pt")
    params = space.to_params(arch)
    distributions = {d.name: CategoricalDistribution(d.choices) for d in space.decisions}
    params["lr"] = 0.1
    distributions["lr"] = FloatDistribution(0.01, 1.0)
    record = build_record(
        space,
        num_classes=5,
        in_channels=in_channels,
        image_size=image_size,
        build_kwargs=build_kwargs,
    )
    study.add_trial(
        optuna.trial.create_trial(
            value=0.5,
            params=params,
            distributions=distributions,
            user_attrs={
                "search_space": space.name,
                "arch": space.to_string(arch),
                "build": record,
                "keep_weights": 1,
                "weights_path": str(weights_dir / "weights.pt"),
            },
        )
    )
    return network.eval()


SPACES = [
    ("nasbench201", {}, {"channels": 4, "cells_per_stage": 1}),
    ("darts", {}, {"channels": 4, "layers": 3, "auxiliary": True, "drop_path_prob": 0.2}),
    ("macro", {"num_layers": 3, "num_filters": (4, 8)}, {}),
]


@pytest.mark.parametrize(("name", "space_kwargs", "build_kwargs"), SPACES)
def test_round_trip_of_each_space(
    name: str, space_kwargs: dict[str, Any], build_kwargs: dict[str, Any], tmp_path: Path
) -> None:
    space = create_search_space(name, **space_kwargs)
    arch = space.sample(np.random.default_rng(7))
    study = optuna.create_study(direction="maximize")
    network = _add_kept_trial(study, space, arch, build_kwargs, tmp_path / "kept")
    exported = export_trial(study, out_dir=tmp_path / "out")
    # The space is re-created with its options (macro: its resolved pool_after too).
    recreated = exported.space
    for option in ("num_layers", "num_filters", "filter_sizes", "pool_after", "operations"):
        assert getattr(recreated, option, None) == getattr(space, option, None)
    x = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        expected = network(x)
        model = load_model(tmp_path / "out")
        actual = model(x)
    assert not model.training
    torch.testing.assert_close(actual, expected, rtol=0, atol=0)
    session = ort.InferenceSession(
        str(tmp_path / "out" / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    (logits,) = session.run(["logits"], {"input": x.numpy()})
    np.testing.assert_allclose(logits, expected.numpy(), rtol=0, atol=1e-5)
    assert load_architecture(tmp_path / "out").architecture == arch


@pytest.mark.parametrize("storage_kind", ["journal", "sqlite"])
def test_frozen_trials_of_persistent_storages(storage_kind: str, tmp_path: Path) -> None:
    if storage_kind == "journal":
        from optuna.storages.journal import JournalFileBackend

        storage: Any = optuna.storages.JournalStorage(
            JournalFileBackend(str(tmp_path / "journal.log"))
        )
    else:
        storage = f"sqlite:///{tmp_path / 'nas.db'}"
    space = create_search_space("nasbench201")
    arch = space.sample(np.random.default_rng(1))
    study = optuna.create_study(storage=storage, study_name="s", direction="minimize")
    network = _add_kept_trial(study, space, arch, {"channels": 4, "cells_per_stage": 1}, tmp_path)
    reloaded = optuna.load_study(study_name="s", storage=storage)
    exported = export_trial(reloaded, reloaded.trials[0], out_dir=tmp_path / "out", onnx=False)
    assert exported.onnx is None and exported.weights == "weights.pt"
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(load_model(tmp_path / "out")(x), network(x))


def test_invalid_architecture_and_missing_records(tmp_path: Path) -> None:
    study = optuna.create_study()
    choices = CategoricalDistribution(("none", "conv_9x9"))
    study.add_trial(
        optuna.trial.create_trial(
            value=1.0,
            params={"nb201/edge_1_0": "conv_9x9"},
            distributions={"nb201/edge_1_0": choices},
            user_attrs={"search_space": "nasbench201"},
        )
    )
    with pytest.raises(ValueError, match="Trial 0's parameters are not a valid 'nasbench201'"):
        export_trial(study, 0, out_dir=tmp_path)
    study.add_trial(
        optuna.trial.create_trial(
            value=1.0, params={"lr": 0.1}, distributions={"lr": FloatDistribution(0.01, 1.0)}
        )
    )
    with pytest.raises(ValueError, match="Trial 1 has no architecture parameters"):
        export_trial(study, 1, out_dir=tmp_path)
    space = create_search_space("nasbench201")
    arch = space.sample(np.random.default_rng(0))
    study.add_trial(
        optuna.trial.create_trial(
            value=1.0,
            params=space.to_params(arch),
            distributions={d.name: CategoricalDistribution(d.choices) for d in space.decisions},
        )
    )
    with pytest.raises(ValueError, match="Trial 2 has no 'build' user attribute"):
        export_trial(study, 2, out_dir=tmp_path)


def test_removed_weights_say_so_and_mismatched_weights_fail(tmp_path: Path) -> None:
    space = create_search_space("nasbench201")
    arch = space.sample(np.random.default_rng(0))
    study = optuna.create_study()
    _add_kept_trial(study, space, arch, {"channels": 4, "cells_per_stage": 1}, tmp_path / "a")
    os.remove(tmp_path / "a" / "weights.pt")
    with pytest.warns(UserWarning, match="removed when later trials ranked above it"):
        exported = export_trial(study, 0, out_dir=tmp_path / "out")
    assert exported.weights is None
    # Weights of another width do not fit the recorded build: a clear error, no weights left.
    _add_kept_trial(study, space, arch, {"channels": 4, "cells_per_stage": 1}, tmp_path / "b")
    other = space.build(arch, num_classes=5, channels=8, cells_per_stage=1)
    torch.save(other.state_dict(), tmp_path / "b" / "weights.pt")
    with pytest.raises(
        ValueError, match="Trial 1's kept weights do not fit its architecture"
    ) as info:
        export_trial(study, 1, out_dir=tmp_path / "out")
    assert "\n" not in str(info.value) and "size mismatch" in str(info.value)
    # The failed export left the folder as the earlier export wrote it.
    assert os.listdir(tmp_path / "out") == ["architecture.json"]
    assert load_architecture(tmp_path / "out").source["trial_number"] == 0


def test_multi_objective_best_asks_for_a_trial(tmp_path: Path) -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    for values in ([0.9, 10.0], [0.8, 1.0], [0.7, 20.0]):
        study.add_trial(optuna.trial.create_trial(values=values))
    with pytest.raises(ValueError, match=r"Pareto-optimal trials \[0, 1\] by number"):
        export_trial(study, out_dir=tmp_path)


def test_load_rejects_other_formats_versions_and_missing_folders(tmp_path: Path) -> None:
    space = create_search_space("nasbench201")
    study = optuna.create_study()
    _add_kept_trial(
        study, space, space.sample(np.random.default_rng(0)), TINY_BUILD, tmp_path / "w"
    )
    export_trial(study, out_dir=tmp_path / "out", onnx=False)
    file = tmp_path / "out" / "architecture.json"
    data = json.loads(file.read_text())
    assert isinstance(load_architecture(file), ExportedArchitecture)

    file.write_text(json.dumps({**data, "version": 2}))
    with pytest.raises(ValueError, match="format version 2; this optuna-nas reads version 1"):
        load_architecture(tmp_path / "out")
    file.write_text(json.dumps({**data, "format": "something-else"}))
    with pytest.raises(ValueError, match="is not an optuna-nas architecture"):
        load_model(tmp_path / "out")
    file.write_text(json.dumps({k: v for k, v in data.items() if k != "arch"}))
    with pytest.raises(ValueError, match=r"lacks the field\(s\) \['arch'\]"):
        load_architecture(file)
    file.write_text("{not json")
    with pytest.raises(ValueError, match="is not JSON"):
        load_architecture(file)
    with pytest.raises(FileNotFoundError, match="No exported architecture"):
        load_architecture(tmp_path / "missing")


def test_write_onnx_has_a_dynamic_batch_and_eval_mode_logits(tmp_path: Path) -> None:
    space = create_search_space("darts")
    network = space.build(
        space.sample(np.random.default_rng(2)), num_classes=4, channels=4, layers=3, auxiliary=True
    )
    network.train()  # write_onnx exports eval mode (logits only, no auxiliary output)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # the exporter's warning is silenced
        write_onnx(network, tmp_path / "m.onnx", input_shape=(3, 8, 8))
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["logits"]
    assert [i.name for i in session.get_inputs()] == ["input"]
    for batch in (1, 5):
        x = torch.randn(batch, 3, 8, 8)
        (logits,) = session.run(None, {"input": x.numpy()})
        with torch.no_grad():
            np.testing.assert_allclose(logits, network.eval()(x).numpy(), rtol=0, atol=1e-5)
