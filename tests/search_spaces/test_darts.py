from __future__ import annotations

import itertools
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
from optuna_nas.trial_outcome import InvalidArchitectureError


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


# Tests of the space contract run over both input encodings.
both_encodings = pytest.mark.parametrize(
    "distinct", [True, False], ids=["distinct", "independent"]
)


def _equal_input_nodes(genotype: Genotype) -> list[tuple[str, int]]:
    """(cell, node) of every node that reads one input twice."""
    out = []
    for cell in ("normal", "reduce"):
        pairs = getattr(genotype, cell)
        for node, (first, second) in enumerate(zip(pairs[::2], pairs[1::2]), start=2):
            if first[1] == second[1]:
                out.append((cell, node))
    return out


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


@both_encodings
@pytest.mark.parametrize("name", ["DARTS_V1", "DARTS_V2"])
def test_darts_genotypes_are_in_the_space(name: str, distinct: bool) -> None:
    space = DartsSearchSpace(distinct_inputs=distinct)
    genotype, text = PUBLISHED[name]
    # Exact round trips, as for NB201 strings: text -> genotype -> params -> genotype -> text.
    assert space.from_string(text) == genotype
    params = space.to_params(genotype)
    assert set(params) == {d.name for d in space.decisions}
    assert space.from_params(params) == genotype
    assert space.to_string(space.from_params(params)) == text
    assert space.to_params(space.from_string(space.to_string(genotype))) == params


def test_darts_v2_pair_order_is_kept(space: DartsSearchSpace) -> None:
    # DARTS_V2's reduce cell lists ('skip_connect', 2) before ('max_pool_3x3', 1) at node 3.
    assert DARTS_V2.reduce[2:4] == (("skip_connect", 2), ("max_pool_3x3", 1))
    params = space.to_params(DARTS_V2)
    assert params["darts/reduce/node3/inputs"] == "2_1"
    assert params["darts/reduce/node3/op0"] == "skip_connect"
    assert params["darts/reduce/node3/op1"] == "max_pool_3x3"
    # DARTS_V1's normal node 2 reads input 1 first.
    assert space.to_params(DARTS_V1)["darts/normal/node2/inputs"] == "1_0"


@pytest.mark.parametrize("genotype", [NASNET_A, AMOEBANET_A, ENAS])
def test_published_cells_outside_the_space_raise(
    genotype: Genotype, space: DartsSearchSpace
) -> None:
    with pytest.raises(InvalidArchitectureError, match="outside this search space"):
        space.from_string(str(genotype))
    with pytest.raises(InvalidArchitectureError, match="outside this search space"):
        space.to_params(genotype)


def test_equal_inputs_are_outside_the_distinct_space(space: DartsSearchSpace) -> None:
    normal = list(DARTS_V2.normal)
    normal[2:4] = [("sep_conv_3x3", 1), ("skip_connect", 1)]  # node 3 reads input 1 twice
    genotype = DARTS_V2._replace(normal=tuple(normal))
    assert _equal_input_nodes(genotype) == [("normal", 3)]
    message = "outside this search space: node 3 of its normal cell reads input 1 twice"
    with pytest.raises(InvalidArchitectureError, match=message):
        space.from_string(str(genotype))
    with pytest.raises(InvalidArchitectureError, match=message):
        space.to_params(genotype)
    # A valid genotype: parse_genotype, build and the independent-inputs space accept it.
    assert parse_genotype(str(genotype)) == genotype
    independent = DartsSearchSpace(distinct_inputs=False)
    assert independent.from_params(independent.to_params(genotype)) == genotype
    assert independent.from_string(str(genotype)) == genotype
    # The reduce cell is named too.
    reduce = list(DARTS_V2.reduce)
    reduce[6:8] = [("skip_connect", 4), ("max_pool_3x3", 4)]
    with pytest.raises(
        InvalidArchitectureError, match="node 5 of its reduce cell reads input 4 twice"
    ):
        space.to_params(DARTS_V2._replace(reduce=tuple(reduce)))
    # Published cells that read an input twice (ENAS normal node 2) are outside it as well.
    five = DartsSearchSpace(num_nodes=5, operations=[*SEVEN_OPS, "sep_conv_7x7"])
    with pytest.raises(
        InvalidArchitectureError, match="node 2 of its normal cell reads input 1 twice"
    ):
        five.to_params(ENAS._replace(normal_concat=(2, 3, 4, 5, 6), reduce_concat=(2, 3, 4, 5, 6)))


