from __future__ import annotations

import inspect

import optuna
import pytest

from optuna_nas.samplers import RegularizedEvolutionSampler
from optuna_nas.samplers import RNNControllerSampler
from optuna_nas.samplers import create_sampler
from optuna_nas.samplers import list_samplers
from optuna_nas.search_spaces import create_search_space


def test_list_samplers() -> None:
    assert list_samplers() == ["evolution", "nsgaii", "random", "rnn", "tpe"]


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("random", optuna.samplers.RandomSampler),
        ("tpe", optuna.samplers.TPESampler),
        ("nsgaii", optuna.samplers.NSGAIISampler),
        ("evolution", RegularizedEvolutionSampler),
        ("rnn", RNNControllerSampler),
    ],
)
def test_create_sampler_builds_each_registered_sampler(name: str, cls: type) -> None:
    space = create_search_space("nasbench201")
    sampler = create_sampler(name, seed=0, search_space=space)
    assert type(sampler) is cls


def test_create_sampler_uses_the_samplers_own_defaults_and_passes_kwargs() -> None:
    space = create_search_space("nasbench201")
    sampler = create_sampler("evolution", seed=1, search_space=space)
    # The sampler's own defaults (documented: 15/8), not a preset of the factory.
    defaults = inspect.signature(RegularizedEvolutionSampler).parameters
    settings = sampler._settings  # type: ignore[attr-defined]
    assert settings.population_size == defaults["population_size"].default
    assert settings.sample_size == defaults["sample_size"].default
    assert sampler._settings.search_space is space  # type: ignore[attr-defined]
    small = create_sampler("evolution", seed=1, population_size=10, sample_size=3)
    assert (small._settings.population_size, small._settings.sample_size) == (10, 3)  # type: ignore[attr-defined]


def test_create_sampler_is_seeded() -> None:
    def params(name: str) -> list[dict[str, object]]:
        study = optuna.create_study(sampler=create_sampler(name, seed=7))
        study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=12)
        return [t.params for t in study.trials]

    for name in ("random", "tpe", "evolution"):
        assert params(name) == params(name)


def test_create_sampler_errors_name_the_value() -> None:
    with pytest.raises(ValueError, match="Unknown sampler 'cmaes'.*'random'"):
        create_sampler("cmaes")
    with pytest.raises(ValueError, match="'tpe'.*'population_size'.*n_startup_trials"):
        create_sampler("tpe", population_size=3)
    with pytest.raises(ValueError, match="'polulation_size'"):
        create_sampler("evolution", polulation_size=3)
    # The constructor's own validation passes through.
    with pytest.raises(ValueError, match="sample_size"):
        create_sampler("evolution", population_size=4, sample_size=9)
