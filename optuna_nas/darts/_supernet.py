"""DARTS supernets for the ``darts`` and ``nasbench201`` search spaces."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from optuna_nas._validation import check_number
from optuna_nas._validation import check_positive_ints
from optuna_nas._validation import is_int
from optuna_nas.darts._derive import derive_darts_genotype
from optuna_nas.darts._derive import derive_nb201_cell
from optuna_nas.darts._mixed_op import MixedOp
from optuna_nas.search_spaces._base import SearchSpace
from optuna_nas.search_spaces._darts import PRIMITIVES
from optuna_nas.search_spaces._darts import DartsCellSlot
from optuna_nas.search_spaces._darts import DartsSkeleton
from optuna_nas.search_spaces._nasbench201 import EDGES
from optuna_nas.search_spaces._nasbench201 import NB201_OPERATIONS
from optuna_nas.search_spaces._nasbench201 import NB201Skeleton
from optuna_nas.search_spaces._ops import FactorizedReduce


def _with_none(operations: Sequence[str]) -> tuple[str, ...]:
    ops = tuple(operations)
    if len(set(ops)) != len(ops):
        raise ValueError(f"operations has repeated names: {list(ops)!r}.")
    return ops if "none" in ops else ("none", *ops)


def _check_even(channels: int) -> None:
    # Checked before the skeleton checks the sizes, so only for ints.
    if is_int(channels) and channels % 2:
        raise ValueError(f"channels must be even (factorized reduction), got {channels}.")


class Supernet(nn.Module, abc.ABC):
    """Base class of the DARTS supernets: architecture parameters kept apart from weights.

    The architecture parameters (alphas, one row of logits per edge) are ``nn.Parameter``\\ s,
    so they are saved in ``state_dict`` and Lightning checkpoints, but
    :meth:`arch_parameters` and :meth:`weight_parameters` split them so that each gets its own
    optimizer.

    Attributes:
        operations: Candidate names, the columns of every alpha matrix (``none`` first).
        fused: Whether edges use the fused path of :class:`MixedOp` (same result, faster).
    """

    operations: tuple[str, ...]
    fused: bool
    aux_skip_beta: torch.Tensor

    def _init_common(self, *, fused: bool, aux_skip: bool) -> None:
        self.fused = fused
        self.aux_skip = aux_skip
        # A tensor buffer (not a float attribute) so changing it never recompiles a compiled net.
        self.register_buffer("aux_skip_beta", torch.ones(()), persistent=False)

    @abc.abstractmethod
    def named_arch_parameters(self) -> dict[str, nn.Parameter]:
        """The architecture parameters by cell type (``normal``/``reduce`` or ``cell``)."""

    def arch_parameters(self) -> list[nn.Parameter]:
        """The architecture parameters (alphas), for the architecture optimizer."""
        return list(self.named_arch_parameters().values())

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter except the alphas, for the weight optimizer."""
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def arch_weights(self) -> dict[str, torch.Tensor]:
        """Softmax of the alphas by cell type (detached, float32): the mixing weights."""
        return {
            name: torch.softmax(alpha.detach().float(), dim=-1)
            for name, alpha in self.named_arch_parameters().items()
        }

    @abc.abstractmethod
    def derive(self, *, include_none: bool | None = None) -> Any:
        """The discrete architecture of the search space that the alphas point to.

        Args:
            include_none: Whether ``none`` may be chosen; ``None`` is the supernet's default
                rule. ``True`` raises ``ValueError`` where the space has no ``none``.
        """