def test_outside_space_reasons() -> None:
    five = DartsSearchSpace(num_nodes=5)
    with pytest.raises(InvalidArchitectureError, match="sep_conv_7x7"):
        five.from_string(str(NASNET_A))
    with pytest.raises(InvalidArchitectureError, match=re.escape("[4, 5, 6]")):
        DartsSearchSpace(num_nodes=5, operations=[*SEVEN_OPS, "sep_conv_7x7"]).to_params(NASNET_A)
    with pytest.raises(InvalidArchitectureError, match="5 intermediate nodes"):
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
    with pytest.raises(InvalidArchitectureError, match="conv_9x9"):
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
    with pytest.raises(InvalidArchitectureError, match=re.escape(bad_part)):
        parse_genotype(text)
    with pytest.raises(InvalidArchitectureError, match=re.escape(bad_part)):
        space.from_string(text)


def test_parse_rejects_non_strings() -> None:
    with pytest.raises(InvalidArchitectureError, match="42"):
        parse_genotype(42)  # type: ignore[arg-type]


def test_none_op_is_a_valid_genotype_but_outside_the_space(space: DartsSearchSpace) -> None:
    text = DARTS_V2_TEXT.replace("'dil_conv_3x3'", "'none'")
    assert parse_genotype(text).normal[-1] == ("none", 2)
    with pytest.raises(InvalidArchitectureError, match="'none'"):
        space.from_string(text)


# ------------------------------------------------------------------------- space contract
def test_registry_creates_the_space() -> None:
    assert "darts" in list_search_spaces()
    space = create_search_space("darts")
    assert isinstance(space, DartsSearchSpace)
    assert space.operations == SEVEN_OPS
    assert space.distinct_inputs is True
    assert repr(space) == "DartsSearchSpace()"
    small = create_search_space("darts", num_nodes=2, operations=["skip_connect", "sep_conv_3x3"])
    assert len(small.decisions) == 2 * 2 * 3  # cells * nodes * (inputs, op0, op1)
    assert "num_nodes=2" in repr(small)
    independent = create_search_space("darts", distinct_inputs=False)
    assert isinstance(independent, DartsSearchSpace)
    assert independent.distinct_inputs is False
    assert repr(independent) == "DartsSearchSpace(distinct_inputs=False)"
    assert len(independent.decisions) == 2 * 4 * 4  # cells * nodes * (input0, op0, input1, op1)


def test_decisions_independent_inputs() -> None:
    space = DartsSearchSpace(distinct_inputs=False)
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


def test_decisions_distinct_inputs(space: DartsSearchSpace) -> None:
    names = [d.name for d in space.decisions]
    assert len(names) == len(set(names)) == 2 * 4 * 3
    assert names[:6] == [
        "darts/normal/node2/inputs",
        "darts/normal/node2/op0",
        "darts/normal/node2/op1",
        "darts/normal/node3/inputs",
        "darts/normal/node3/op0",
        "darts/normal/node3/op1",
    ]
    assert names[12] == "darts/reduce/node2/inputs"
    assert space.param_name("reduce", 3, "inputs") == "darts/reduce/node3/inputs"
    for decision in space.decisions:
        assert space.owns_param(decision.name)
        cell, node, kind = decision.name.split("/")[1:]
        assert cell in ("normal", "reduce")
        k = int(node.removeprefix("node"))
        assert 2 <= k <= 5
        if kind == "inputs":
            expected = {f"{i}_{j}" for i in range(k) for j in range(k) if i != j}
            assert set(decision.choices) == expected
            assert len(decision.choices) == k * (k - 1)
        else:
            assert kind in ("op0", "op1")
            assert decision.choices == SEVEN_OPS
    # Node k: k * (k - 1) ordered pairs of distinct inputs, 7 * 7 operations; two cells.
    assert space.num_architectures == (2 * 6 * 12 * 20 * 7**8) ** 2
    # NAS-Bench-301 counts unordered input pairs (1 * 3 * 6 * 10 per cell); each pair with its
    # two operations appears in both orders here, so 2 ** 4 encodings per cell.
    assert space.num_architectures == 2**8 * (1 * 3 * 6 * 10 * 7**8) ** 2


