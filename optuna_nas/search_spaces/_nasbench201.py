"""The NAS-Bench-201 (NATS-Bench topology) cell search space."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

import torch
from torch import nn

from optuna_nas._validation import check_positive_ints
from optuna_nas.search_spaces._base import CellGraph
from optuna_nas.search_spaces._base import Decision
from optuna_nas.search_spaces._base import SearchSpace
from optuna_nas.search_spaces._base import check_build_options
from optuna_nas.search_spaces._ops import NB201_OPS
from optuna_nas.search_spaces._ops import ReLUConvBN
from optuna_nas.search_spaces._registry import register_search_space
from optuna_nas.trial_outcome import InvalidArchitectureError


if TYPE_CHECKING:
    from optuna_nas.darts._supernet import Supernet

#: The five candidate operations of every NAS-Bench-201 edge, in the benchmark's order.
NB201_OPERATIONS: tuple[str, ...] = (
    "none",
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
)
_NUM_NODES = 4  # node 0 is the cell input, node 3 its output
#: (to_node, from_node) of the six edges, in the order of the NAS-Bench-201 string.
EDGES: tuple[tuple[int, int], ...] = tuple((i, j) for i in range(1, _NUM_NODES) for j in range(i))


@dataclass(frozen=True)
class NB201Cell:
    """A NAS-Bench-201 cell: one operation per edge, in :data:`EDGES` order.

    Attributes:
        ops: Six operation names; ``ops[k]`` sits on edge ``EDGES[k]``.
    """

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        # Store a tuple even when given a list, so cells are hashable and compare by value.
        object.__setattr__(self, "ops", tuple(self.ops))
        if len(self.ops) != len(EDGES):
            raise InvalidArchitectureError(
                f"A NAS-Bench-201 cell has {len(EDGES)} edges, got {len(self.ops)}."
            )
        for op in self.ops:
            if op not in NB201_OPERATIONS:
                raise InvalidArchitectureError(
                    f"Unknown NAS-Bench-201 operation {op!r}; expected one of "
                    f"{list(NB201_OPERATIONS)!r}."
                )

    def op(self, to_node: int, from_node: int) -> str:
        """The operation on the edge ``from_node -> to_node``."""
        return self.ops[EDGES.index((to_node, from_node))]


class _NB201InferCell(nn.Module):
    """A discrete NAS-Bench-201 cell, built like NB201's own: every edge, ``none`` included.

    Keeping every edge makes parameter counts match the benchmark's and keeps every parameter in
    the autograd graph (a dead-end edge gets a zero gradient), which DDP requires. A cell whose
    output is disconnected from its input outputs zeros: valid and weak.
    """

    def __init__(self, cell: NB201Cell, channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleDict(
            {
                f"{to_node}_{from_node}": NB201_OPS[op](channels, channels, 1, True)
                for (to_node, from_node), op in zip(EDGES, cell.ops)
            }
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for to_node in range(1, _NUM_NODES):
            out = self.edges[f"{to_node}_0"](nodes[0])
            for from_node in range(1, to_node):
                out = out + self.edges[f"{to_node}_{from_node}"](nodes[from_node])
            nodes.append(out)
        return nodes[-1]


class _ResidualReduction(nn.Module):
    """The residual block between NAS-Bench-201 stages: stride 2, channels doubled."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(in_channels, out_channels, 3, 2, 1)
        self.conv_b = ReLUConvBN(out_channels, out_channels, 3, 1, 1)
        # ceil_mode keeps the shortcut the same size as the strided conv on odd inputs (7 -> 4);
        # on even inputs (CIFAR's 32x32) it is exactly NAS-Bench-201's AvgPool2d(2).
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(2, stride=2, ceil_mode=True),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class NB201Skeleton(nn.Module):
    """The NAS-Bench-201 skeleton shared by the discrete network and the DARTS supernet.

    A 3x3 stem conv to ``channels``, 3 stages of ``cells_per_stage`` cells (widths ``channels``,
    ``2 * channels``, ``4 * channels``) joined by residual reduction blocks, then BN-ReLU, global
    average pooling and a linear classifier. The cells come from a factory, so both networks are
    built (and seeded) the same way; subclasses call :meth:`_build_skeleton`.
    """

    stem: nn.Sequential
    cells: nn.Sequential
    head: nn.Sequential
    classifier: nn.Linear

    def _build_skeleton(
        self, make_cell: Callable[[int], nn.Module], sizes: Mapping[str, int]
    ) -> None:
        """Build the modules, in this order: stem, cells and reductions, head, classifier.

        Args:
            make_cell: ``make_cell(width)`` builds one cell of ``width`` channels.
            sizes: ``num_classes``, ``in_channels``, ``channels`` and ``cells_per_stage``; each
                must be a positive int.

        Raises:
            ValueError: A size is not a positive int.
        """
        names = ("num_classes", "in_channels", "channels", "cells_per_stage")
        check_positive_ints("NAS-Bench-201 network sizes", {name: sizes[name] for name in names})
        width = sizes["channels"]
        self.stem = nn.Sequential(
            nn.Conv2d(sizes["in_channels"], width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
        )
        layers: list[nn.Module] = []
        for stage in range(3):
            if stage > 0:
                layers.append(_ResidualReduction(width, width * 2))
                width *= 2
            layers.extend(make_cell(width) for _ in range(sizes["cells_per_stage"]))
        self.cells = nn.Sequential(*layers)
        # Not in place: with a supernet the cells' output may be needed for the backward pass.
        self.head = nn.Sequential(
            nn.BatchNorm2d(width), nn.ReLU(inplace=False), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.classifier = nn.Linear(width, sizes["num_classes"])


class NASBench201Network(NB201Skeleton):
    """The NAS-Bench-201 network of one cell (see :class:`NB201Skeleton`).

    ``cell`` is an :class:`NB201Cell` or NAS-Bench-201's own string of it (as the published
    tables list cells), e.g. ``"|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+..."``.
    """

    def __init__(
        self,
        cell: NB201Cell | str,
        *,
        num_classes: int,
        in_channels: int = 3,
        channels: int = 16,
        cells_per_stage: int = 5,
    ) -> None:
        super().__init__()
        arch = NASBench201SearchSpace().from_string(cell) if isinstance(cell, str) else cell
        sizes = {"num_classes": num_classes, "in_channels": in_channels, "channels": channels}
        sizes["cells_per_stage"] = cells_per_stage
        self._build_skeleton(lambda width: _NB201InferCell(arch, width), sizes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head(self.cells(self.stem(x))))


@register_search_space("nasbench201")
class NASBench201SearchSpace(SearchSpace[NB201Cell]):
    """The NAS-Bench-201 cell space: 6 edges x 5 operations = 15,625 cells.

    Parameters are named ``nb201/edge_{to}_{from}`` and strings use NAS-Bench-201's own format,
    ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``, so results cross-reference the published table.

    Args:
        operations: Candidate operations (a subset of :data:`NB201_OPERATIONS`), e.g. to search
            without ``none``.

    Example:
        .. code-block:: python

            from optuna_nas.search_spaces import create_search_space

            space = create_search_space("nasbench201")
            cell = space.from_string(
                "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
                "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
            )
            model = space.build(cell, num_classes=10)
    """

    name = "nasbench201"
    prefix = "nb201"
    architecture_type = NB201Cell

    def __init__(self, *, operations: Sequence[str] = NB201_OPERATIONS) -> None:
        operations = tuple(operations)
        unknown = [op for op in operations if op not in NB201_OPERATIONS]
        if unknown or not operations:
            raise ValueError(
                f"operations must be a non-empty subset of {list(NB201_OPERATIONS)!r}; "
                f"got {list(operations)!r}."
            )
        self.operations = operations
        self._decisions = tuple(Decision(self.param_name(i, j), operations) for i, j in EDGES)

    def param_name(self, to_node: int, from_node: int) -> str:
        """The Optuna parameter name of edge ``from_node -> to_node``."""
        return f"{self.prefix}/edge_{to_node}_{from_node}"

    def from_params(self, params: Mapping[str, Any]) -> NB201Cell:
        values = self._read_decisions(params)
        return NB201Cell(tuple(values[d.name] for d in self._decisions))

    def to_params(self, arch: NB201Cell) -> dict[str, Any]:
        self._check(arch)
        return {d.name: op for d, op in zip(self._decisions, arch.ops)}

    def to_string(self, arch: NB201Cell) -> str:
        nodes = []
        for to_node in range(1, _NUM_NODES):
            edges = "|".join(f"{arch.op(to_node, j)}~{j}" for j in range(to_node))
            nodes.append(f"|{edges}|")
        return "+".join(nodes)

    def from_string(self, text: str) -> NB201Cell:
        if not isinstance(text, str):
            raise InvalidArchitectureError(f"A NAS-Bench-201 string must be a str, got {text!r}.")
        node_texts = text.strip().split("+")
        if len(node_texts) != _NUM_NODES - 1:
            raise InvalidArchitectureError(
                f"Malformed NAS-Bench-201 string {text!r}: expected {_NUM_NODES - 1} nodes "
                f"separated by '+', got {len(node_texts)}."
            )
        ops: dict[tuple[int, int], str] = {}
        for to_node, node_text in enumerate(node_texts, start=1):
            if len(node_text) < 2 or node_text[0] != "|" or node_text[-1] != "|":
                raise InvalidArchitectureError(
                    f"Malformed NAS-Bench-201 node {node_text!r} in {text!r}: expected '|op~j|'."
                )
            edges = node_text[1:-1].split("|")
            if len(edges) != to_node:
                raise InvalidArchitectureError(
                    f"Node {to_node} of {text!r} must have {to_node} input(s), got {len(edges)}: "
                    f"{node_text!r}."
                )
            for from_node, edge in enumerate(edges):
                op, sep, source = edge.partition("~")
                if not sep or source != str(from_node):
                    raise InvalidArchitectureError(
                        f"Malformed edge {edge!r} in {text!r}: expected '<op>~{from_node}'."
                    )
                if op not in self.operations:
                    raise InvalidArchitectureError(
                        f"Unknown operation {op!r} in {text!r}; expected one of "
                        f"{list(self.operations)!r}."
                    )
                ops[(to_node, from_node)] = op
        return NB201Cell(tuple(ops[edge] for edge in EDGES))

    def build(
        self, arch: NB201Cell, *, num_classes: int, in_channels: int = 3, **kwargs: Any
    ) -> nn.Module:
        """Build the :class:`NASBench201Network` (stem C=16, 3 stages of 5 cells by default).

        Args:
            arch: The cell.
            num_classes: Output classes.
            in_channels: Image channels.
            **kwargs: ``channels``, the width of the first stage (doubled at each reduction; 16
                in the paper), and ``cells_per_stage`` (N; 5 in the paper). Smaller values give
                a cheap low-fidelity proxy.
        """
        check_build_options(self.name, kwargs, NASBench201Network)
        self._check(arch)
        return NASBench201Network(arch, num_classes=num_classes, in_channels=in_channels, **kwargs)

    def create_supernet(
        self, *, num_classes: int, in_channels: int = 3, **kwargs: Any
    ) -> Supernet:
        """NAS-Bench-201's DARTS supernet of this space (:class:`~optuna_nas.darts.NB201Supernet`).

        Args:
            num_classes: Output classes.
            in_channels: Image channels.
            **kwargs: Passed to :class:`optuna_nas.darts.NB201Supernet` (``channels``,
                ``cells_per_stage``, ...).
        """
        # Imported here: the search spaces do not depend on the one-shot (Lightning) stack.
        from optuna_nas.darts._supernet import NB201Supernet

        return NB201Supernet(
            num_classes=num_classes, in_channels=in_channels, operations=self.operations, **kwargs
        )

    def cell_graphs(self, arch: NB201Cell) -> list[CellGraph]:
        """The cell as one drawable graph (``none`` edges left out)."""
        graph = CellGraph("NAS-Bench-201 cell", ["input", "node 1", "node 2", "output"])
        for (to_node, from_node), op in zip(EDGES, arch.ops):
            if op != "none":
                graph.edges.append((from_node, to_node, op))
        return [graph]

    def _check(self, arch: NB201Cell) -> None:
        if not isinstance(arch, NB201Cell):
            raise InvalidArchitectureError(f"Expected an NB201Cell, got {arch!r}.")
        bad = [op for op in arch.ops if op not in self.operations]
        if bad:
            raise InvalidArchitectureError(
                f"Operation(s) {bad!r} are not in this space's operations "
                f"{list(self.operations)!r}."
            )

    def __repr__(self) -> str:
        if self.operations == NB201_OPERATIONS:
            return "NASBench201SearchSpace()"
        return f"NASBench201SearchSpace(operations={list(self.operations)!r})"