class _DartsSearchCell(nn.Module):
    def __init__(
        self,
        slot: DartsCellSlot,
        *,
        steps: int,
        multiplier: int,
        operations: Sequence[str],
        aux_skip: bool,
    ) -> None:
        super().__init__()
        self.reduction = slot.reduction
        self.steps = steps
        self.multiplier = multiplier
        self.preprocess0, self.preprocess1 = slot.preprocess(affine=False)
        self.edges = nn.ModuleList()
        aux: list[nn.Module] = []
        for node in range(steps):
            for j in range(node + 2):
                stride = slot.stride(j)
                self.edges.append(
                    MixedOp.for_darts(channels=slot.channels, stride=stride, operations=operations)
                )
                if aux_skip:
                    aux.append(
                        nn.Identity()
                        if stride == 1
                        else FactorizedReduce(slot.channels, slot.channels, affine=False)
                    )
        self.aux = nn.ModuleList(aux) if aux_skip else None

    def forward(
        self,
        s0: torch.Tensor,
        s1: torch.Tensor,
        weights: torch.Tensor,
        beta: torch.Tensor,
        fused: bool,
    ) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        relus: list[torch.Tensor | None] = [None, None]
        offset = 0
        for _ in range(self.steps):
            acc: torch.Tensor | None = None
            for j, h in enumerate(states):
                edge = self.edges[offset + j]
                x_relu = None
                if fused and edge.uses_relu_input:
                    if relus[j] is None:
                        relus[j] = torch.relu(h)
                    x_relu = relus[j]
                acc = edge(h, weights[offset + j], x_relu=x_relu, acc=acc, fused=fused)
                if self.aux is not None:
                    acc = torch.addcmul(acc, beta, self.aux[offset + j](h))
            offset += len(states)
            assert acc is not None
            states.append(acc)
            relus.append(None)
        return torch.cat(states[-self.multiplier :], dim=1)


class DartsSupernet(Supernet, DartsSkeleton):
    """The DARTS search network (Liu et al., ICLR 2019) over the ``darts`` search space.

    A stem of ``3 * channels``, then ``layers`` cells with reduction cells at 1/3 and 2/3 of the
    depth, each with ``steps`` intermediate nodes that sum a :class:`MixedOp` over every earlier
    state; all operations use ``BatchNorm(affine=False)``. The paper searches with 8 cells and
    ``channels=16``.

    Args:
        num_classes: Output classes.
        in_channels: Image channels.
        channels: Channels of the first cells (doubled at each reduction); must be even.
        layers: Number of cells.
        steps: Intermediate nodes per cell.
        multiplier: Number of last nodes concatenated into the cell output.
        stem_multiplier: Stem width in units of ``channels``.
        operations: Candidate operations (``none`` is added when missing).
        fused: Use the fused :class:`MixedOp` path (exact, faster); ``False`` computes every
            operation like the original code.
        aux_skip: Add DARTS-'s auxiliary skip connection ``beta * x`` to every edge (Chu et
            al., ICLR 2021); :attr:`aux_skip_beta` is set by :class:`DartsModule`.
        alpha_init_std: Standard deviation of the initial alphas (``1e-3`` in DARTS).

    Example:
        .. code-block:: python

            import torch
            from optuna_nas.darts import DartsSupernet

            net = DartsSupernet(num_classes=10, channels=4, layers=3)
            logits = net(torch.randn(2, 3, 16, 16))
            genotype = net.derive()
    """

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int = 3,
        channels: int = 16,
        layers: int = 8,
        steps: int = 4,
        multiplier: int = 4,
        stem_multiplier: int = 3,
        operations: Sequence[str] = PRIMITIVES,
        fused: bool = True,
        aux_skip: bool = False,
        alpha_init_std: float = 1e-3,
    ) -> None:
        super().__init__()
        check_positive_ints("DARTS supernet sizes", {"steps": steps, "multiplier": multiplier})
        check_number("alpha_init_std", alpha_init_std, minimum=0.0)
        _check_even(channels)
        if multiplier > steps:
            raise ValueError(f"multiplier ({multiplier}) must not exceed steps ({steps}).")
        self.operations = _with_none(operations)
        self.steps = steps
        self.multiplier = multiplier
        self._init_common(fused=fused, aux_skip=aux_skip)

        ops = self.operations

        def make_cell(slot: DartsCellSlot) -> tuple[nn.Module, int]:
            cell = _DartsSearchCell(
                slot, steps=steps, multiplier=multiplier, operations=ops, aux_skip=aux_skip
            )
            return cell, multiplier * slot.channels

        sizes = {"num_classes": num_classes, "in_channels": in_channels, "channels": channels}
        sizes.update(layers=layers, stem_multiplier=stem_multiplier)
        self._build_skeleton(make_cell, sizes)
        num_edges = sum(node + 2 for node in range(steps))
        shape = (num_edges, len(self.operations))
        self.alphas_normal = nn.Parameter(alpha_init_std * torch.randn(shape))
        self.alphas_reduce = nn.Parameter(alpha_init_std * torch.randn(shape))

    def named_arch_parameters(self) -> dict[str, nn.Parameter]:
        return {"normal": self.alphas_normal, "reduce": self.alphas_reduce}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w_normal = torch.softmax(self.alphas_normal, dim=-1)
        w_reduce = torch.softmax(self.alphas_reduce, dim=-1)
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            weights = w_reduce if cell.reduction else w_normal
            s0, s1 = s1, cell(s0, s1, weights, self.aux_skip_beta, self.fused)
        return self._classify(s1)

    def derive(self, *, include_none: bool | None = None) -> Any:
        """The DARTS ``Genotype``: top-2 non-``none`` inputs per node (DARTS' rule).

        Args:
            include_none: ``None`` or ``False``; the ``darts`` space has no ``none`` operation,
                so ``True`` raises ``ValueError``.
        """
        if include_none:
            raise ValueError("include_none=True, but the search space has no 'none' operation.")
        weights = self.arch_weights()
        return derive_darts_genotype(
            weights["normal"],
            weights["reduce"],
            operations=self.operations,
            steps=self.steps,
            multiplier=self.multiplier,
        )


