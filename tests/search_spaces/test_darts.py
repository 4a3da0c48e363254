from __future__ import annotations

import pickle
import re
from typing import Any

import numpy as np
import optuna
import pytest
import torch

from optuna_nas.search_spaces import AMOEBANET_A
from optuna_nas.search_spaces import DARTS_OPS
from optuna_nas.search_spaces import DARTS_V1
from optuna_nas.search_spaces import DARTS_V2
from optuna_nas.search_spaces import ENAS
from optuna_nas.search_spaces import NASNET_A
from optuna_nas.search_spaces import PRIMITIVES
from optuna_nas.search_spaces import DartsSearchSpace
from optuna_nas.search_spaces import Genotype
from optuna_nas.search_spaces import create_search_space
from optuna_nas.search_spaces import list_search_spaces
from optuna_nas.search_spaces._darts import DartsNetwork
from optuna_nas.search_spaces._darts import parse_genotype


SEVEN_OPS = (
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)

# The published genotypes as printed by the DARTS code (one line) or written in DARTS-style
# genotypes.py files (multi-line, range(...)), typed independently of the module's constants.
DARTS_V2_TEXT = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
    "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)
DARTS_V1_TEXT = (
    "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('skip_connect', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])"
)
NASNET_TEXT = """
Genotype(
  normal = [
    ('sep_conv_5x5', 1),
    ('sep_conv_3x3', 0),
    ('sep_conv_5x5', 0),
    ('sep_conv_3x3', 0),
    ('avg_pool_3x3', 1),
    ('skip_connect', 0),
    ('avg_pool_3x3', 0),
    ('avg_pool_3x3', 0),
    ('sep_conv_3x3', 1),
    ('skip_connect', 1),
  ],
  normal_concat = [2, 3, 4, 5, 6],
  reduce = [
    ('sep_conv_5x5', 1),
    ('sep_conv_7x7', 0),
    ('max_pool_3x3', 1),
    ('sep_conv_7x7', 0),
    ('avg_pool_3x3', 1),
    ('sep_conv_5x5', 0),
    ('skip_connect', 3),
    ('avg_pool_3x3', 2),
    ('sep_conv_3x3', 2),
    ('max_pool_3x3', 1),
  ],
  reduce_concat = [4, 5, 6],
)
"""
AMOEBANET_TEXT = """
Genotype(
    normal=[("avg_pool_3x3", 0), ("max_pool_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_5x5", 2),
            ("sep_conv_3x3", 0), ("avg_pool_3x3", 3), ("sep_conv_3x3", 1), ("skip_connect", 1),
            ("skip_connect", 0), ("avg_pool_3x3", 1)],
    normal_concat=[4, 5, 6],
    reduce=[("avg_pool_3x3", 0), ("sep_conv_3x3", 1), ("max_pool_3x3", 0), ("sep_conv_7x7", 2),
            ("sep_conv_7x7", 0), ("avg_pool_3x3", 1), ("max_pool_3x3", 0), ("max_pool_3x3", 1),
            ("conv_7x1_1x7", 0), ("sep_conv_3x3", 5)],
    reduce_concat=[3, 4, 6])
"""
ENAS_TEXT = (
    "Genotype(normal=[('sep_conv_3x3', 1), ('skip_connect', 1), ('sep_conv_5x5', 1), "
    "('skip_connect', 0), ('avg_pool_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('avg_pool_3x3', 1), ('sep_conv_5x5', 1), ('avg_pool_3x3', 0)], "
    "normal_concat=[2, 3, 4, 5, 6], reduce=[('sep_conv_5x5', 0), ('avg_pool_3x3', 1), "
    "('sep_conv_3x3', 1), ('avg_pool_3x3', 1), ('sep_conv_3x3', 1), ('avg_pool_3x3', 1), "
    "('sep_conv_5x5', 4), ('avg_pool_3x3', 1), ('sep_conv_3x3', 5), ('sep_conv_5x5', 0)], "
    "reduce_concat=[2, 3, 6])"
)
PUBLISHED = {
    "DARTS_V1": (DARTS_V1, DARTS_V1_TEXT),
    "DARTS_V2": (DARTS_V2, DARTS_V2_TEXT),
    "NASNET_A": (NASNET_A, NASNET_TEXT),
    "AMOEBANET_A": (AMOEBANET_A, AMOEBANET_TEXT),
    "ENAS": (ENAS, ENAS_TEXT),
}


