"""The NASNet/DARTS micro (cell) search space, published genotypes and the evaluation network.

A DARTS architecture is a :class:`Genotype`: a normal cell and a reduction cell, each a list of
``(operation, input_index)`` pairs, two per intermediate node, plus the nodes whose outputs are
concatenated into the cell output. Nodes ``0`` and ``1`` are the cell's two inputs (the outputs
of the cells two and one steps back); intermediate node ``k`` (``k >= 2``) may read any node
``< k``. Strings use the format DARTS prints, so genotypes can be pasted from papers and code.

* :class:`DartsSearchSpace` (``create_search_space("darts")``) is the searchable space: 4 nodes,
  7 operations, two *distinct* inputs per node, all intermediate nodes concatenated, as in DARTS
  and NAS-Bench-301 (``distinct_inputs=False`` gives NASNet-style independent inputs).
* :func:`parse_genotype` and :class:`DartsNetwork` work with *any* valid genotype, e.g. the
  published NASNet-A and AmoebaNet-A cells (5 nodes, operations outside the searchable 7).
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from optuna_nas._validation import check_int
from optuna_nas._validation import check_number
from optuna_nas._validation import check_positive_ints
from optuna_nas.search_spaces._base import CellGraph
from optuna_nas.search_spaces._base import Decision
from optuna_nas.search_spaces._base import SearchSpace
from optuna_nas.search_spaces._base import check_build_options
from optuna_nas.search_spaces._ops import DARTS_OPS
from optuna_nas.search_spaces._ops import FactorizedReduce
from optuna_nas.search_spaces._ops import ReLUConvBN
from optuna_nas.search_spaces._registry import register_search_space
from optuna_nas.trial_outcome import InvalidArchitectureError


if TYPE_CHECKING:
    from optuna_nas.darts._supernet import Supernet

#: The DARTS supernet's candidate operations, in the DARTS paper's order. ``none`` exists only
#: inside the supernet; the discrete search space uses the other seven.
PRIMITIVES: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
_SEARCH_OPERATIONS: tuple[str, ...] = PRIMITIVES[1:]
_CELLS: tuple[str, ...] = ("normal", "reduce")
_FIELDS: tuple[str, ...] = ("normal", "normal_concat", "reduce", "reduce_concat")


def _normalize_cell(field: str, pairs: Any) -> tuple[tuple[str, int], ...]:
    """Validate a cell's ``(operation, input_index)`` pairs and return them as tuples."""
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Iterable):
        raise InvalidArchitectureError(
            f"Genotype field {field!r} must be a list of (operation, input_index) pairs, "
            f"got {pairs!r}."
        )
    items = list(pairs)
    if not items or len(items) % 2:
        raise InvalidArchitectureError(
            f"Genotype field {field!r} must list exactly two (operation, input_index) pairs per "
            f"intermediate node, got {len(items)} pair(s): {items!r}."
        )
    cell = []
    for position, pair in enumerate(items):
        node = 2 + position // 2
        where = f"{field}[{position}] (node {node}, input {position % 2})"
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise InvalidArchitectureError(
                f"{where} must be an (operation, input_index) pair, got {pair!r}."
            )
        op, index = pair
        if not isinstance(op, str) or op not in DARTS_OPS:
            raise InvalidArchitectureError(
                f"Unknown operation {op!r} at {where}; expected one of {sorted(DARTS_OPS)!r}."
            )
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise InvalidArchitectureError(f"Input index {index!r} at {where} must be an int.")
        if not 0 <= index < node:
            raise InvalidArchitectureError(
                f"Input index {int(index)} at {where} does not point at an earlier node: node "
                f"{node} reads the cell inputs (0, 1) or earlier nodes, i.e. 0..{node - 1}."
            )
        cell.append((op, int(index)))
    return tuple(cell)


def _normalize_concat(field: str, concat: Any, num_nodes: int) -> tuple[int, ...]:
    """Validate the concatenated intermediate nodes of a cell (a list or a ``range``)."""
    if isinstance(concat, (str, bytes)) or not isinstance(concat, Iterable):
        raise InvalidArchitectureError(
            f"Genotype field {field!r} must be a list of node indices, got {concat!r}."
        )
    nodes = list(concat)
    valid = range(2, 2 + num_nodes)
    for node in nodes:
        if isinstance(node, (bool, np.bool_)) or not isinstance(node, (int, np.integer)):
            raise InvalidArchitectureError(f"Node {node!r} in {field} must be an int.")
        if node not in valid:
            raise InvalidArchitectureError(
                f"Node {int(node)} in {field} is not an intermediate node of the cell "
                f"(expected {valid.start}..{valid.stop - 1})."
            )
    if not nodes or len(set(nodes)) != len(nodes):
        raise InvalidArchitectureError(
            f"{field} must list distinct intermediate nodes, got {nodes!r}."
        )
    return tuple(int(node) for node in nodes)