class _NB201SearchCell(nn.Module):
    def __init__(self, *, channels: int, operations: Sequence[str], aux_skip: bool) -> None:
        super().__init__()
        self.edges = nn.ModuleList(
            MixedOp.for_nb201(
                in_channels=channels, out_channels=channels, stride=1, operations=operations
            )
            for _ in EDGES
        )
        self.aux_skip = aux_skip
        num_nodes = max(to for to, _ in EDGES) + 1
        # (node, [(input, edge index), ...]) so forward does no lookups.
        self.plan = [
            (to_node, [(j, EDGES.index((to_node, j))) for j in range(to_node)])
            for to_node in range(1, num_nodes)
        ]

    def forward(
        self, x: torch.Tensor, weights: torch.Tensor, beta: torch.Tensor, fused: bool
    ) -> torch.Tensor:
        nodes = [x]
        relus: list[torch.Tensor | None] = [None]
        for _, inputs in self.plan:
            acc: torch.Tensor | None = None
            for j, k in inputs:
                edge = self.edges[k]
                x_relu = None
                if fused and edge.uses_relu_input:
                    if relus[j] is None:
                        relus[j] = torch.relu(nodes[j])
                    x_relu = relus[j]
                acc = edge(nodes[j], weights[k], x_relu=x_relu, acc=acc, fused=fused)
                if self.aux_skip:
                    acc = torch.addcmul(acc, beta, nodes[j])
            assert acc is not None
            nodes.append(acc)
            relus.append(None)
        return nodes[-1]