@pytest.fixture
def space() -> DartsSearchSpace:
    return DartsSearchSpace()


def _num_params(model: torch.nn.Module, *, include_aux: bool = False) -> int:
    return sum(
        p.numel()
        for name, p in model.named_parameters()
        if include_aux or not name.startswith("auxiliary_head")
    )


# ------------------------------------------------------------------------- constants
def test_primitives_are_darts_paper_order() -> None:
    assert tuple(PRIMITIVES) == ("none",) + SEVEN_OPS
    assert all(op in DARTS_OPS for op in PRIMITIVES)


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_published_genotypes_parse_and_print(name: str, space: DartsSearchSpace) -> None:
    genotype, text = PUBLISHED[name]
    assert isinstance(genotype, Genotype)
    assert parse_genotype(text) == genotype
    assert parse_genotype(str(genotype)) == genotype
    assert space.to_string(genotype) == str(genotype) == repr(genotype)
    # The one-line texts are exactly what DARTS prints.
    if "\n" not in text:
        assert str(genotype) == text


def test_darts_genotypes_are_in_the_space(space: DartsSearchSpace) -> None:
    for genotype, text in (PUBLISHED["DARTS_V1"], PUBLISHED["DARTS_V2"]):
        assert space.from_string(text) == genotype
        assert space.from_params(space.to_params(genotype)) == genotype


@pytest.mark.parametrize("genotype", [NASNET_A, AMOEBANET_A, ENAS])
def test_published_cells_outside_the_space_raise(
    genotype: Genotype, space: DartsSearchSpace
) -> None:
    with pytest.raises(ValueError, match="outside this search space"):
        space.from_string(str(genotype))
    with pytest.raises(ValueError, match="outside this search space"):
        space.to_params(genotype)


def test_outside_space_reasons() -> None:
    five = DartsSearchSpace(num_nodes=5)
    with pytest.raises(ValueError, match="sep_conv_7x7"):
        five.from_string(str(NASNET_A))
    with pytest.raises(ValueError, match=re.escape("[4, 5, 6]")):
        DartsSearchSpace(num_nodes=5, operations=[*SEVEN_OPS, "sep_conv_7x7"]).to_params(NASNET_A)
    with pytest.raises(ValueError, match="5 intermediate nodes"):
        DartsSearchSpace().to_params(NASNET_A)


# ------------------------------------------------------------------------- Genotype type
def test_genotype_accepts_darts_style_values_and_is_immutable() -> None:
    lists = Genotype(
        normal=[list(p) for p in DARTS_V2.normal],
        normal_concat=range(2, 6),
        reduce=list(DARTS_V2.reduce),
        reduce_concat=[2, 3, 4, 5],
    )
    assert lists == DARTS_V2
    assert hash(lists) == hash(DARTS_V2)
    assert isinstance(lists.normal, tuple) and isinstance(lists.normal[0], tuple)
    assert lists.normal_concat == (2, 3, 4, 5)
    assert lists._fields == ("normal", "normal_concat", "reduce", "reduce_concat")
    assert pickle.loads(pickle.dumps(ENAS)) == ENAS
    assert DARTS_V2._replace(reduce=DARTS_V1.reduce).reduce == DARTS_V1.reduce
    with pytest.raises(ValueError, match="conv_9x9"):
        DARTS_V2._replace(reduce=(("conv_9x9", 0), ("skip_connect", 1)))
    with pytest.raises(AttributeError):
        DARTS_V2.normal = ()  # type: ignore[misc]
    assert NASNET_A.num_nodes == (5, 5)