@pytest.mark.parametrize(
    ("num_nodes", "operations"), [(2, ["skip_connect"]), (1, ["skip_connect", "sep_conv_3x3"])]
)
def test_distinct_space_is_the_independent_space_without_equal_inputs(
    num_nodes: int, operations: list[str]
) -> None:
    # Enumerate both (small) spaces exhaustively through their decisions.
    def all_genotypes(space: DartsSearchSpace) -> list[Genotype]:
        names = [d.name for d in space.decisions]
        return [
            space.from_params(dict(zip(names, values)))
            for values in itertools.product(*(d.choices for d in space.decisions))
        ]

    distinct = DartsSearchSpace(num_nodes=num_nodes, operations=operations)
    independent = DartsSearchSpace(
        num_nodes=num_nodes, operations=operations, distinct_inputs=False
    )
    got = all_genotypes(distinct)
    expected = {g for g in all_genotypes(independent) if not _equal_input_nodes(g)}
    assert len(got) == len(set(got)) == distinct.num_architectures
    assert set(got) == expected


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
        {"distinct_inputs": "yes"},
        {"distinct_inputs": None},
    ],
)
def test_constructor_validation(kwargs: dict) -> None:
    bad = next(iter(kwargs.values()))
    with pytest.raises(ValueError, match=re.escape(repr(bad)[:12])):
        DartsSearchSpace(**kwargs)


@both_encodings
def test_round_trips_on_random_samples(distinct: bool) -> None:
    space = DartsSearchSpace(distinct_inputs=distinct)
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
        if distinct:
            assert not _equal_input_nodes(genotype)
    assert len(seen) == 400
    # Without the constraint a random cell has distinct inputs everywhere with probability
    # 1/2 * 2/3 * 3/4 * 4/5 = 1/5, so 96% of genotypes read some input twice; with it, none.
    with_equal = sum(bool(_equal_input_nodes(g)) for g in seen)
    assert with_equal == 0 if distinct else with_equal > 300


@both_encodings
def test_round_trips_custom_space(distinct: bool) -> None:
    space = DartsSearchSpace(
        num_nodes=5,
        operations=[*SEVEN_OPS, "sep_conv_7x7", "conv_7x1_1x7"],
        distinct_inputs=distinct,
    )
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
    with pytest.raises(InvalidArchitectureError, match="darts/reduce/node4/op1"):
        space.from_params(missing)
    with pytest.raises(InvalidArchitectureError, match="'conv_9x9'"):
        space.from_params({**params, "darts/normal/node3/op0": "conv_9x9"})
    for bad in ("3_0", "1_1", "0-1", (0, 1)):
        with pytest.raises(InvalidArchitectureError, match=re.escape(repr(bad))):
            space.from_params({**params, "darts/normal/node3/inputs": bad})
    # The other encoding's parameters are not this space's.
    independent = DartsSearchSpace(distinct_inputs=False)
    with pytest.raises(InvalidArchitectureError, match="darts/normal/node2/inputs"):
        space.from_params(independent.to_params(DARTS_V2))
    with pytest.raises(InvalidArchitectureError, match="3"):
        independent.from_params(
            {**independent.to_params(DARTS_V2), "darts/normal/node3/input0": 3}
        )


@both_encodings
def test_suggest_with_optuna(distinct: bool) -> None:
    space = DartsSearchSpace(distinct_inputs=distinct)
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


@both_encodings
def test_mutate_changes_exactly_one_decision(distinct: bool) -> None:
    space = DartsSearchSpace(distinct_inputs=distinct)
    rng = np.random.default_rng(7)
    changed_kinds = set()
    for _ in range(200):
        genotype = space.sample(rng)
        child = space.mutate(genotype, rng)
        before, after = space.to_params(genotype), space.to_params(child)
        changed = [k for k in before if before[k] != after[k]]
        assert len(changed) == 1
        changed_kinds.add(changed[0].split("/")[-1])
        assert child != genotype
        assert space.from_string(space.to_string(child)) == child
        if distinct:
            assert not _equal_input_nodes(child)
    expected = {"inputs", "op0", "op1"} if distinct else {"input0", "input1", "op0", "op1"}
    assert changed_kinds == expected


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
    with pytest.raises(InvalidArchitectureError, match="'abc'"):
        space.build("abc", num_classes=2)  # type: ignore[arg-type]