class NB201Supernet(Supernet, NB201Skeleton):
    """The DARTS supernet of the NAS-Bench-201 space (NB201's DARTS-V1/V2 baseline).

    Same skeleton as the discrete network (stem, 3 stages of ``cells_per_stage`` cells joined by
    residual reductions), with one :class:`MixedOp` per edge and one alpha matrix shared by all
    cells (6 edges x operations).

    Args:
        num_classes: Output classes.
        in_channels: Image channels.
        channels: Width of the first stage (16 in NAS-Bench-201).
        cells_per_stage: Cells per stage (5 in NAS-Bench-201).
        operations: The discrete space's operations (``none`` is added to the supernet when
            missing, but then never derived).
        fused: See :class:`DartsSupernet`.
        aux_skip: See :class:`DartsSupernet`.
        alpha_init_std: Standard deviation of the initial alphas (``1e-3``).

    Example:
        .. code-block:: python

            import torch
            from optuna_nas.darts import NB201Supernet

            net = NB201Supernet(num_classes=10, channels=4, cells_per_stage=1)
            assert net(torch.randn(2, 3, 16, 16)).shape == (2, 10)
            print(net.derive())  # the cell of the largest architecture weights
    """

    def __init__(
        self,
        *,
        num_classes: int,
        operations: Sequence[str] = NB201_OPERATIONS,
        in_channels: int = 3,
        channels: int = 16,
        cells_per_stage: int = 5,
        fused: bool = True,
        aux_skip: bool = False,
        alpha_init_std: float = 1e-3,
    ) -> None:
        super().__init__()
        check_number("alpha_init_std", alpha_init_std, minimum=0.0)
        _check_even(channels)
        self.space_operations = tuple(operations)
        self.operations = _with_none(operations)
        self._init_common(fused=fused, aux_skip=aux_skip)
        ops = self.operations
        sizes = {"num_classes": num_classes, "in_channels": in_channels, "channels": channels}
        sizes["cells_per_stage"] = cells_per_stage
        self._build_skeleton(
            lambda width: _NB201SearchCell(channels=width, operations=ops, aux_skip=aux_skip),
            sizes,
        )
        self.alphas = nn.Parameter(alpha_init_std * torch.randn(len(EDGES), len(self.operations)))

    def named_arch_parameters(self) -> dict[str, nn.Parameter]:
        return {"cell": self.alphas}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.alphas, dim=-1)
        h = self.stem(x)
        for layer in self.cells:
            if isinstance(layer, _NB201SearchCell):
                h = layer(h, weights, self.aux_skip_beta, self.fused)
            else:
                h = layer(h)
        return self.classifier(self.head(h))

    def derive(self, *, include_none: bool | None = None) -> Any:
        """The ``NB201Cell`` with the largest weight per edge.

        Args:
            include_none: Whether ``none`` may be chosen. ``None`` (default) follows
                NAS-Bench-201's DARTS baseline, the argmax over all operations, whenever the
                space has ``none``.
        """
        if include_none is None:
            include_none = "none" in self.space_operations
        elif include_none and "none" not in self.space_operations:
            raise ValueError("include_none=True, but the search space has no 'none' operation.")
        return derive_nb201_cell(
            self.arch_weights()["cell"], operations=self.operations, include_none=include_none
        )


def create_supernet(
    space: SearchSpace[Any], *, num_classes: int, in_channels: int = 3, **kwargs: Any
) -> Supernet:
    """Create the DARTS supernet of ``space``: :meth:`SearchSpace.create_supernet`.

    Args:
        space: The discrete search space whose architectures the supernet derives.
        num_classes: Output classes.
        in_channels: Image channels.
        **kwargs: Options of the space's supernet, e.g. :class:`DartsSupernet`'s (``channels``,
            ``layers``, ...) for ``darts`` or :class:`NB201Supernet`'s (``channels``,
            ``cells_per_stage``, ...) for ``nasbench201``.

    Raises:
        NotImplementedError: The space has no supernet.
        TypeError: The space's supernet is not a :class:`Supernet`.
    """
    supernet = space.create_supernet(num_classes=num_classes, in_channels=in_channels, **kwargs)
    if not isinstance(supernet, Supernet):
        raise TypeError(
            f"{type(space).__name__}.create_supernet must return a Supernet, got "
            f"{type(supernet).__name__}."
        )
    return supernet
