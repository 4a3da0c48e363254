"""The proxy contract and the helpers every proxy shares (copies, logits, weight layers)."""

from __future__ import annotations

import abc
from collections.abc import Iterator
from collections.abc import Sequence
import contextlib
import copy
from typing import Any
from typing import ClassVar

import torch
from torch import nn

from optuna_nas._validation import check_positive_ints


#: Layer types whose ``weight`` the gradient proxies score, as the reference implementation
#: (``foresight/pruners/p_utils.py::get_layer_metric_array``) does: convolutions and linear
#: layers, never BatchNorm's affine parameters or biases.
WEIGHT_LAYERS: tuple[type[nn.Module], ...] = (nn.modules.conv._ConvNd, nn.Linear)


class Proxy(abc.ABC):
    """A zero-cost proxy: a score of an untrained network, computed without training.

    Call it as ``proxy(network, inputs, targets)``. The score depends on the network's current
    weights, so on its initialisation (the caller's: seed it, or use
    :class:`~optuna_nas.estimators.ProxyScorer`, which seeds each architecture's build). Every
    proxy leaves ``network`` as it was: those that modify what they run
    (:attr:`modifies_network`) work on a deep copy, so weights, buffers (BatchNorm running
    statistics), gradients, ``requires_grad`` flags and training modes are untouched. A caller
    that will not use the network again passes ``consume=True`` and saves the copy (which
    costs more than the scoring itself on a NAS-Bench-201 network). Scores are deterministic
    for the same network and batch: stochastic layers are switched off (dropout) or draw from
    a fixed seed (e.g. DARTS drop-path), and cuDNN runs in deterministic mode during the call.

    An auxiliary classifier kept in the network's ``auxiliary_head`` attribute (DARTS) is
    ignored: networks that return ``(logits, aux_logits)`` in training are scored on their main
    logits, and the head's layers are left out of every sum.

    Attributes:
        name: Registry name (``create_proxy(name)``).
        needs_data: Whether the proxy reads the values of a batch of ``inputs`` (and, when
            :attr:`needs_targets`, ``targets``). Data-free proxies (``synflow``, ``flops``) take
            only the shape of one image from ``inputs`` (or their ``input_shape`` option);
            ``params`` needs nothing.
        needs_targets: Whether the proxy needs class labels (a cross-entropy loss).
        higher_is_better: Whether a larger score predicts a better network. ``True`` for every
            built-in proxy, ``params`` and ``flops`` included (bigger networks tend to be
            more accurate on NAS-Bench-201), so the scores can be maximised or voted on alike.
        reference: The paper that defines the proxy.
        modifies_network: Whether :meth:`_score` changes the network it is given (weights,
            modes, gradients), so that :meth:`__call__` gives it a deep copy unless
            ``consume=True``. ``True`` unless a subclass says otherwise.
    """

    name: ClassVar[str] = ""
    needs_data: ClassVar[bool] = True
    needs_targets: ClassVar[bool] = False
    higher_is_better: ClassVar[bool] = True
    reference: ClassVar[str] = ""
    modifies_network: ClassVar[bool] = True

    def __call__(
        self,
        network: nn.Module,
        inputs: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
        *,
        consume: bool = False,
    ) -> float:
        """Score ``network``.

        Args:
            network: The network (not modified, unless ``consume``).
            inputs: A batch of images ``(N, C, H, W)`` (or any ``(N, ...)`` input the network
                takes), on the network's device.
            targets: Class labels ``(N,)`` for the proxies with :attr:`needs_targets`.
            consume: The caller will not use ``network`` again: a proxy that
                :attr:`modifies_network` scores it directly instead of a deep copy.

        Raises:
            ValueError: ``inputs`` or ``targets`` is missing, or they disagree in length.
        """
        if not isinstance(network, nn.Module):
            raise ValueError(f"network must be a torch.nn.Module, got {network!r}.")
        if self.needs_data and inputs is None:
            raise ValueError(f"Proxy {self.name!r} needs a batch of inputs; got inputs=None.")
        if self.needs_targets:
            if targets is None:
                raise ValueError(f"Proxy {self.name!r} needs targets; got targets=None.")
            assert inputs is not None
            if targets.shape[:1] != inputs.shape[:1]:
                raise ValueError(
                    f"Proxy {self.name!r}: {inputs.shape[0]} inputs but targets of shape "
                    f"{tuple(targets.shape)}."
                )
        with _deterministic(network):
            if self.modifies_network and not consume:
                network = copy.deepcopy(network)
            return float(self._score(network, inputs, targets))

    @abc.abstractmethod
    def _score(
        self, network: nn.Module, inputs: torch.Tensor | None, targets: torch.Tensor | None
    ) -> float:
        """The score; the inputs are checked against :attr:`needs_data` already.

        ``network`` is the proxy's own to change when :attr:`modifies_network` (a copy, or the
        caller's consumed network); otherwise it is the caller's and must be left as it was.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ShapeProxy(Proxy):
    """A data-free proxy that runs the network on one image of a known shape."""

    needs_data = False

    def __init__(self, *, input_shape: Sequence[int] | None = None) -> None:
        if input_shape is not None:
            input_shape = tuple(input_shape)
            check_positive_ints(
                f"input_shape entries of {self.name}",
                {f"input_shape[{i}]": v for i, v in enumerate(input_shape)},
            )
            if not input_shape:
                raise ValueError(f"input_shape must not be empty, got {input_shape!r}.")
        self.input_shape: tuple[int, ...] | None = input_shape

    def image_shape(self, inputs: torch.Tensor | None) -> tuple[int, ...]:
        """The shape of one image: ``inputs``' (its values are not read) or ``input_shape``."""
        if inputs is not None:
            if inputs.dim() < 2:
                raise ValueError(
                    f"inputs must be a batch (N, ...), got shape {tuple(inputs.shape)}."
                )
            return tuple(inputs.shape[1:])
        if self.input_shape is None:
            raise ValueError(
                f"Proxy {self.name!r} needs the input shape: pass inputs (only their shape is "
                "used) or create it with input_shape=(C, H, W)."
            )
        return self.input_shape

    def __repr__(self) -> str:
        return f"{type(self).__name__}(input_shape={self.input_shape!r})"