class _GenotypeFields(NamedTuple):
    normal: tuple[tuple[str, int], ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[tuple[str, int], ...]
    reduce_concat: tuple[int, ...]


class Genotype(_GenotypeFields):
    """A DARTS genotype: normal and reduction cells as immutable, validated data.

    Field names and meaning follow DARTS' ``Genotype`` named tuple, so genotypes written for
    DARTS code (lists, ``range(2, 6)``) construct unchanged; they are stored as tuples, so
    genotypes compare by value and are hashable. ``str``/``repr`` print the DARTS format.

    Attributes:
        normal: ``(operation, input_index)`` pairs of the normal cell, two per intermediate node;
            the pair at position ``p`` feeds node ``2 + p // 2`` and ``input_index`` is ``0``/``1``
            for the cell inputs or an earlier intermediate node.
        normal_concat: Intermediate nodes concatenated into the normal cell's output.
        reduce: Pairs of the reduction cell (operations reading a cell input use stride 2).
        reduce_concat: Intermediate nodes concatenated into the reduction cell's output.

    Raises:
        ValueError: An operation is not in ``DARTS_OPS``, a node does not have exactly two
            inputs, an input index points at the node itself or a later node, or a concat entry
            is not an intermediate node.

    Example:
        .. code-block:: python

            from optuna_nas.search_spaces import DARTS_V2
            from optuna_nas.search_spaces import Genotype

            g = Genotype(
                normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1)] * 4,
                normal_concat=range(2, 6),
                reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1)] * 4,
                reduce_concat=range(2, 6),
            )
            print(g)  # Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5], ..)
            print(g == DARTS_V2)  # False
    """

    __slots__ = ()

    def __new__(
        cls,
        normal: Iterable[Sequence[Any]],
        normal_concat: Iterable[int],
        reduce: Iterable[Sequence[Any]],
        reduce_concat: Iterable[int],
    ) -> Genotype:
        normal_cell = _normalize_cell("normal", normal)
        reduce_cell = _normalize_cell("reduce", reduce)
        return super().__new__(
            cls,
            normal_cell,
            _normalize_concat("normal_concat", normal_concat, len(normal_cell) // 2),
            reduce_cell,
            _normalize_concat("reduce_concat", reduce_concat, len(reduce_cell) // 2),
        )

    @classmethod
    def _make(cls, iterable: Iterable[Any]) -> Genotype:  # type: ignore[override]
        # NamedTuple's _make (used by _replace) calls tuple.__new__ and would skip validation.
        return cls(*iterable)

    @property
    def num_nodes(self) -> tuple[int, int]:
        """Number of intermediate nodes of the (normal, reduction) cell."""
        return len(self.normal) // 2, len(self.reduce) // 2

    def __repr__(self) -> str:
        def cell(pairs: tuple[tuple[str, int], ...]) -> str:
            return "[" + ", ".join(repr(pair) for pair in pairs) + "]"

        return (
            f"Genotype(normal={cell(self.normal)}, normal_concat={list(self.normal_concat)}, "
            f"reduce={cell(self.reduce)}, reduce_concat={list(self.reduce_concat)})"
        )

    __str__ = __repr__


def _as_genotype(arch: Any) -> Genotype:
    """Accept a :class:`Genotype` or any object with the four genotype fields (DARTS' own)."""
    if isinstance(arch, Genotype):
        return arch
    if all(hasattr(arch, field) for field in _FIELDS):
        return Genotype(*(getattr(arch, field) for field in _FIELDS))
    raise InvalidArchitectureError(f"Expected a Genotype, got {arch!r}.")


def _literal(node: ast.expr, what: str, text: str) -> Any:
    """Evaluate a literal (never arbitrary code); ``range(...)`` is allowed for concat lists."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "range"
        and not node.keywords
        and 1 <= len(node.args) <= 3
        and all(isinstance(a, ast.Constant) and type(a.value) is int for a in node.args)
    ):
        nodes = range(*(a.value for a in node.args))  # type: ignore[attr-defined]
        if len(nodes) > 1000:  # a concat is a few nodes; don't materialise huge ranges
            raise InvalidArchitectureError(f"{what} {nodes!r} is too long.")
        return list(nodes)
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise InvalidArchitectureError(
            f"Malformed {what} {ast.get_source_segment(text, node) or ast.dump(node)!r}: "
            "expected a literal list (or range(...) for a concat)."
        ) from None


def parse_genotype(text: str) -> Genotype:
    """Parse a genotype in the format DARTS prints, for any valid genotype.

    Accepts keyword or positional fields, ``range(a, b)`` for the concat lists, single or
    double quotes, tuples or lists, and any whitespace or newlines, so genotypes can be pasted
    from papers and DARTS-style ``genotypes.py`` files. The string is parsed with :mod:`ast`
    and only literals are evaluated, never code.

    Args:
        text: E.g. ``"Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5],
            reduce=[...], reduce_concat=range(2, 6))"``.

    Raises:
        ValueError: The string is malformed or describes an invalid genotype; the message
            quotes the offending part.

    Example:
        .. code-block:: python

            from optuna_nas.search_spaces import NASNET_A
            from optuna_nas.search_spaces import parse_genotype

            assert parse_genotype(str(NASNET_A)) == NASNET_A
    """
    if not isinstance(text, str):
        raise InvalidArchitectureError(f"A genotype string must be a str, got {text!r}.")
    source = text.strip()
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as error:
        raise InvalidArchitectureError(f"Malformed genotype string {text!r}: {error}.") from None
    call = tree.body
    func = call.func if isinstance(call, ast.Call) else None
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
    if not isinstance(call, ast.Call) or name != "Genotype":
        raise InvalidArchitectureError(
            f"Malformed genotype string {text!r}: expected 'Genotype(normal=[...], "
            "normal_concat=[...], reduce=[...], reduce_concat=[...])'."
        )
    if any(isinstance(arg, ast.Starred) for arg in call.args) or len(call.args) > len(_FIELDS):
        raise InvalidArchitectureError(
            f"Malformed genotype string {text!r}: too many positional fields."
        )
    values: dict[str, Any] = {}
    for field, arg in zip(_FIELDS, call.args):
        values[field] = _literal(arg, field, source)
    for keyword in call.keywords:
        if keyword.arg not in _FIELDS:
            raise InvalidArchitectureError(
                f"Unknown genotype field {keyword.arg!r} in {text!r}; expected {list(_FIELDS)!r}."
            )
        if keyword.arg in values:
            raise InvalidArchitectureError(
                f"Genotype field {keyword.arg!r} is given twice in {text!r}."
            )
        values[keyword.arg] = _literal(keyword.value, keyword.arg, source)
    missing = [field for field in _FIELDS if field not in values]
    if missing:
        raise InvalidArchitectureError(f"Genotype string {text!r} lacks the field(s) {missing!r}.")
    return Genotype(**values)


# --------------------------------------------------------------------------- published cells
#: DARTS (first order), Liu et al. 2019, as published in the DARTS code.
DARTS_V1 = Genotype(
    normal=[
        ("sep_conv_3x3", 1), ("sep_conv_3x3", 0),
        ("skip_connect", 0), ("sep_conv_3x3", 1),
        ("skip_connect", 0), ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 0), ("skip_connect", 2),
    ],
    normal_concat=[2, 3, 4, 5],
    reduce=[
        ("max_pool_3x3", 0), ("max_pool_3x3", 1),
        ("skip_connect", 2), ("max_pool_3x3", 0),
        ("max_pool_3x3", 0), ("skip_connect", 2),
        ("skip_connect", 2), ("avg_pool_3x3", 0),
    ],
    reduce_concat=[2, 3, 4, 5],
)  # fmt: skip
#: DARTS (second order), Liu et al. 2019: 2.76% CIFAR-10 error, 3.3M parameters.
DARTS_V2 = Genotype(
    normal=[
        ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 1), ("skip_connect", 0),
        ("skip_connect", 0), ("dil_conv_3x3", 2),
    ],
    normal_concat=[2, 3, 4, 5],
    reduce=[
        ("max_pool_3x3", 0), ("max_pool_3x3", 1),
        ("skip_connect", 2), ("max_pool_3x3", 1),
        ("max_pool_3x3", 0), ("skip_connect", 2),
        ("skip_connect", 2), ("max_pool_3x3", 1),
    ],
    reduce_concat=[2, 3, 4, 5],
)  # fmt: skip
#: NASNet-A, Zoph et al. 2018, in DARTS' encoding (5 nodes, uses sep_conv_7x7).
NASNET_A = Genotype(
    normal=[
        ("sep_conv_5x5", 1), ("sep_conv_3x3", 0),
        ("sep_conv_5x5", 0), ("sep_conv_3x3", 0),
        ("avg_pool_3x3", 1), ("skip_connect", 0),
        ("avg_pool_3x3", 0), ("avg_pool_3x3", 0),
        ("sep_conv_3x3", 1), ("skip_connect", 1),
    ],
    normal_concat=[2, 3, 4, 5, 6],
    reduce=[
        ("sep_conv_5x5", 1), ("sep_conv_7x7", 0),
        ("max_pool_3x3", 1), ("sep_conv_7x7", 0),
        ("avg_pool_3x3", 1), ("sep_conv_5x5", 0),
        ("skip_connect", 3), ("avg_pool_3x3", 2),
        ("sep_conv_3x3", 2), ("max_pool_3x3", 1),
    ],
    reduce_concat=[4, 5, 6],
)  # fmt: skip
#: AmoebaNet-A, Real et al. 2019, in DARTS' encoding (5 nodes, uses sep_conv_7x7, conv_7x1_1x7).
AMOEBANET_A = Genotype(
    normal=[
        ("avg_pool_3x3", 0), ("max_pool_3x3", 1),
        ("sep_conv_3x3", 0), ("sep_conv_5x5", 2),
        ("sep_conv_3x3", 0), ("avg_pool_3x3", 3),
        ("sep_conv_3x3", 1), ("skip_connect", 1),
        ("skip_connect", 0), ("avg_pool_3x3", 1),
    ],
    normal_concat=[4, 5, 6],
    reduce=[
        ("avg_pool_3x3", 0), ("sep_conv_3x3", 1),
        ("max_pool_3x3", 0), ("sep_conv_7x7", 2),
        ("sep_conv_7x7", 0), ("avg_pool_3x3", 1),
        ("max_pool_3x3", 0), ("max_pool_3x3", 1),
        ("conv_7x1_1x7", 0), ("sep_conv_3x3", 5),
    ],
    reduce_concat=[3, 4, 6],
)  # fmt: skip
#: ENAS micro cell, Pham et al. 2018, in the DARTS encoding used by later papers (5 nodes; the
#: loose ends are concatenated, hence reduce_concat=[2, 3, 6]).
ENAS = Genotype(
    normal=[
        ("sep_conv_3x3", 1), ("skip_connect", 1),
        ("sep_conv_5x5", 1), ("skip_connect", 0),
        ("avg_pool_3x3", 0), ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 0), ("avg_pool_3x3", 1),
        ("sep_conv_5x5", 1), ("avg_pool_3x3", 0),
    ],
    normal_concat=[2, 3, 4, 5, 6],
    reduce=[
        ("sep_conv_5x5", 0), ("avg_pool_3x3", 1),
        ("sep_conv_3x3", 1), ("avg_pool_3x3", 1),
        ("sep_conv_3x3", 1), ("avg_pool_3x3", 1),
        ("sep_conv_5x5", 4), ("avg_pool_3x3", 1),
        ("sep_conv_3x3", 5), ("sep_conv_5x5", 0),
    ],
    reduce_concat=[2, 3, 6],
)  # fmt: skip


# --------------------------------------------------------------------------- network
class DartsCellSlot(NamedTuple):
    """Where a cell sits in the DARTS skeleton, as :class:`DartsSkeleton` hands it to a cell.

    Attributes:
        c_prev_prev: Channels of the cell's first input (the output of the cell two back).
        c_prev: Channels of the cell's second input (the previous cell's output).
        channels: The cell's width C (each node has ``channels`` channels).
        reduction: Whether the cell halves the spatial size (operations reading a cell input
            use stride 2).
        reduction_prev: Whether the previous cell reduced (then the first input is twice as
            large as the second and is halved by its preprocessing).
    """

    c_prev_prev: int
    c_prev: int
    channels: int
    reduction: bool
    reduction_prev: bool

    def stride(self, input_index: int) -> int:
        """The stride of an operation that reads node ``input_index`` of the cell."""
        return 2 if self.reduction and input_index < 2 else 1

    def preprocess(self, *, affine: bool) -> tuple[nn.Module, nn.Module]:
        """The 1x1 preprocessing of the two cell inputs to ``channels`` channels."""
        # After a reduction the older input is twice as large: halve it to match.
        first: nn.Module = (
            FactorizedReduce(self.c_prev_prev, self.channels, affine=affine)
            if self.reduction_prev
            else ReLUConvBN(self.c_prev_prev, self.channels, 1, 1, 0, affine=affine)
        )
        return first, ReLUConvBN(self.c_prev, self.channels, 1, 1, 0, affine=affine)


#: ``make_cell(slot) -> (cell, output_channels)``: builds the cell of :class:`DartsSkeleton`
#: at ``slot``, the discrete cell of a genotype or the supernet's mixed cell.
DartsCellFactory = Callable[[DartsCellSlot], tuple[nn.Module, int]]


class DartsSkeleton(nn.Module):
    """The DARTS CIFAR skeleton shared by :class:`DartsNetwork` and the DARTS supernet.

    A 3x3 stem conv to ``stem_multiplier * channels`` channels, ``layers`` cells with reduction
    cells (stride 2, channels doubled) at ``layers // 3`` and ``2 * layers // 3``, each reading
    the outputs of the two previous cells, global average pooling and a linear classifier. The
    cells come from a factory, so the discrete network and the supernet are built (and seeded)
    the same way; subclasses call :meth:`_build_skeleton` from their constructor.
    """

    stem: nn.Sequential
    cells: nn.ModuleList
    global_pooling: nn.AdaptiveAvgPool2d
    classifier: nn.Linear

    def _build_skeleton(
        self,
        make_cell: DartsCellFactory,
        sizes: Mapping[str, int],
        *,
        auxiliary_head: Callable[[int], nn.Module] | None = None,
    ) -> None:
        """Build the modules, in this order: stem, cells, auxiliary head, pooling, classifier.

        Args:
            make_cell: The cell factory.
            sizes: ``num_classes``, ``in_channels``, ``channels``, ``layers`` and
                ``stem_multiplier``; each must be a positive int.
            auxiliary_head: ``auxiliary_head(c)`` builds the head that reads the ``c`` channels
                of the second reduction cell's output, stored as ``auxiliary_head``.

        Raises:
            ValueError: A size is not a positive int.
        """
        names = ("num_classes", "in_channels", "channels", "layers", "stem_multiplier")
        check_positive_ints("DARTS network sizes", {name: sizes[name] for name in names})
        reductions = self.reduction_layers(sizes["layers"])
        channels = sizes["channels"]
        c_stem = sizes["stem_multiplier"] * channels
        self.stem = nn.Sequential(
            nn.Conv2d(sizes["in_channels"], c_stem, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_stem),
        )
        c_prev_prev, c_prev, reduction_prev = c_stem, c_stem, False
        c_aux = c_stem
        self.cells = nn.ModuleList()
        for i in range(sizes["layers"]):
            reduction = i in reductions
            if reduction:
                channels *= 2
            slot = DartsCellSlot(c_prev_prev, c_prev, channels, reduction, reduction_prev)
            cell, c_out = make_cell(slot)
            self.cells.append(cell)
            c_prev_prev, c_prev, reduction_prev = c_prev, c_out, reduction
            if i == reductions[1]:
                c_aux = c_out
        if auxiliary_head is not None:
            self.add_module("auxiliary_head", auxiliary_head(c_aux))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, sizes["num_classes"])

    @staticmethod
    def reduction_layers(layers: int) -> tuple[int, int]:
        """The indices of the two reduction cells among ``layers`` cells."""
        return layers // 3, 2 * layers // 3

    def _classify(self, features: torch.Tensor) -> torch.Tensor:
        """The logits of the last cell's output: global average pooling and the classifier."""
        return self.classifier(torch.flatten(self.global_pooling(features), 1))


class _Cell(nn.Module):
    """A discrete DARTS cell: preprocess both inputs, sum two operations per node, concat."""

    def __init__(
        self, pairs: tuple[tuple[str, int], ...], concat: tuple[int, ...], slot: DartsCellSlot
    ) -> None:
        super().__init__()
        self.preprocess0, self.preprocess1 = slot.preprocess(affine=True)
        self.ops = nn.ModuleList(
            DARTS_OPS[op](slot.channels, slot.stride(index), True) for op, index in pairs
        )
        self.indices = tuple(index for _, index in pairs)
        self.concat = concat
        self.reduction = slot.reduction

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for node in range(len(self.ops) // 2):
            total: torch.Tensor | None = None
            for position in (2 * node, 2 * node + 1):
                op = self.ops[position]
                h = op(states[self.indices[position]])
                # As in DARTS, identities are never dropped (they carry the residual signal).
                if self.training and drop_prob > 0.0 and not isinstance(op, nn.Identity):
                    # Imported here: only drop-path training needs torchvision, so the search
                    # spaces load without it (tabular benchmarks, samplers).
                    from torchvision.ops import stochastic_depth

                    h = stochastic_depth(h, drop_prob, "row", training=True)
                total = h if total is None else total + h
            assert total is not None
            states.append(total)
        return torch.cat([states[i] for i in self.concat], dim=1)


class _AuxiliaryHead(nn.Module):
    """DARTS' CIFAR auxiliary classifier (meant for the 8x8 map after the second reduction)."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        # ceil_mode gives 2x2 on 7x7 maps (28x28 inputs) and is identical to DARTS on 8x8.
        self.pool = nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False, ceil_mode=True)
        self.features = nn.Sequential(
            nn.Conv2d(channels, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Not in-place: the cell output still feeds the next cells.
        x = functional.relu(x)
        if min(x.shape[-2:]) >= 5:
            x = self.pool(x)
        # A no-op for DARTS' 8x8 maps; lets smaller maps reach the 2x2 conv.
        x = functional.adaptive_avg_pool2d(x, 2)
        return self.classifier(torch.flatten(self.features(x), 1))


class DartsNetwork(DartsSkeleton):
    """The DARTS CIFAR evaluation network (``NetworkCIFAR``) for any valid :class:`Genotype`.

    A 3x3 stem conv to ``stem_multiplier * channels`` channels, ``layers`` cells with reduction
    cells (stride 2, channels doubled) at ``layers // 3`` and ``2 * layers // 3``, global average
    pooling and a linear classifier. Works for any input size (e.g. 32x32 CIFAR, 28x28 MNIST).

    Args:
        genotype: The cells; any number of nodes and any operation of ``DARTS_OPS``.
        num_classes: Output classes.
        in_channels: Image channels.
        channels: Initial cell width C (36 for DARTS on CIFAR-10).
        layers: Number of cells (20 for DARTS on CIFAR-10).
        auxiliary: Add the auxiliary head after cell ``2 * layers // 3``. In training mode the
            forward pass then returns ``(logits, aux_logits)``; otherwise only ``logits``. Its
            parameters live under ``auxiliary_head`` (excluded from the published counts).
        drop_path_prob: Probability of dropping each non-identity operation per sample during
            training. A plain attribute, so trainers can schedule it (DARTS ramps it linearly
            from 0 to 0.2 over the epochs).
        stem_multiplier: Stem width as a multiple of ``channels`` (3 in DARTS).

    Example:
        .. code-block:: python

            import torch
            from optuna_nas.search_spaces import DARTS_V2
            from optuna_nas.search_spaces import DartsNetwork

            net = DartsNetwork(DARTS_V2, num_classes=10, channels=8, layers=5)
            logits = net(torch.randn(2, 3, 32, 32))  # shape (2, 10)
    """

    auxiliary_head: _AuxiliaryHead | None

    def __init__(
        self,
        genotype: Genotype,
        *,
        num_classes: int,
        in_channels: int = 3,
        channels: int = 36,
        layers: int = 20,
        auxiliary: bool = False,
        drop_path_prob: float = 0.0,
        stem_multiplier: int = 3,
    ) -> None:
        super().__init__()
        genotype = _as_genotype(genotype)
        sizes = {
            "num_classes": num_classes,
            "in_channels": in_channels,
            "channels": channels,
            "layers": layers,
            "stem_multiplier": stem_multiplier,
        }
        check_number(
            "drop_path_prob", drop_path_prob, minimum=0.0, maximum=1.0, max_inclusive=False
        )
        self.genotype = genotype
        self.drop_path_prob = float(drop_path_prob)
        self._build_skeleton(
            self._make_cell,
            sizes,
            auxiliary_head=(lambda c: _AuxiliaryHead(c, num_classes)) if auxiliary else None,
        )
        if not auxiliary:
            self.auxiliary_head = None
        self._aux_layer = self.reduction_layers(layers)[1]

    def _make_cell(self, slot: DartsCellSlot) -> tuple[nn.Module, int]:
        genotype = self.genotype
        pairs, concat = (
            (genotype.reduce, genotype.reduce_concat)
            if slot.reduction
            else (genotype.normal, genotype.normal_concat)
        )
        return _Cell(pairs, concat, slot), len(concat) * slot.channels

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        s0 = s1 = self.stem(x)
        aux_logits = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self._aux_layer and self.auxiliary_head is not None and self.training:
                aux_logits = self.auxiliary_head(s1)
        logits = self._classify(s1)
        if aux_logits is not None:
            return logits, aux_logits
        return logits


# --------------------------------------------------------------------------- search space
def _cell_graph(
    title: str, pairs: tuple[tuple[str, int], ...], concat: tuple[int, ...]
) -> CellGraph:
    """One DARTS cell: the two inputs, the intermediate nodes and the concatenated output."""
    num_nodes = len(pairs) // 2
    nodes = ["c_{k-2}", "c_{k-1}"] + [str(k) for k in range(num_nodes)] + ["c_{k}"]
    graph = CellGraph(title, nodes)
    for index, (op, source) in enumerate(pairs):
        graph.edges.append((source, 2 + index // 2, op))
    for node in concat:
        graph.edges.append((node, len(nodes) - 1, ""))
    return graph


def _pair_choice(first: int, second: int) -> str:
    """The ``inputs`` choice of a node reading ``first`` then ``second``, e.g. ``"2_1"``."""
    # A string, not a tuple: Optuna storages keep only None/bool/int/float/str choices exactly.
    return f"{first}_{second}"


@register_search_space("darts")
class DartsSearchSpace(SearchSpace[Genotype]):
    """The DARTS micro space: normal and reduction cells of ``num_nodes`` nodes.

    Each intermediate node ``k`` (2..num_nodes+1) of each cell takes two inputs, chosen among the
    cell inputs and earlier nodes, each transformed by one operation; all intermediate nodes are
    concatenated into the cell output. Strings use the DARTS ``Genotype(...)`` format.

    Parameters, with ``cell`` in ``normal``/``reduce``, asked node by node in this order:

    * ``distinct_inputs=True`` (default; the discrete space of DARTS and NAS-Bench-301, where a
      node reads two *different* inputs): ``darts/{cell}/node{k}/inputs``, an ordered pair of
      distinct inputs written ``"i_j"`` (``i != j``, both ``< k``), then
      ``darts/{cell}/node{k}/op0`` (applied to input ``i``) and ``darts/{cell}/node{k}/op1``
      (applied to ``j``). The pairs are ordered so that every genotype keeps its order of
      ``(operation, input)`` pairs (DARTS_V2's reduce cell lists input 2 before input 1) and
      round-trips exactly; ``"i_j"`` and ``"j_i"`` with swapped operations are the same network.
    * ``distinct_inputs=False`` (NASNet-style; a node may read one input twice):
      ``darts/{cell}/node{k}/input0`` (choices ``0..k-1``), ``op0``, ``input1``, ``op1``.

    :meth:`build` accepts any valid genotype, also published cells outside the space (NASNet-A,
    AmoebaNet-A, ENAS), while :meth:`from_string`, :meth:`to_params` and :meth:`suggest` stay in
    the space; use :func:`parse_genotype` to read a genotype outside it.

    Args:
        num_nodes: Intermediate nodes per cell (4 in DARTS).
        operations: Candidate operations, names from ``DARTS_OPS`` except ``none``; by default the
            seven of DARTS (``PRIMITIVES`` without ``none``).
        distinct_inputs: Whether the two inputs of a node must differ (DARTS, NAS-Bench-301).

    Example:
        .. code-block:: python

            import optuna
            from optuna_nas.search_spaces import create_search_space

            space = create_search_space("darts")

            def objective(trial):
                genotype = space.suggest(trial)
                model = space.build(genotype, num_classes=10, channels=8, layers=5)
                return sum(p.numel() for p in model.parameters())

            study = optuna.create_study()
            study.optimize(objective, n_trials=2)
            print(space.to_string(space.from_params(study.best_params)))
    """

    name = "darts"
    prefix = "darts"
    architecture_type = Genotype

    def __init__(
        self,
        *,
        num_nodes: int = 4,
        operations: Sequence[str] = _SEARCH_OPERATIONS,
        distinct_inputs: bool = True,
    ) -> None:
        check_int("num_nodes", num_nodes, minimum=1)
        if not isinstance(distinct_inputs, (bool, np.bool_)):
            raise ValueError(f"distinct_inputs must be a bool, got {distinct_inputs!r}.")
        if isinstance(operations, str):
            raise ValueError(f"operations must be a sequence of names, got {operations!r}.")
        operations = tuple(operations)
        bad = [op for op in operations if op == "none" or op not in DARTS_OPS]
        if bad or not operations or len(set(operations)) != len(operations):
            raise ValueError(
                f"operations must be distinct names from {sorted(set(DARTS_OPS) - {'none'})!r}; "
                f"got {list(operations)!r} (bad: {bad!r})."
            )
        self.num_nodes = num_nodes
        self.operations = operations
        self.distinct_inputs = bool(distinct_inputs)
        self._concat = tuple(range(2, 2 + num_nodes))
        decisions = []
        for cell in _CELLS:
            for node in range(2, 2 + num_nodes):
                if self.distinct_inputs:
                    pairs = tuple(
                        _pair_choice(i, j) for i in range(node) for j in range(node) if i != j
                    )
                    decisions.append(Decision(self.param_name(cell, node, "inputs"), pairs))
                    for slot in (0, 1):
                        decisions.append(
                            Decision(self.param_name(cell, node, "op", slot), operations)
                        )
                else:
                    for slot in (0, 1):
                        decisions.append(
                            Decision(
                                self.param_name(cell, node, "input", slot), tuple(range(node))
                            )
                        )
                        decisions.append(
                            Decision(self.param_name(cell, node, "op", slot), operations)
                        )
        self._decisions = tuple(decisions)

    def param_name(self, cell: str, node: int, kind: str, slot: int | None = None) -> str:
        """The Optuna parameter name.

        E.g. ``param_name("normal", 2, "op", 0)`` is ``"darts/normal/node2/op0"`` and
        ``param_name("reduce", 3, "inputs")`` is ``"darts/reduce/node3/inputs"``.
        """
        return f"{self.prefix}/{cell}/node{node}/{kind}{'' if slot is None else slot}"

    def _node_inputs(self, values: Mapping[str, Any], cell: str, node: int) -> tuple[int, int]:
        if self.distinct_inputs:
            first, second = values[self.param_name(cell, node, "inputs")].split("_")
            return int(first), int(second)
        return (
            values[self.param_name(cell, node, "input", 0)],
            values[self.param_name(cell, node, "input", 1)],
        )

    def from_params(self, params: Mapping[str, Any]) -> Genotype:
        values = self._read_decisions(params)
        cells: dict[str, list[tuple[str, int]]] = {cell: [] for cell in _CELLS}
        for cell in _CELLS:
            for node in range(2, 2 + self.num_nodes):
                for slot, index in enumerate(self._node_inputs(values, cell, node)):
                    cells[cell].append((values[self.param_name(cell, node, "op", slot)], index))
        return Genotype(cells["normal"], self._concat, cells["reduce"], self._concat)

    def to_params(self, arch: Genotype) -> dict[str, Any]:
        genotype = self._check(arch)
        params: dict[str, Any] = {}
        for cell, pairs in zip(_CELLS, (genotype.normal, genotype.reduce)):
            for position in range(0, len(pairs), 2):
                node = 2 + position // 2
                (op0, index0), (op1, index1) = pairs[position], pairs[position + 1]
                if self.distinct_inputs:
                    params[self.param_name(cell, node, "inputs")] = _pair_choice(index0, index1)
                    params[self.param_name(cell, node, "op", 0)] = op0
                    params[self.param_name(cell, node, "op", 1)] = op1
                else:
                    params[self.param_name(cell, node, "input", 0)] = index0
                    params[self.param_name(cell, node, "op", 0)] = op0
                    params[self.param_name(cell, node, "input", 1)] = index1
                    params[self.param_name(cell, node, "op", 1)] = op1
        return params

    def to_string(self, arch: Genotype) -> str:
        """The DARTS string of ``arch`` (``str(arch)``); any valid genotype can be printed."""
        return str(_as_genotype(arch))

    def from_string(self, text: str) -> Genotype:
        """Parse a DARTS genotype string and check that the genotype is in this space.

        Raises:
            ValueError: The string is malformed (see :func:`parse_genotype`) or the genotype is
                outside this space (other node count, operation or concat, or, with
                ``distinct_inputs=True``, a node reading one input twice).
        """
        return self._check(parse_genotype(text))

    def build(
        self, arch: Genotype, *, num_classes: int, in_channels: int = 3, **kwargs: Any
    ) -> nn.Module:
        """Build the DARTS evaluation network (:class:`DartsNetwork`) of any valid genotype.

        The defaults are DARTS' CIFAR-10 network (C=36, 20 cells): with ``DARTS_V2`` and 10
        classes it has 3.35M parameters without the auxiliary head. Smaller ``channels`` and
        ``layers`` give a cheap low-fidelity proxy.

        Args:
            arch: The genotype.
            num_classes: Output classes.
            in_channels: Image channels.
            **kwargs: :class:`DartsNetwork`'s options: ``channels``, ``layers``, ``auxiliary``,
                ``drop_path_prob``, ``stem_multiplier``.
        """
        check_build_options(self.name, kwargs, DartsNetwork)
        genotype = _as_genotype(arch)
        return DartsNetwork(genotype, num_classes=num_classes, in_channels=in_channels, **kwargs)

    def create_supernet(
        self, *, num_classes: int, in_channels: int = 3, **kwargs: Any
    ) -> Supernet:
        """The DARTS search network over this space (:class:`optuna_nas.darts.DartsSupernet`).

        Its nodes and operations are the space's (``none`` added): every node sums a mixed
        operation over all earlier states, and ``derive()`` keeps the top-2 inputs per node.

        Args:
            num_classes: Output classes.
            in_channels: Image channels.
            **kwargs: Passed to :class:`optuna_nas.darts.DartsSupernet` (``channels``,
                ``layers``, ...); ``steps`` and ``multiplier`` default to ``num_nodes``.
        """
        # Imported here: the search spaces do not depend on the one-shot (Lightning) stack.
        from optuna_nas.darts._supernet import DartsSupernet

        # The space concatenates all of its intermediate nodes.
        options: dict[str, Any] = {"steps": self.num_nodes, "multiplier": self.num_nodes}
        options.update(kwargs)
        return DartsSupernet(
            num_classes=num_classes, in_channels=in_channels, operations=self.operations, **options
        )

    def cell_graphs(self, arch: Genotype) -> list[CellGraph]:
        """The normal and the reduction cell of any valid genotype, as drawable graphs."""
        genotype = _as_genotype(arch)
        return [
            _cell_graph("normal cell", genotype.normal, genotype.normal_concat),
            _cell_graph("reduction cell", genotype.reduce, genotype.reduce_concat),
        ]

    def _check(self, arch: Any) -> Genotype:
        genotype = _as_genotype(arch)
        for cell in _CELLS:
            pairs = getattr(genotype, cell)
            if len(pairs) != 2 * self.num_nodes:
                raise InvalidArchitectureError(
                    f"Genotype {genotype} is outside this search space: its {cell} cell has "
                    f"{len(pairs) // 2} intermediate nodes, the space has {self.num_nodes}. "
                    "parse_genotype and build accept it."
                )
            bad = sorted({op for op, _ in pairs if op not in self.operations})
            if bad:
                raise InvalidArchitectureError(
                    f"Genotype {genotype} is outside this search space: operation(s) {bad!r} "
                    f"in its {cell} cell are not in {list(self.operations)!r}. "
                    "parse_genotype and build accept it."
                )
            concat = getattr(genotype, f"{cell}_concat")
            if concat != self._concat:
                raise InvalidArchitectureError(
                    f"Genotype {genotype} is outside this search space: {cell}_concat is "
                    f"{list(concat)!r}, the space concatenates all nodes {list(self._concat)!r}."
                )
        # Checked after the shape of both cells, which is the more basic reason to reject.
        for cell in _CELLS if self.distinct_inputs else ():
            pairs = getattr(genotype, cell)
            for position in range(0, len(pairs), 2):
                index = pairs[position][1]
                if index == pairs[position + 1][1]:
                    raise InvalidArchitectureError(
                        f"Genotype {genotype} is outside this search space: node "
                        f"{2 + position // 2} of its {cell} cell reads input {index} twice, "
                        "the space needs two distinct inputs per node (as DARTS and "
                        "NAS-Bench-301). DartsSearchSpace(distinct_inputs=False), "
                        "parse_genotype and build accept it."
                    )
        return genotype

    def __repr__(self) -> str:
        args = []
        if self.num_nodes != 4:
            args.append(f"num_nodes={self.num_nodes}")
        if self.operations != _SEARCH_OPERATIONS:
            args.append(f"operations={list(self.operations)!r}")
        if not self.distinct_inputs:
            args.append("distinct_inputs=False")
        return f"DartsSearchSpace({', '.join(args)})"