# ------------------------------------------------------------------------- parsing
def test_parse_accepts_variants() -> None:
    variants = [
        DARTS_V2_TEXT.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=range(2, 6)").replace(
            "reduce_concat=[2, 3, 4, 5]", "reduce_concat=range(2,6)"
        ),
        DARTS_V2_TEXT.replace("'", '"'),
        "\n   " + DARTS_V2_TEXT.replace(", ", ",\n\t ") + "  \n",
        DARTS_V2_TEXT.replace("[", "(").replace("]", ")"),
        # Positional fields, as DARTS' namedtuple allows, and a module-qualified name.
        DARTS_V2_TEXT.replace("normal=", "")
        .replace("normal_concat=", "")
        .replace("Genotype(", "genotypes.Genotype("),
    ]
    for text in variants:
        assert parse_genotype(text) == DARTS_V2, text


@pytest.mark.parametrize(
    ("text", "bad_part"),
    [
        ("", "''"),
        ("Genotype(normal=[('sep_conv_3x3', 0)", "Malformed"),
        ("Network(normal=[])", "Network(normal=[])"),
        ("[('sep_conv_3x3', 0)]", "Malformed"),
        ("__import__('os').system('echo pwned')", "__import__"),
        (DARTS_V2_TEXT.replace("'dil_conv_3x3'", "'conv_9x9'"), "'conv_9x9'"),
        (DARTS_V2_TEXT.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 5)"), "5"),
        (DARTS_V2_TEXT.replace("('sep_conv_3x3', 1)", "('sep_conv_3x3', 2)", 1), "node 2"),
        (DARTS_V2_TEXT.replace(", ('dil_conv_3x3', 2)", ""), "7 pair(s)"),
        (DARTS_V2_TEXT.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 2, 5)"), "2, 5"),
        (DARTS_V2_TEXT.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', -1)"), "-1"),
        (DARTS_V2_TEXT.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', '2')"), "'2'"),
        (DARTS_V2_TEXT.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[2, 3, 9]"), "9"),
        (DARTS_V2_TEXT.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[2, 2]"), "[2, 2]"),
        (DARTS_V2_TEXT.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[]"), "[]"),
        (DARTS_V2_TEXT.replace("normal_concat=", "concat="), "'concat'"),
        (DARTS_V2_TEXT.replace(", reduce_concat=[2, 3, 4, 5]", ""), "reduce_concat"),
        (DARTS_V2_TEXT.replace("[2, 3, 4, 5]", "sorted([5, 4, 3, 2])"), "sorted("),
        (DARTS_V2_TEXT.replace("[2, 3, 4, 5]", "list(range(2, 6))"), "list(range(2, 6))"),
        (DARTS_V2_TEXT.replace("[2, 3, 4, 5]", "range(10**12)"), "range(10**12)"),
        (DARTS_V2_TEXT.replace("[2, 3, 4, 5]", "range(10000000000)"), "range(0, 10000000000)"),
        (
            DARTS_V2_TEXT.replace("'sep_conv_3x3'", "__import__('os').getcwd()", 1),
            "__import__",
        ),
    ],
)
def test_parse_rejects_bad_strings(text: str, bad_part: str, space: DartsSearchSpace) -> None:
    with pytest.raises(ValueError, match=re.escape(bad_part)):
        parse_genotype(text)
    with pytest.raises(ValueError, match=re.escape(bad_part)):
        space.from_string(text)


def test_parse_rejects_non_strings() -> None:
    with pytest.raises(ValueError, match="42"):
        parse_genotype(42)  # type: ignore[arg-type]


def test_none_op_is_a_valid_genotype_but_outside_the_space(space: DartsSearchSpace) -> None:
    text = DARTS_V2_TEXT.replace("'dil_conv_3x3'", "'none'")
    assert parse_genotype(text).normal[-1] == ("none", 2)
    with pytest.raises(ValueError, match="'none'"):
        space.from_string(text)


# ------------------------------------------------------------------------- space contract
def test_registry_creates_the_space() -> None:
    assert "darts" in list_search_spaces()
    space = create_search_space("darts")
    assert isinstance(space, DartsSearchSpace)
    assert space.operations == SEVEN_OPS
    assert repr(space) == "DartsSearchSpace()"
    small = create_search_space("darts", num_nodes=2, operations=["skip_connect", "sep_conv_3x3"])
    assert len(small.decisions) == 2 * 2 * 2 * 2
    assert "num_nodes=2" in repr(small)


def test_decisions(space: DartsSearchSpace) -> None:
    names = [d.name for d in space.decisions]
    assert len(names) == len(set(names)) == 2 * 4 * 2 * 2
    assert names[:4] == [
        "darts/normal/node2/input0",
        "darts/normal/node2/op0",
        "darts/normal/node2/input1",
        "darts/normal/node2/op1",
    ]
    for decision in space.decisions:
        assert space.owns_param(decision.name)
        cell, node, kind = decision.name.split("/")[1:]
        assert cell in ("normal", "reduce")
        k = int(node.removeprefix("node"))
        assert 2 <= k <= 5
        if kind.startswith("input"):
            assert decision.choices == tuple(range(k))
        else:
            assert decision.choices == SEVEN_OPS
    # Node k has (k * 7) ** 2 ordered choices for its two inputs; two cells.
    assert space.num_architectures == (14 * 21 * 28 * 35) ** 4


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_nodes": 0},
        {"num_nodes": True},
        {"operations": []},
        {"operations": ["none", "skip_connect"]},
        {"operations": ["skip_connect", "conv_9x9"]},
        {"operations": ["skip_connect", "skip_connect"]},
        {"operations": "skip_connect"},
    ],
)
def test_constructor_validation(kwargs: dict) -> None:
    bad = next(iter(kwargs.values()))
    with pytest.raises(ValueError, match=re.escape(repr(bad)[:12])):
        DartsSearchSpace(**kwargs)


def test_round_trips_on_random_samples(space: DartsSearchSpace) -> None:
    rngs: list[np.random.Generator | np.random.RandomState] = [
        np.random.default_rng(0),
        np.random.RandomState(1),
    ]
    seen = set()
    for i in range(400):
        genotype = space.sample(rngs[i % 2])
        seen.add(genotype)
        params = space.to_params(genotype)
        assert set(params) == {d.name for d in space.decisions}
        assert space.from_params(params) == genotype
        text = space.to_string(genotype)
        assert space.from_string(text) == genotype
        assert space.to_string(space.from_string(text)) == text
        assert parse_genotype(text) == genotype
        assert genotype.normal_concat == genotype.reduce_concat == (2, 3, 4, 5)
    assert len(seen) == 400


def test_round_trips_custom_space() -> None:
    space = DartsSearchSpace(num_nodes=5, operations=[*SEVEN_OPS, "sep_conv_7x7", "conv_7x1_1x7"])
    rng = np.random.default_rng(3)
    for _ in range(50):
        genotype = space.sample(rng)
        assert space.from_params(space.to_params(genotype)) == genotype
        assert space.from_string(space.to_string(genotype)) == genotype


def test_from_params_ignores_foreign_params_and_validates(space: DartsSearchSpace) -> None:
    params = space.to_params(DARTS_V2)
    assert space.from_params({**params, "lr": 0.1, "other/x": 1}) == DARTS_V2
    missing = dict(params)
    del missing["darts/reduce/node4/op1"]
    with pytest.raises(ValueError, match="darts/reduce/node4/op1"):
        space.from_params(missing)
    with pytest.raises(ValueError, match="'conv_9x9'"):
        space.from_params({**params, "darts/normal/node3/op0": "conv_9x9"})
    with pytest.raises(ValueError, match="3"):
        space.from_params({**params, "darts/normal/node3/input0": 3})


def test_suggest_with_optuna(space: DartsSearchSpace) -> None:
    genotypes = []

    def objective(trial: optuna.Trial) -> float:
        genotype = space.suggest(trial)
        lr = trial.suggest_float("lr", 1e-3, 1e-1, log=True)
        genotypes.append(genotype)
        return lr

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=5)
    for trial, genotype in zip(study.trials, genotypes):
        nas = {k: v for k, v in trial.params.items() if k != "lr"}
        assert all(k.startswith("darts/") for k in nas)
        assert nas == space.to_params(genotype)
        assert space.from_params(trial.params) == genotype

    # Enqueueing a published genotype reproduces it exactly.
    study.enqueue_trial(space.to_params(DARTS_V2))
    study.optimize(objective, n_trials=1)
    assert genotypes[-1] == DARTS_V2


def test_mutate_changes_exactly_one_decision(space: DartsSearchSpace) -> None:
    rng = np.random.default_rng(7)
    for _ in range(200):
        genotype = space.sample(rng)
        child = space.mutate(genotype, rng)
        before, after = space.to_params(genotype), space.to_params(child)
        assert sum(before[k] != after[k] for k in before) == 1
        assert child != genotype
        assert space.from_string(space.to_string(child)) == child


# ------------------------------------------------------------------------- network
def test_darts_v2_parameter_count() -> None:
    # DARTS (Liu et al., 2019): the CIFAR-10 network of DARTS_V2 (C=36, 20 cells) has 3.3M
    # parameters; the DARTS code logs "param size = 3.349342MB" (auxiliary head excluded).
    model = DartsSearchSpace().build(DARTS_V2, num_classes=10, auxiliary=True)
    count = _num_params(model)
    assert 3_348_500 <= count <= 3_349_500
    assert _num_params(model, include_aux=True) > count
    plain = DartsNetwork(DARTS_V2, num_classes=10)
    assert _num_params(plain, include_aux=True) == count


@pytest.mark.parametrize("name", list(PUBLISHED))
@pytest.mark.parametrize("shape", [(2, 3, 32, 32), (2, 1, 28, 28)])
def test_published_cells_build_forward_backward(
    name: str, shape: tuple[int, ...], space: DartsSearchSpace
) -> None:
    torch.manual_seed(0)
    genotype = PUBLISHED[name][0]
    for layers in (3, 4, 5):
        model = space.build(
            genotype,
            num_classes=10,
            in_channels=shape[1],
            channels=8,
            layers=layers,
            auxiliary=True,
            drop_path_prob=0.2,
        )
        model.train()
        logits, aux_logits = model(torch.randn(*shape))
        assert logits.shape == aux_logits.shape == (2, 10)
        (logits.sum() + 0.4 * aux_logits.sum()).backward()
        assert all(p.grad is not None for p in model.parameters())
        assert torch.isfinite(logits).all()
        model.eval()
        with torch.no_grad():
            out = model(torch.randn(*shape))
        assert isinstance(out, torch.Tensor) and out.shape == (2, 10)


def test_drop_path_and_aux_switches() -> None:
    torch.manual_seed(0)
    model = DartsNetwork(DARTS_V2, num_classes=3, channels=4, layers=3, auxiliary=False)
    x = torch.randn(4, 3, 16, 16)
    model.train()
    assert isinstance(model(x), torch.Tensor)
    model.eval()
    with torch.no_grad():
        first = model(x)
        model.drop_path_prob = 0.5  # ignored in eval mode
        assert torch.equal(first, model(x))


def test_build_accepts_foreign_genotypes_and_rejects_bad_options(
    space: DartsSearchSpace,
) -> None:
    class DartsCodeGenotype:  # duck-typed stand-in for DARTS' own namedtuple
        normal = list(DARTS_V2.normal)
        normal_concat = range(2, 6)
        reduce = list(DARTS_V2.reduce)
        reduce_concat = range(2, 6)

    foreign: Any = DartsCodeGenotype()
    model = space.build(foreign, num_classes=2, channels=4, layers=3)
    assert isinstance(model, DartsNetwork) and model.genotype == DARTS_V2
    assert space.to_params(foreign) == space.to_params(DARTS_V2)
    with pytest.raises(ValueError, match="widht"):
        space.build(DARTS_V2, num_classes=2, widht=3)
    with pytest.raises(ValueError, match="channels"):
        space.build(DARTS_V2, num_classes=2, channels=0)
    with pytest.raises(ValueError, match="1.0"):
        space.build(DARTS_V2, num_classes=2, drop_path_prob=1.0)
    with pytest.raises(ValueError, match="'abc'"):
        space.build("abc", num_classes=2)  # type: ignore[arg-type]