# --------------------------------------------------------------------------- helpers
def main_logits(output: Any) -> torch.Tensor:
    """The main logits of a network output: the first item of a ``(logits, aux)`` tuple."""
    if isinstance(output, (tuple, list)):
        if not output:
            raise ValueError("The network returned an empty tuple.")
        output = output[0]
    if not isinstance(output, torch.Tensor):
        raise ValueError(f"The network returned {type(output).__name__}, not a tensor.")
    return output


def auxiliary_modules(network: nn.Module) -> set[int]:
    """Ids of the modules of the network's ``auxiliary_head`` (empty when it has none)."""
    aux = getattr(network, "auxiliary_head", None)
    return {id(m) for m in aux.modules()} if isinstance(aux, nn.Module) else set()


def weight_layers(network: nn.Module) -> list[nn.Module]:
    """The convolutions and linear layers outside the auxiliary head, each once."""
    skip = auxiliary_modules(network)
    return [
        m
        for m in network.modules()
        if isinstance(m, WEIGHT_LAYERS)
        and id(m) not in skip
        and isinstance(getattr(m, "weight", None), torch.Tensor)
    ]


def layer_weights(network: nn.Module) -> list[torch.Tensor]:
    """The ``weight`` of each of :func:`weight_layers`, each tensor once."""
    weights: dict[int, torch.Tensor] = {}
    for layer in weight_layers(network):
        weight = layer.weight
        assert isinstance(weight, torch.Tensor)
        weights.setdefault(id(weight), weight)
    return list(weights.values())


def prepare_to_score(network: nn.Module, *, train: bool) -> nn.Module:
    """Set up a proxy's own network (a copy, see :attr:`Proxy.modifies_network`) in place: no
    gradients, dropout off, in training mode when ``train``; returns it.

    Every parameter takes gradients, so a layer frozen in the original is scored like the
    others (its weights still shape the network's function).

    The data-dependent proxies run the network in training mode, as the reference does:
    BatchNorm normalises with the batch's statistics (an untrained network's running
    statistics are the initial 0/1), and the running statistics it updates are the copy's.
    """
    clone = network
    clone.train(train)
    for module in clone.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.eval()
    for p in clone.parameters():
        p.grad = None
        p.requires_grad_(True)
    return clone


@contextlib.contextmanager
def _deterministic(network: nn.Module) -> Iterator[None]:
    """Fixed random state (restored afterwards) and deterministic cuDNN during a proxy call."""
    first = next(iter(network.parameters()), None)
    device = first.device if first is not None else torch.device("cpu")
    devices = [device] if device.type == "cuda" else []
    cudnn = torch.backends.cudnn
    saved = (cudnn.deterministic, cudnn.benchmark)
    try:
        cudnn.deterministic, cudnn.benchmark = True, False
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(0)
            yield
    finally:
        cudnn.deterministic, cudnn.benchmark = saved
