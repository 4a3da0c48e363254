"""Tests of optuna_nas.darts.search."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from darts_helpers import TINY
from darts_helpers import make_data
from darts_helpers import make_trainer
import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint
import optuna
import pytest
import torch

from optuna_nas.darts import DartsDataModule
from optuna_nas.darts import DartsModule
from optuna_nas.darts import DartsSearch
from optuna_nas.darts import DartsSupernet
from optuna_nas.darts import NB201Supernet
from optuna_nas.darts import SkipConnectionEarlyStopping
from optuna_nas.search_spaces import NB201_OPERATIONS
from optuna_nas.search_spaces import create_search_space


optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize("space_name", ["darts", "nasbench201"])
def test_search_reports_records_and_enqueues(space_name: str) -> None:
    space = create_search_space(space_name)
    search = DartsSearch(
        space,
        make_data(64),
        max_epochs=2,
        batch_size=16,
        second_order=space_name == "nasbench201",
        supernet_kwargs=TINY[space_name],
        trainer_kwargs={"accelerator": "cpu"},
    )
    study = optuna.create_study(direction="maximize")
    study.optimize(search, n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert sorted(trial.intermediate_values) == [0, 1]
    assert 0.0 <= trial.value <= 1.0  # type: ignore[operator]
    attrs = trial.user_attrs
    for epoch in range(2):
        alphas = attrs[f"darts:epoch_{epoch:03d}:alphas"]
        assert alphas["operations"][0] == "none"
        for name in ("normal", "reduce") if space_name == "darts" else ("cell",):
            rows = alphas[name]
            assert all(math.isclose(sum(row), 1.0, abs_tol=1e-3) for row in rows)
        space.from_string(attrs[f"darts:epoch_{epoch:03d}:arch"])
    assert search.result is not None
    arch = space.from_string(attrs["darts:arch"])
    assert arch == search.result.arch

    # The derived architecture is the next trial of the study, ready for NASObjective.
    def retrain(t: optuna.Trial) -> float:
        assert space.suggest(t) == arch
        return 0.5

    study.optimize(retrain, n_trials=1)
    child = study.trials[1]
    assert child.state == optuna.trial.TrialState.COMPLETE
    assert child.params == space.to_params(arch)
    assert child.user_attrs["source"] == "darts"
    assert child.user_attrs["darts:search_trial"] == 0


class _AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return True


def test_pruned_search_does_not_stop_the_study() -> None:
    search = DartsSearch(
        create_search_space("nasbench201"),
        make_data(32),
        max_epochs=3,
        batch_size=16,
        supernet_kwargs=TINY["nasbench201"],
        trainer_kwargs={"accelerator": "cpu"},
    )
    study = optuna.create_study(direction="maximize", pruner=_AlwaysPrune())
    study.optimize(search, n_trials=2)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.PRUNED] * 2
    assert all(len(t.intermediate_values) == 1 for t in study.trials)
    assert "darts:epoch_000:arch" in study.trials[0].user_attrs
    assert len(study.trials) == 2  # nothing enqueued


def test_nan_ends_the_trial_with_a_reason() -> None:
    x, y = make_data(32)
    x[:] = math.nan
    search = DartsSearch(
        create_search_space("nasbench201"),
        (x, y),
        max_epochs=2,
        batch_size=16,
        supernet_kwargs=TINY["nasbench201"],
        trainer_kwargs={"accelerator": "cpu"},
    )
    study = optuna.create_study(direction="maximize")
    study.optimize(search, n_trials=2)  # does not raise
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.PRUNED] * 2
    assert "Non-finite" in study.trials[0].user_attrs["pruned_reason"]
    assert search.result is not None and search.result.fail_reason is not None


@pytest.mark.filterwarnings("ignore:Be aware that when using `ckpt_path`")
def test_resume_from_checkpoint_reproduces_the_alphas(tmp_path: Path) -> None:
    data = make_data(48)

    def run(max_epochs: int, ckpt_path: str | None = None, save: bool = False) -> Any:
        pl.seed_everything(0, verbose=False)
        net = NB201Supernet(num_classes=4, **TINY["nasbench201"])
        module = DartsModule(supernet=net, second_order=True, max_epochs=3)
        callbacks = (
            [ModelCheckpoint(dirpath=tmp_path, save_top_k=-1, filename="{epoch}")] if save else []
        )
        trainer = make_trainer(
            max_epochs=max_epochs, callbacks=callbacks, enable_checkpointing=save
        )
        trainer.fit(
            module, DartsDataModule(data=data, batch_size=8, augment=True), ckpt_path=ckpt_path
        )
        return net

    full = run(3)
    run(1, save=True)
    ckpt = tmp_path / "epoch=0.ckpt"
    assert ckpt.exists()
    saved = torch.load(ckpt, weights_only=False)
    assert "supernet.alphas" in saved["state_dict"]
    assert len(saved["optimizer_states"]) == 2  # weights' SGD and alphas' Adam
    resumed = run(3, ckpt_path=str(ckpt))
    for a, b in zip(full.arch_parameters(), resumed.arch_parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert full.derive() == resumed.derive()


def test_darts_plus_early_stop_on_skip_collapse() -> None:
    space = create_search_space("nasbench201")

    def collapsed_search(early_stop: int | None) -> DartsSearch:
        search = DartsSearch(
            space,
            make_data(32),
            max_epochs=4,
            batch_size=16,
            supernet_kwargs=TINY["nasbench201"],
            trainer_kwargs={"accelerator": "cpu"},
            early_stop_skip_connections=early_stop,
            enqueue=False,
        )
        return search

    class _ForceSkips(pl.Callback):
        # Simulates a collapse: skip connections dominate from the start.
        def on_train_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
            with torch.no_grad():
                pl_module.supernet.alphas[:, NB201_OPERATIONS.index("skip_connect")] = 5.0

    results = {}
    for early_stop in (None, 2):
        search = collapsed_search(early_stop)
        search.trainer_kwargs["callbacks"] = [_ForceSkips()]
        study = optuna.create_study(direction="maximize")
        study.optimize(search, n_trials=1)
        results[early_stop] = study.trials[0]
    assert len(results[None].intermediate_values) == 4
    assert len(results[2].intermediate_values) == 1
    assert "DARTS+" in results[2].user_attrs["darts:stop_reason"]
    with pytest.raises(ValueError, match="max_skip_connections"):
        SkipConnectionEarlyStopping(max_skip_connections=0)


def test_darts_minus_auxiliary_skip_decays() -> None:
    torch.manual_seed(0)
    plain = NB201Supernet(num_classes=4, **TINY["nasbench201"])
    aux = NB201Supernet(num_classes=4, aux_skip=True, **TINY["nasbench201"])
    aux.load_state_dict(plain.state_dict())
    plain.eval(), aux.eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert not torch.allclose(plain(x), aux(x))  # beta = 1 at the start
        aux.aux_skip_beta.fill_(0.0)
        torch.testing.assert_close(plain(x), aux(x))  # beta = 0: the plain supernet

    betas: list[float] = []

    class _Watch(pl.Callback):
        def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
            betas.append(float(pl_module.supernet.aux_skip_beta))

    aux.train()
    module = DartsModule(supernet=aux)
    # Callbacks run before the module's hook: read beta at the next epoch's start instead.
    trainer = make_trainer(max_epochs=3, callbacks=[_Watch()], limit_train_batches=1)
    trainer.fit(module, DartsDataModule(data=make_data(16), batch_size=8))
    assert betas[1:] == [1.0, 0.5]
    assert float(aux.aux_skip_beta) == 0.0
    # DARTS' reduction edges get a factorized-reduce auxiliary skip.
    DartsSupernet(num_classes=4, aux_skip=True, **TINY["darts"])(torch.randn(2, 3, 8, 8))


def test_search_on_a_lightning_datamodule_and_a_dataset() -> None:
    from optuna_nas.training import EmbeddedDataModule

    space = create_search_space("nasbench201")
    # Real 8x8 digits (scikit-learn), 1 channel, read through the DataModule's train loader.
    source = EmbeddedDataModule(dataset="digits", subset=200, batch_size=50)
    search = DartsSearch(
        space,
        source,
        max_epochs=1,
        batch_size=32,
        supernet_kwargs=TINY["nasbench201"],
        trainer_kwargs={"accelerator": "cpu"},
        include_none=False,
        enqueue=False,
    )
    study = optuna.create_study(direction="maximize")
    study.optimize(search, n_trials=1)
    assert study.trials[0].state == optuna.trial.TrialState.COMPLETE
    assert search.datamodule.num_classes == 10 and search.datamodule.input_shape[0] == 1
    assert search.result is not None and "none" not in search.result.arch.ops
    assert len(study.trials) == 1  # enqueue=False

    x, y = make_data(40)
    dm = DartsDataModule(data=torch.utils.data.TensorDataset(x, y), batch_size=8)
    dm.setup("fit")
    assert dm.num_weight_examples == 20 and dm.input_shape == (3, 8, 8)
    with pytest.raises(ValueError, match="include_none"):
        DartsSearch(create_search_space("darts"), (x, y), include_none=True)
    with pytest.raises(ValueError, match="macro"):
        DartsSearch(create_search_space("macro"), (x, y))
