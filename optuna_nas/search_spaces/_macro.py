"""The layer-wise "macro" search space of Zoph & Le (2017) and ENAS (Pham et al., 2018)."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
import re
from typing import Any

import torch
from torch import nn

from optuna_nas._validation import check_int
from optuna_nas._validation import check_positive_ints
from optuna_nas._validation import is_int
from optuna_nas.search_spaces._base import CellGraph
from optuna_nas.search_spaces._base import Decision
from optuna_nas.search_spaces._base import SearchSpace
from optuna_nas.search_spaces._registry import register_search_space
from optuna_nas.trial_outcome import InvalidArchitectureError


_LAYER_RE = re.compile(
    r"L(?P<index>0|[1-9]\d*):(?P<height>0|[1-9]\d*)x(?P<width>0|[1-9]\d*)x"
    r"(?P<filters>0|[1-9]\d*)(?:<(?P<skips>(?:0|[1-9]\d*)(?:,(?:0|[1-9]\d*))*))?"
)
_SKIP_CHOICES: tuple[bool, bool] = (False, True)


@dataclass(frozen=True)
class MacroLayer:
    """One layer of a macro architecture.

    Attributes:
        filter_height: Kernel height (odd, so that 'same' padding is exact).
        filter_width: Kernel width (odd).
        num_filters: Output channels.
        skip_from: Ascending indices of the earlier layers whose outputs are concatenated to this
            layer's input, besides the previous layer's output, which always feeds it.
    """

    filter_height: int
    filter_width: int
    num_filters: int
    skip_from: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for field in ("filter_height", "filter_width", "num_filters"):
            value = getattr(self, field)
            if not is_int(value) or value < 1:
                raise InvalidArchitectureError(f"{field} must be a positive int, got {value!r}.")
            object.__setattr__(self, field, int(value))
        for field in ("filter_height", "filter_width"):
            if getattr(self, field) % 2 == 0:
                raise InvalidArchitectureError(
                    f"{field} must be odd so that 'same' padding is exact, "
                    f"got {getattr(self, field)!r}."
                )
        skips = tuple(self.skip_from)
        if not all(is_int(j) and j >= 0 for j in skips):
            raise InvalidArchitectureError(
                f"skip_from must hold non-negative ints, got {self.skip_from!r}."
            )
        skips = tuple(int(j) for j in skips)
        if list(skips) != sorted(set(skips)):
            raise InvalidArchitectureError(
                f"skip_from must be ascending without repeats, got {skips!r}."
            )
        object.__setattr__(self, "skip_from", skips)


@dataclass(frozen=True)
class MacroArchitecture:
    """A macro architecture: a chain of convolution layers with extra skip connections.

    Layer ``i`` reads the output of layer ``i - 1`` (the image for layer 0) concatenated with the
    outputs of the layers in ``layers[i].skip_from``; those must lie in ``[0, i - 1)``, since
    layer ``i - 1`` already feeds it.

    Attributes:
        layers: The layers, input first.

    Example:
        .. code-block:: python

            from optuna_nas.search_spaces import MacroArchitecture
            from optuna_nas.search_spaces._macro import MacroLayer

            arch = MacroArchitecture(
                (MacroLayer(3, 3, 36), MacroLayer(5, 5, 48), MacroLayer(3, 7, 24, skip_from=(0,)))
            )
    """

    layers: tuple[MacroLayer, ...]

    def __post_init__(self) -> None:
        layers = tuple(self.layers)
        if not layers:
            raise InvalidArchitectureError("A macro architecture needs at least one layer.")
        for i, layer in enumerate(layers):
            if not isinstance(layer, MacroLayer):
                raise InvalidArchitectureError(f"Layer {i} must be a MacroLayer, got {layer!r}.")
            bad = [j for j in layer.skip_from if j >= i - 1]
            if bad:
                raise InvalidArchitectureError(
                    f"Layer {i} cannot skip from layer(s) {bad!r}: skip sources must be earlier "
                    f"than its previous layer {i - 1}, which always feeds it."
                )
        object.__setattr__(self, "layers", layers)

    @property
    def num_layers(self) -> int:
        """Number of layers."""
        return len(self.layers)


class MacroNetwork(nn.Module):
    """The network of a :class:`MacroArchitecture`.

    Each layer is Conv(h x w, 'same' padding, no bias) -> BatchNorm -> ReLU. Its input is the
    channel-wise concatenation, in ascending layer order, of its skip sources and of the previous
    layer's output. After each layer in ``pool_after`` a 2x2 stride-2 max pool (``ceil_mode``, so
    odd sizes such as 7 work) halves the main path, and every stored output that a later layer
    skips from is pooled the same way, so concatenated tensors always share their spatial size.
    Global average pooling and a linear classifier follow the last layer.
    """

    def __init__(
        self,
        arch: MacroArchitecture,
        *,
        num_classes: int,
        in_channels: int = 3,
        pool_after: Sequence[int] = (),
    ) -> None:
        super().__init__()
        check_positive_ints(
            "macro network sizes", {"num_classes": num_classes, "in_channels": in_channels}
        )
        self.pool_after = frozenset(pool_after)
        self.skip_from = [layer.skip_from for layer in arch.layers]
        # The last layer that reads each output, so outputs are kept (and pooled) only while
        # some later layer still needs them.
        self.last_use: dict[int, int] = {}
        for i, layer in enumerate(arch.layers):
            for j in layer.skip_from:
                self.last_use[j] = i
        layers = []
        previous = in_channels
        for layer in arch.layers:
            width = previous + sum(arch.layers[j].num_filters for j in layer.skip_from)
            kernel = (layer.filter_height, layer.filter_width)
            padding = (layer.filter_height // 2, layer.filter_width // 2)
            layers.append(
                nn.Sequential(
                    nn.Conv2d(width, layer.num_filters, kernel, padding=padding, bias=False),
                    nn.BatchNorm2d(layer.num_filters),
                    nn.ReLU(inplace=False),
                )
            )
            previous = layer.num_filters
        self.layers = nn.ModuleList(layers)
        self.pool = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(previous, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kept: dict[int, torch.Tensor] = {}
        for i, layer in enumerate(self.layers):
            if self.skip_from[i]:
                x = torch.cat([kept[j] for j in self.skip_from[i]] + [x], dim=1)
            x = layer(x)
            for j in [j for j in kept if self.last_use[j] <= i]:
                del kept[j]
            if i in self.pool_after:
                x = self.pool(x)
                kept = {j: self.pool(t) for j, t in kept.items()}
            if i in self.last_use:
                kept[i] = x
        return self.classifier(self.head(x))


@register_search_space("macro")
class MacroSearchSpace(SearchSpace[MacroArchitecture]):
    """The layer-wise macro space of Zoph & Le (2017) and the ENAS macro space.

    Each of ``num_layers`` layers chooses a kernel height and width from ``filter_sizes``, a
    number of filters from ``num_filters``, and whether to take a skip connection from each
    layer before its predecessor. Layer ``i`` always reads layer ``i - 1`` (the image for
    layer 0), so the skip decisions of layer ``i`` cover layers ``j < i - 1``: a decision for
    ``j = i - 1`` would change nothing. Skipped outputs are concatenated along channels (Zoph &
    Le) and max-pooled to the size of the main path. See :class:`MacroNetwork` for the network.

    Parameters, in the order :meth:`suggest` asks them, for each layer ``i``:

    * ``macro/layer{i}/filter_height`` and ``macro/layer{i}/filter_width``: ``filter_sizes``;
    * ``macro/layer{i}/num_filters``: ``num_filters``;
    * ``macro/layer{i}/skip_from{j}`` for ``j < i - 1``: ``(False, True)``.

    Strings list the layers separated by ``|``, each as ``L{i}:{height}x{width}x{filters}``
    followed, if it has skip connections, by ``<`` and the ascending comma-separated source
    layers, e.g. ``L0:3x3x36|L1:5x5x48|L2:1x7x24<0|L3:3x3x64<0,1``. The format is canonical:
    :meth:`to_string` and :meth:`from_string` are exact inverses.

    Args:
        num_layers: Number of convolution layers (6 in ENAS's small setting; 12 in its paper).
        filter_sizes: Candidate kernel heights and widths (odd positive ints).
        num_filters: Candidate output channels per layer (positive ints).
        pool_after: Layers after which a 2x2 stride-2 max pool halves the feature maps. Defaults
            to ENAS's positions ``num_layers // 3 - 1`` and ``2 * (num_layers // 3) - 1``
            (after layers 1 and 3 of 6: three stages of two layers); none for fewer than 3
            layers. Positions must lie in ``[0, num_layers - 1)``.

    Example:
        .. code-block:: python

            import optuna
            import torch
            from optuna_nas.search_spaces import create_search_space

            space = create_search_space("macro", num_layers=4)

            def objective(trial):
                arch = space.suggest(trial)
                model = space.build(arch, num_classes=10)
                return model(torch.randn(2, 3, 32, 32)).square().mean().item()

            optuna.create_study().optimize(objective, n_trials=2)
    """

    name = "macro"
    prefix = "macro"
    architecture_type = MacroArchitecture

    def __init__(
        self,
        *,
        num_layers: int = 6,
        filter_sizes: Sequence[int] = (1, 3, 5, 7),
        num_filters: Sequence[int] = (24, 36, 48, 64),
        pool_after: Sequence[int] | None = None,
    ) -> None:
        check_int("num_layers", num_layers, minimum=1)
        filter_sizes = tuple(filter_sizes)
        if (
            not filter_sizes
            or not all(is_int(k) and k >= 1 and k % 2 == 1 for k in filter_sizes)
            or len(set(filter_sizes)) != len(filter_sizes)
        ):
            raise ValueError(
                f"filter_sizes must be distinct odd positive ints, got {list(filter_sizes)!r}."
            )
        num_filters = tuple(num_filters)
        if (
            not num_filters
            or not all(is_int(f) and f >= 1 for f in num_filters)
            or len(set(num_filters)) != len(num_filters)
        ):
            raise ValueError(
                f"num_filters must be distinct positive ints, got {list(num_filters)!r}."
            )
        self._default_pool_after = pool_after is None
        if pool_after is None:
            third = num_layers // 3
            pool_after = (third - 1, 2 * third - 1) if third >= 1 else ()
        pool_after = tuple(pool_after)
        in_range = all(is_int(p) and 0 <= p < num_layers - 1 for p in pool_after)
        if not in_range or len(set(pool_after)) != len(pool_after):
            raise ValueError(
                f"pool_after must hold distinct layer indices in [0, {num_layers - 1}), "
                f"got {list(pool_after)!r}."
            )
        self.num_layers = int(num_layers)
        self.filter_sizes = tuple(int(k) for k in filter_sizes)
        self.num_filters = tuple(int(f) for f in num_filters)
        self.pool_after = tuple(sorted(int(p) for p in pool_after))
        decisions = []
        for i in range(self.num_layers):
            decisions.append(Decision(self.param_name(i, "filter_height"), self.filter_sizes))
            decisions.append(Decision(self.param_name(i, "filter_width"), self.filter_sizes))
            decisions.append(Decision(self.param_name(i, "num_filters"), self.num_filters))
            decisions.extend(
                Decision(self.param_name(i, f"skip_from{j}"), _SKIP_CHOICES) for j in range(i - 1)
            )
        self._decisions = tuple(decisions)

    def param_name(self, layer: int, decision: str) -> str:
        """The Optuna parameter name of ``decision`` (e.g. ``"num_filters"``) of ``layer``."""
        return f"{self.prefix}/layer{layer}/{decision}"

    def from_params(self, params: Mapping[str, Any]) -> MacroArchitecture:
        values = self._read_decisions(params)
        for decision in self._decisions:
            value = values[decision.name]
            if decision.choices == _SKIP_CHOICES:
                values[decision.name] = bool(value)
            elif not is_int(value):
                # ``True in (1, 3)`` holds in Python; refuse it rather than read it as 1.
                raise InvalidArchitectureError(
                    f"Parameter {decision.name!r} has value {value!r}, which is not one of "
                    f"{list(decision.choices)!r}."
                )
        layers = []
        for i in range(self.num_layers):
            layers.append(
                MacroLayer(
                    values[self.param_name(i, "filter_height")],
                    values[self.param_name(i, "filter_width")],
                    values[self.param_name(i, "num_filters")],
                    tuple(j for j in range(i - 1) if values[self.param_name(i, f"skip_from{j}")]),
                )
            )
        return MacroArchitecture(tuple(layers))

    def to_params(self, arch: MacroArchitecture) -> dict[str, Any]:
        self._check(arch)
        params: dict[str, Any] = {}
        for i, layer in enumerate(arch.layers):
            params[self.param_name(i, "filter_height")] = layer.filter_height
            params[self.param_name(i, "filter_width")] = layer.filter_width
            params[self.param_name(i, "num_filters")] = layer.num_filters
            for j in range(i - 1):
                params[self.param_name(i, f"skip_from{j}")] = j in layer.skip_from
        return params

    def to_string(self, arch: MacroArchitecture) -> str:
        self._check(arch)
        parts = []
        for i, layer in enumerate(arch.layers):
            part = f"L{i}:{layer.filter_height}x{layer.filter_width}x{layer.num_filters}"
            if layer.skip_from:
                part += "<" + ",".join(str(j) for j in layer.skip_from)
            parts.append(part)
        return "|".join(parts)

    def from_string(self, text: str) -> MacroArchitecture:
        if not isinstance(text, str):
            raise InvalidArchitectureError(
                f"A macro architecture string must be a str, got {text!r}."
            )
        parts = text.strip().split("|")
        if len(parts) != self.num_layers:
            raise InvalidArchitectureError(
                f"Macro string {text!r} has {len(parts)} layer(s) separated by '|'; this space "
                f"has {self.num_layers}."
            )
        layers = []
        for i, part in enumerate(parts):
            match = _LAYER_RE.fullmatch(part)
            if match is None:
                raise InvalidArchitectureError(
                    f"Malformed layer {part!r} in {text!r}: expected "
                    f"'L{i}:<height>x<width>x<filters>' optionally followed by '<j,k,...'."
                )
            if int(match["index"]) != i:
                raise InvalidArchitectureError(
                    f"Layer {part!r} in {text!r} is at position {i}; expected L{i}."
                )
            height, width = int(match["height"]), int(match["width"])
            filters = int(match["filters"])
            for what, value in (("filter height", height), ("filter width", width)):
                if value not in self.filter_sizes:
                    raise InvalidArchitectureError(
                        f"Unknown {what} {value} in layer {part!r} of {text!r}; expected one of "
                        f"{list(self.filter_sizes)!r}."
                    )
            if filters not in self.num_filters:
                raise InvalidArchitectureError(
                    f"Unknown number of filters {filters} in layer {part!r} of {text!r}; "
                    f"expected one of {list(self.num_filters)!r}."
                )
            skips = tuple(int(j) for j in match["skips"].split(",")) if match["skips"] else ()
            if list(skips) != sorted(set(skips)):
                raise InvalidArchitectureError(
                    f"Skip sources in layer {part!r} of {text!r} must be ascending without "
                    "repeats."
                )
            bad = [j for j in skips if j >= i - 1]
            if bad:
                raise InvalidArchitectureError(
                    f"Layer {part!r} of {text!r} cannot skip from layer(s) {bad!r}: sources must "
                    f"be < {max(i - 1, 0)} (the previous layer always feeds it)."
                )
            layers.append(MacroLayer(height, width, filters, skips))
        return MacroArchitecture(tuple(layers))

    def build(
        self,
        arch: MacroArchitecture,
        *,
        num_classes: int,
        in_channels: int = 3,
        **kwargs: Any,
    ) -> nn.Module:
        """Build the :class:`MacroNetwork` of ``arch``.

        Args:
            arch: The architecture.
            num_classes: Output classes.
            in_channels: Image channels.
        """
        if kwargs:
            raise ValueError(f"Unknown build options for macro: {sorted(kwargs)!r}.")
        self._check(arch)
        return MacroNetwork(
            arch, num_classes=num_classes, in_channels=in_channels, pool_after=self.pool_after
        )

    def cell_graphs(self, arch: MacroArchitecture) -> list[CellGraph]:
        """The network as one drawable graph: a chain of layers plus the skip connections."""
        labels = [f"{x.filter_height}x{x.filter_width} conv, {x.num_filters}" for x in arch.layers]
        graph = CellGraph("macro network", ["input", *labels])
        for i, layer in enumerate(arch.layers):
            graph.edges.append((i, i + 1, ""))
            for j in layer.skip_from:
                graph.edges.append((j + 1, i + 1, "skip"))
        return [graph]

    def _check(self, arch: MacroArchitecture) -> None:
        if not isinstance(arch, MacroArchitecture):
            raise InvalidArchitectureError(f"Expected a MacroArchitecture, got {arch!r}.")
        if arch.num_layers != self.num_layers:
            raise InvalidArchitectureError(
                f"The architecture has {arch.num_layers} layers; this space has {self.num_layers}."
            )
        for i, layer in enumerate(arch.layers):
            for what, value, choices in (
                ("filter_height", layer.filter_height, self.filter_sizes),
                ("filter_width", layer.filter_width, self.filter_sizes),
                ("num_filters", layer.num_filters, self.num_filters),
            ):
                if value not in choices:
                    raise InvalidArchitectureError(
                        f"Layer {i} has {what}={value!r}, which is not one of {list(choices)!r}."
                    )

    def __repr__(self) -> str:
        args = []
        if self.num_layers != 6:
            args.append(f"num_layers={self.num_layers}")
        if self.filter_sizes != (1, 3, 5, 7):
            args.append(f"filter_sizes={self.filter_sizes!r}")
        if self.num_filters != (24, 36, 48, 64):
            args.append(f"num_filters={self.num_filters!r}")
        if not self._default_pool_after:
            args.append(f"pool_after={self.pool_after!r}")
        return f"MacroSearchSpace({', '.join(args)})"
