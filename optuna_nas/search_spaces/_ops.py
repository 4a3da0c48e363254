"""Candidate operations shared by the cell search spaces and the DARTS supernet.

Two factory tables map an operation name to a constructor:

* :data:`DARTS_OPS` ``(channels, stride, affine) -> nn.Module``: the NASNet/DARTS operations.
* :data:`NB201_OPS` ``(in_channels, out_channels, stride, affine) -> nn.Module``: the
  NAS-Bench-201 operations.

Every operation keeps the spatial size when ``stride == 1`` and halves it when ``stride == 2``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def _conv(
    cin: int, cout: int, kernel: int, stride: int, padding: int, dilation: int = 1, groups: int = 1
) -> nn.Conv2d:
    """A bias-free convolution (every convolution here is followed by a BatchNorm)."""
    return nn.Conv2d(cin, cout, kernel, stride, padding, dilation, groups, bias=False)


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv -> BatchNorm, the basic convolution of NASNet, DARTS and NAS-Bench-201."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        padding: int,
        *,
        dilation: int = 1,
        affine: bool = True,
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            _conv(in_channels, out_channels, kernel_size, stride, padding, dilation),
            nn.BatchNorm2d(out_channels, affine=affine),
        )


class DilConv(nn.Sequential):
    """ReLU -> dilated depthwise conv -> pointwise conv -> BatchNorm, with "same" padding."""

    def __init__(
        self, channels: int, kernel_size: int, stride: int, dilation: int, *, affine: bool = True
    ) -> None:
        padding = dilation * (kernel_size - 1) // 2
        super().__init__(
            nn.ReLU(inplace=False),
            _conv(channels, channels, kernel_size, stride, padding, dilation, groups=channels),
            _conv(channels, channels, 1, 1, 0),
            nn.BatchNorm2d(channels, affine=affine),
        )


class SepConv(nn.Sequential):
    """Two stacked separable convolutions (only the first one strided), as in NASNet."""

    def __init__(
        self, channels: int, kernel_size: int, stride: int, *, affine: bool = True
    ) -> None:
        super().__init__(
            DilConv(channels, kernel_size, stride, 1, affine=affine),
            DilConv(channels, kernel_size, 1, 1, affine=affine),
        )


class Conv7x1x1x7(nn.Sequential):
    """ReLU -> 1x7 conv -> 7x1 conv -> BatchNorm (used by AmoebaNet-A)."""

    def __init__(self, channels: int, stride: int, *, affine: bool = True) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(channels, channels, (1, 7), stride=(1, stride), padding=(0, 3), bias=False),
            nn.Conv2d(channels, channels, (7, 1), stride=(stride, 1), padding=(3, 0), bias=False),
            nn.BatchNorm2d(channels, affine=affine),
        )


class Zero(nn.Module):
    """The ``none`` operation: outputs zeros of the (strided) input shape."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """Halve the spatial size with two offset stride-2 1x1 convolutions (no information lost)."""

    def __init__(self, in_channels: int, out_channels: int, *, affine: bool = True) -> None:
        super().__init__()
        if out_channels % 2:
            raise ValueError(f"FactorizedReduce needs an even out_channels, got {out_channels}.")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(in_channels, out_channels // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(in_channels, out_channels // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        # The second path is shifted by one pixel so the two halves see different positions.
        # Padding keeps odd sizes working (28 -> 14 -> 7 -> 4).
        shifted = nn.functional.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


def _skip(channels: int, stride: int, affine: bool) -> nn.Module:
    return nn.Identity() if stride == 1 else FactorizedReduce(channels, channels, affine=affine)


DartsOpFactory = Callable[[int, int, bool], nn.Module]

#: NASNet/DARTS operations: ``DARTS_OPS[name](channels, stride, affine)``.
DARTS_OPS: dict[str, DartsOpFactory] = {
    "none": lambda c, stride, affine: Zero(stride),
    "avg_pool_3x3": lambda c, stride, affine: nn.AvgPool2d(
        3, stride=stride, padding=1, count_include_pad=False
    ),
    "max_pool_3x3": lambda c, stride, affine: nn.MaxPool2d(3, stride=stride, padding=1),
    "skip_connect": _skip,
    "sep_conv_3x3": lambda c, stride, affine: SepConv(c, 3, stride, affine=affine),
    "sep_conv_5x5": lambda c, stride, affine: SepConv(c, 5, stride, affine=affine),
    "sep_conv_7x7": lambda c, stride, affine: SepConv(c, 7, stride, affine=affine),
    "dil_conv_3x3": lambda c, stride, affine: DilConv(c, 3, stride, 2, affine=affine),
    "dil_conv_5x5": lambda c, stride, affine: DilConv(c, 5, stride, 2, affine=affine),
    "conv_7x1_1x7": lambda c, stride, affine: Conv7x1x1x7(c, stride, affine=affine),
}


class _NB201AvgPool(nn.Module):
    """NAS-Bench-201 pooling: 1x1 ReLU-Conv-BN first when the channel count changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, affine: bool) -> None:
        super().__init__()
        self.preprocess = (
            ReLUConvBN(in_channels, out_channels, 1, 1, 0, affine=affine)
            if in_channels != out_channels
            else nn.Identity()
        )
        self.pool = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.preprocess(x))


def _nb201_skip(in_channels: int, out_channels: int, stride: int, affine: bool) -> nn.Module:
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    if stride == 2:
        return FactorizedReduce(in_channels, out_channels, affine=affine)
    return ReLUConvBN(in_channels, out_channels, 1, 1, 0, affine=affine)


NB201OpFactory = Callable[[int, int, int, bool], nn.Module]

#: NAS-Bench-201 operations: ``NB201_OPS[name](in_channels, out_channels, stride, affine)``.
NB201_OPS: dict[str, NB201OpFactory] = {
    "none": lambda cin, cout, stride, affine: Zero(stride),
    "skip_connect": _nb201_skip,
    "nor_conv_1x1": lambda cin, cout, stride, affine: ReLUConvBN(
        cin, cout, 1, stride, 0, affine=affine
    ),
    "nor_conv_3x3": lambda cin, cout, stride, affine: ReLUConvBN(
        cin, cout, 3, stride, 1, affine=affine
    ),
    "avg_pool_3x3": _NB201AvgPool,
}
