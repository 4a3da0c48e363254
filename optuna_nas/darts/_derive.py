"""Derivation of a discrete architecture from the supernet's architecture weights."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from optuna_nas.search_spaces._darts import Genotype
from optuna_nas.search_spaces._nasbench201 import EDGES
from optuna_nas.search_spaces._nasbench201 import NB201Cell


def _first_argmax(values: Sequence[float], allowed: Sequence[int]) -> int:
    # The first maximum, like DARTS' ``genotype()`` loop (ties keep the earlier operation).
    best = allowed[0]
    for k in allowed[1:]:
        if values[k] > values[best]:
            best = k
    return best


def _derive_darts_cell(
    weights: torch.Tensor, operations: Sequence[str], steps: int
) -> list[tuple[str, int]]:
    rows = weights.detach().float().cpu().tolist()
    allowed = [k for k, name in enumerate(operations) if name != "none"]
    gene: list[tuple[str, int]] = []
    start = 0
    for node in range(steps):
        num_inputs = node + 2
        node_rows = rows[start : start + num_inputs]
        best_ops = [_first_argmax(row, allowed) for row in node_rows]
        # An input's strength is its best non-``none`` weight; keep the two strongest inputs.
        strongest = sorted(range(num_inputs), key=lambda j: -node_rows[j][best_ops[j]])[:2]
        gene.extend((operations[best_ops[j]], j) for j in strongest)
        start += num_inputs
    return gene


def derive_darts_genotype(
    normal_weights: torch.Tensor,
    reduce_weights: torch.Tensor,
    *,
    operations: Sequence[str],
    steps: int = 4,
    multiplier: int = 4,
) -> Any:
    """Derive a DARTS :class:`~optuna_nas.search_spaces.Genotype` (DARTS paper, Sec. 2.4).

    For each intermediate node, keep the two inputs whose strongest non-``none`` operation has
    the largest weight, each with that operation. Inputs of a node are listed strongest first,
    as in DARTS' own ``genotype()``.

    Args:
        normal_weights: Mixing weights (softmax of the alphas) of the normal cell, one row per
            edge in DARTS order (node 2's inputs 0, 1, then node 3's inputs 0, 1, 2, ...).
        reduce_weights: The same for the reduction cell.
        operations: The candidate names, in column order (``none`` included).
        steps: Intermediate nodes per cell (4 in DARTS).
        multiplier: How many of the last nodes are concatenated into the cell output.

    Returns:
        A ``Genotype`` that the ``darts`` search space parses and builds.
    """
    num_edges = sum(node + 2 for node in range(steps))
    for name, w in (("normal_weights", normal_weights), ("reduce_weights", reduce_weights)):
        if tuple(w.shape) != (num_edges, len(operations)):
            raise ValueError(
                f"{name} must have shape {(num_edges, len(operations))}, got {tuple(w.shape)}."
            )
    if all(name == "none" for name in operations):
        raise ValueError(f"operations need one besides 'none', got {list(operations)!r}.")
    concat = list(range(2 + steps - multiplier, steps + 2))
    return Genotype(
        normal=_derive_darts_cell(normal_weights, operations, steps),
        normal_concat=concat,
        reduce=_derive_darts_cell(reduce_weights, operations, steps),
        reduce_concat=concat,
    )


def derive_nb201_cell(
    weights: torch.Tensor, *, operations: Sequence[str], include_none: bool = True
) -> NB201Cell:
    """Derive a NAS-Bench-201 cell: the operation with the largest weight on each edge.

    NAS-Bench-201's DARTS baseline takes the argmax over *all* operations, ``none`` included
    (``include_none=True``, the default, to be faithful); its reported collapse (54.30% on
    CIFAR-10) is to cells made of skip connections. ``include_none=False`` takes the argmax over
    the other operations, like DARTS does for its own space.

    Args:
        weights: Mixing weights, one row per edge in ``EDGES`` order.
        operations: The candidate names, in column order.
        include_none: Whether ``none`` can be chosen.
    """
    if tuple(weights.shape) != (len(EDGES), len(operations)):
        raise ValueError(
            f"weights must have shape {(len(EDGES), len(operations))}, got {tuple(weights.shape)}."
        )
    allowed = [k for k, name in enumerate(operations) if include_none or name != "none"]
    if not allowed:
        raise ValueError(f"No operation to choose among {list(operations)!r}.")
    rows = weights.detach().float().cpu().tolist()
    return NB201Cell(tuple(operations[_first_argmax(row, allowed)] for row in rows))


def count_skip_connections(arch: Any) -> int:
    """Skip connections of an architecture: in the normal cell for DARTS, in the NB201 cell.

    This is the collapse indicator of DARTS+ (Liang et al., 2019): a DARTS normal cell with two
    or more skip connections signals that the search started to collapse.
    """
    if isinstance(arch, NB201Cell):
        return sum(op == "skip_connect" for op in arch.ops)
    normal = getattr(arch, "normal", None)
    if normal is None:
        raise ValueError(f"Expected a Genotype or an NB201Cell, got {arch!r}.")
    return sum(op == "skip_connect" for op, _ in normal)
