"""ProxyScorer (order independence, seeding, the callable form) and the rank vote."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from optuna_nas.estimators import ProxyScorer
from optuna_nas.estimators import create_proxy
from optuna_nas.estimators import vote
from optuna_nas.samplers._randomness import derive_seed
from optuna_nas.search_spaces import create_search_space


BUILD = {"channels": 4, "cells_per_stage": 1}


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _scorer(**kwargs: Any) -> ProxyScorer:
    options: dict[str, Any] = {
        "proxies": ("synflow", "params"),
        "num_classes": 10,
        "in_channels": 3,
        "image_size": 8,
        "build_kwargs": BUILD,
    }
    options.update(kwargs)
    return ProxyScorer(create_search_space("nasbench201"), **options)


def _archs(n: int) -> list[Any]:
    space = create_search_space("nasbench201")
    rng = np.random.RandomState(0)
    return [space.sample(rng) for _ in range(n)]


def _without_seconds(rows: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def test_scores_do_not_depend_on_order_or_global_random_state() -> None:
    archs = _archs(4)
    forward = _scorer().score_many(archs)
    torch.manual_seed(123)
    backward = _scorer().score_many(archs[::-1])[::-1]
    assert _without_seconds(forward) == _without_seconds(backward)
    assert len({row["synflow"] for row in forward}) == 4


def test_shared_and_consumed_networks_score_as_each_proxy_alone() -> None:
    """ProxyScorer lets the keeping proxies share one network and the others consume theirs:
    the scores are each proxy's on a network of its own."""
    proxies = ("snip", "params", "synflow", "flops", "grad_norm")
    g = torch.Generator().manual_seed(0)
    batch = (torch.randn(4, 3, 8, 8, generator=g), torch.randint(0, 10, (4,), generator=g))
    scorer = _scorer(proxies=proxies, batch=batch)
    for arch in _archs(3):
        row = scorer.score(arch)
        assert list(row) == [*proxies, "seconds"]
        alone = {name: create_proxy(name)(scorer.build(arch), *batch) for name in proxies}
        assert {k: row[k] for k in proxies} == alone


def test_network_is_seeded_from_seed_and_architecture_string() -> None:
    space = create_search_space("nasbench201")
    arch = _archs(1)[0]
    torch.manual_seed(derive_seed(0, space.to_string(arch)))
    expected = create_proxy("synflow")(
        space.build(arch, num_classes=10, **BUILD), torch.zeros(1, 3, 8, 8)
    )
    assert _scorer().score(arch)["synflow"] == expected
    assert _scorer(seed=1).score(arch)["synflow"] != expected


def test_score_has_each_proxy_and_seconds_and_leaves_rng_alone() -> None:
    arch = _archs(1)[0]
    state = torch.get_rng_state()
    row = _scorer().score(arch)
    assert torch.equal(torch.get_rng_state(), state)
    assert list(row) == ["synflow", "params", "seconds"]
    assert isinstance(row["seconds"], float) and 0 < row["seconds"] < 60
    assert row["params"] == sum(
        p.numel() for p in _scorer().build(arch).parameters() if p.requires_grad
    )


def test_callable_returns_the_first_proxys_score() -> None:
    arch = _archs(1)[0]
    assert _scorer()(arch) == _scorer().score(arch)["synflow"]
    assert _scorer(proxies=("params", "synflow"))(arch) == _scorer().score(arch)["params"]


def test_data_dependent_proxies_use_the_batch() -> None:
    g = torch.Generator().manual_seed(0)
    batch = (torch.randn(4, 3, 8, 8, generator=g), torch.randint(0, 10, (4,), generator=g))
    arch = _archs(1)[0]
    row = _scorer(proxies=("snip", "naswot"), batch=batch).score(arch)
    assert math.isfinite(row["snip"]) and row["snip"] > 0
    other = (batch[0] * 3 + 1, batch[1])
    assert _scorer(proxies=("snip",), batch=other).score(arch)["snip"] != row["snip"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"proxies": ("snip",)}, r"\['snip'\] need batch"),
        ({"proxies": ()}, "at least one"),
        ({"proxies": ("synflow", "synflow")}, "distinct"),
        ({"proxies": ("nope",)}, "Unknown proxy 'nope'"),
        ({"batch": (torch.zeros(2, 1, 8, 8), torch.zeros(2))}, r"\(N, 3, 8, 8\)"),
        ({"batch": (torch.zeros(2, 3, 8, 8), torch.zeros(3))}, r"targets must have shape \(2,\)"),
        ({"num_classes": 0}, "num_classes"),
        ({"image_size": (8, 0)}, r"image_size\[1\]"),
        ({"image_size": 2.5}, "image_size"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _scorer(**kwargs)


def test_vote_averages_ranks() -> None:
    scores = [
        {"a": 1.0, "b": 5.0, "c": 0.0},
        {"a": 2.0, "b": 3.0, "c": 0.0},
        {"a": 3.0, "b": 4.0, "c": float("nan")},
    ]
    assert vote(scores, ["a", "b"]) == [2.0, 1.5, 2.5]
    # Ties share their average rank; NaN ranks worst.
    assert vote(scores, ["c"]) == [2.5, 2.5, 1.0]
    # Two architectures, three proxies: the majority's choice gets the larger vote.
    pair = [{"x": 1, "y": 1, "z": 2}, {"x": 2, "y": 2, "z": 1}]
    first, second = vote(pair, ["x", "y", "z"])
    assert second > first
    assert vote([], ["a"]) == []
    with pytest.raises(ValueError, match=r"'d'.*\[0, 1, 2\]"):
        vote(scores, ["d"])
    with pytest.raises(ValueError, match="at least one"):
        vote(scores, [])
