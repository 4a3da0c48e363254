"""The zero-cost proxies of Abdelfattah et al. (ICLR 2021) and Mellor et al. (ICML 2021).

Recipes follow the reference implementations (SamsungLabs/zero-cost-nas,
BayesWatch/nas-without-training); each class says where it departs from them.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from optuna_nas._flops import count_flops
from optuna_nas._validation import check_number
from optuna_nas.estimators._base import Proxy
from optuna_nas.estimators._base import ShapeProxy
from optuna_nas.estimators._base import auxiliary_modules
from optuna_nas.estimators._base import layer_weights
from optuna_nas.estimators._base import main_logits
from optuna_nas.estimators._base import prepare_to_score
from optuna_nas.estimators._base import weight_layers
from optuna_nas.estimators._registry import register_proxy


_ABDELFATTAH = "Abdelfattah et al., Zero-Cost Proxies for Lightweight NAS, ICLR 2021"


def _cross_entropy_backward(
    network: nn.Module, inputs: torch.Tensor, targets: torch.Tensor
) -> list[torch.Tensor]:
    """Backpropagate the batch's cross-entropy through ``network`` (a scoring copy); return
    the weights of its convolution and linear layers."""
    loss = F.cross_entropy(main_logits(network(inputs)), targets)
    loss.backward()
    return layer_weights(network)


def _to_bn_free(network: nn.Module) -> None:
    """Replace every BatchNorm of ``network`` by an identity, in place."""
    for name, child in list(network.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(network, name, nn.Identity())
        else:
            _to_bn_free(child)


@register_proxy("synflow")
class SynFlow(ShapeProxy):
    """Synaptic flow (Tanaka et al., NeurIPS 2020), data-free, as scored by Abdelfattah et al.

    On a copy of the network: every BatchNorm layer is replaced by an identity (the reference's
    ``bn=False`` copy, which is built without BatchNorm; keeping BN in evaluation mode would be
    the same only while the running statistics are still 0/1, and BN in training mode on one
    all-ones image would zero the signal), every parameter and buffer is replaced by its
    absolute value, the copy is cast to double precision (the product of 15+ layers' weights
    overflows float32 on the NAS-Bench-201 network) and run in evaluation mode (no dropout or
    drop-path; BN is gone, so the mode changes nothing else) on one all-ones image. With
    ``R = sum(outputs)`` the score is ``sum |w * dR/dw|`` over the weights of every convolution
    and linear layer (biases and BN's affine parameters are not summed, as in the reference;
    they still shape the flow). The input's values are not read: only the shape of one image.

    Args:
        input_shape: The shape of one image, ``(C, H, W)``, used when no ``inputs`` are given.

    Example:
        .. code-block:: python

            from torch import nn
            from optuna_nas.estimators import create_proxy

            net = nn.Sequential(nn.Linear(3, 2, bias=False), nn.Linear(2, 1, bias=False))
            print(create_proxy("synflow", input_shape=(3,))(net))
    """

    name = "synflow"
    reference = "Tanaka et al., NeurIPS 2020; " + _ABDELFATTAH

    def _score(
        self, network: nn.Module, inputs: torch.Tensor | None, targets: torch.Tensor | None
    ) -> float:
        shape = self.image_shape(inputs)
        clone = prepare_to_score(network, train=False)
        _to_bn_free(clone)
        clone.double()
        with torch.no_grad():
            for tensor in clone.state_dict().values():
                if tensor.is_floating_point():
                    tensor.abs_()
        device = next(iter(clone.parameters()), torch.empty(0)).device
        x = torch.ones((1, *shape), dtype=torch.float64, device=device)
        main_logits(clone(x)).sum().backward()
        total = 0.0
        for w in layer_weights(clone):
            if w.grad is not None:
                total += float((w.detach() * w.grad).abs().sum())
        return total


@register_proxy("snip")
class Snip(Proxy):
    """SNIP saliency (Lee et al., ICLR 2019): ``sum |w * dL/dw|`` for the batch's cross-entropy.

    Summed over the weights of every convolution and linear layer; the network (a copy) runs in
    training mode, so BatchNorm uses the batch's statistics, as in the reference.
    """

    name = "snip"
    needs_targets = True
    reference = "Lee et al., SNIP, ICLR 2019; " + _ABDELFATTAH

    def _score(
        self, network: nn.Module, inputs: torch.Tensor | None, targets: torch.Tensor | None
    ) -> float:
        assert inputs is not None and targets is not None
        weights = _cross_entropy_backward(prepare_to_score(network, train=True), inputs, targets)
        return sum(float((w.detach() * w.grad).abs().sum()) for w in weights if w.grad is not None)


@register_proxy("grad_norm")
class GradNorm(Proxy):
    """Sum over convolution and linear layers of the L2 norm of the loss gradient of the weight.

    Cross-entropy of the batch, the network (a copy) in training mode.
    """

    name = "grad_norm"
    needs_targets = True
    reference = _ABDELFATTAH

    def _score(
        self, network: nn.Module, inputs: torch.Tensor | None, targets: torch.Tensor | None
    ) -> float:
        assert inputs is not None and targets is not None
        weights = _cross_entropy_backward(prepare_to_score(network, train=True), inputs, targets)
        return sum(float(w.grad.norm()) for w in weights if w.grad is not None)


@register_proxy("grasp")
class Grasp(Proxy):
    """GraSP (Wang et al., ICLR 2020): ``sum(-w * Hg)`` with ``g`` the loss gradient.

    ``Hg``, the Hessian of the cross-entropy times its gradient (over the weights of the
    convolution and linear layers), is a Hessian-vector product by double backward:
    ``d(g_detached . dL/dw)/dw``. The sum is signed, as in the reference (a larger value
    predicts a better network there, so :attr:`higher_is_better` holds as for the others).
    """

    name = "grasp"
    needs_targets = True
    reference = "Wang et al., GraSP, ICLR 2020; " + _ABDELFATTAH

    def _score(
        self, network: nn.Module, inputs: torch.Tensor | None, targets: torch.Tensor | None
    ) -> float:
        assert inputs is not None and targets is not None
        clone = prepare_to_score(network, train=True)
        weights = layer_weights(clone)
        loss = F.cross_entropy(main_logits(clone(inputs)), targets)
        first = torch.autograd.grad(loss, weights, allow_unused=True)
        # A second forward pass, as the reference does: the first graph is freed.
        loss = F.cross_entropy(main_logits(clone(inputs)), targets)
        grads = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True)
        z = sum(
            (g0.detach() * g).sum()
            for g0, g in zip(first, grads)
            if g0 is not None and g is not None
        )
        if not isinstance(z, torch.Tensor) or not z.requires_grad:
            return 0.0
        hg = torch.autograd.grad(z, weights, allow_unused=True)
        return sum(float((-w.detach() * h).sum()) for w, h in zip(weights, hg) if h is not None)


@register_proxy("fisher")
class Fisher(Proxy):
    """Fisher information of channels (Theis et al. 2018; Turner et al., BlockSwap, ICLR 2020).

    For the output ``a`` of every convolution and linear layer (the reference hooks the same
    place, through an identity it inserts after each such layer) and its loss gradient ``g``:
    per sample and channel ``s = sum over positions of a * g``, per channel
    ``0.5 * mean over the batch of s ** 2``, summed over channels and layers. Cross-entropy of
    the batch, the network (a copy) in training mode. A layer called more than once adds each
    call.
    """

    name = "fisher"
    needs_targets = True
    reference = "Turner et al., BlockSwap, ICLR 2020; " + _ABDELFATTAH

    def _score(
        self, network: nn.Module, inputs: torch.Tensor | None, targets: torch.Tensor | None
    ) -> float:
        assert inputs is not None and targets is not None
        clone = prepare_to_score(network, train=True)
        totals: list[torch.Tensor] = []

        def forward_hook(module: nn.Module, args: object, output: torch.Tensor) -> None:
            if not isinstance(output, torch.Tensor) or not output.requires_grad:
                return
            # A copy: an in-place operation after the layer must not change it.
            activation = output.detach().clone()

            def grad_hook(grad: torch.Tensor) -> None:
                product = activation * grad.detach()
                # Not sum(dim=()) for a (N, C) output: torch reads an empty dim as "all dims".
                per_channel = (
                    product.sum(dim=tuple(range(2, product.dim())))
                    if product.dim() > 2
                    else product
                )
                totals.append(0.5 * per_channel.pow(2).mean(dim=0).sum())

            output.register_hook(grad_hook)

        handles = [m.register_forward_hook(forward_hook) for m in weight_layers(clone)]
        try:
            F.cross_entropy(main_logits(clone(inputs)), targets).backward()
        finally:
            for handle in handles:
                handle.remove()
        return float(sum(float(t) for t in totals))


@register_proxy("jacob_cov")
class JacobCov(Proxy):
    """Jacobian covariance (Mellor et al., Neural Architecture Search without Training, v1).

    ``J`` holds, per image, the gradient of the sum of the network's outputs with respect to
    the image (the network, a copy, in training mode). With ``C`` the correlation matrix of
    ``J``'s rows and ``e`` its eigenvalues, the score is ``-sum(log(e + k) + 1 / (e + k))``,
    largest when the images' Jacobians are uncorrelated. A network whose Jacobian is the same
    for every image (e.g. zero: no path from the input) has no defined correlation and scores
    ``-inf``, the worst.

    Args:
        k: The eigenvalue offset (``1e-5`` in the paper).
    """

    name = "jacob_cov"
    reference = "Mellor et al., Neural Architecture Search without Training, arXiv v1, 2020"

    def __init__(self, *, k: float = 1e-5) -> None:
        check_number("k", k, minimum=0.0, min_inclusive=False)
        self.k = float(k)

    def _score(
        self, network: nn.Module, inputs: torch.Tensor | None, targets: torch.Tensor | None
    ) -> float:
        assert inputs is not None
        if inputs.shape[0] < 2:
            raise ValueError(f"jacob_cov needs a batch of >= 2 inputs, got {inputs.shape[0]}.")
        clone = prepare_to_score(network, train=True)
        x = inputs.detach().clone().requires_grad_(True)
        main_logits(clone(x)).sum().backward()
        assert x.grad is not None
        jacobians = x.grad.reshape(x.shape[0], -1).double().cpu().numpy()
        centred = jacobians - jacobians.mean(axis=1, keepdims=True)
        norms = np.linalg.norm(centred, axis=1)
        if not np.all(norms > 0):
            return -math.inf
        unit = centred / norms[:, None]
        eigenvalues = np.linalg.eigvalsh(unit @ unit.T)
        return float(-np.sum(np.log(eigenvalues + self.k) + 1.0 / (eigenvalues + self.k)))

    def __repr__(self) -> str:
        return f"JacobCov(k={self.k!r})"


@register_proxy("naswot")
class NASWOT(Proxy):
    """NASWOT (Mellor et al., ICML 2021): ``log |K_H|`` of the batch's ReLU activation codes.

    Each ``nn.ReLU`` module (outside an auxiliary head) gives, per image, the binary code of
    which of its outputs are positive; with ``c_i`` the concatenated code of image ``i`` and
    ``N_A`` its length, ``K_H[i, j] = N_A - hamming(c_i, c_j)``, computed as
    ``c c^T + (1 - c)(1 - c)^T``. The score is the log-determinant (``-inf`` when singular, e.g.
    two images with the same code). The network (a copy) runs in training mode without
    gradients. ReLUs applied functionally (``F.relu``) are not seen: the built-in spaces use
    ``nn.ReLU`` modules.

    Raises:
        ValueError: The network has no ``nn.ReLU`` module.
    """

    name = "naswot"
    reference = "Mellor et al., Neural Architecture Search without Training, ICML 2021"

    def _score(
        self, network: nn.Module, inputs: torch.Tensor | None, targets: torch.Tensor | None
    ) -> float:
        assert inputs is not None
        clone = prepare_to_score(network, train=True)
        skip = auxiliary_modules(clone)
        relus = [m for m in clone.modules() if isinstance(m, nn.ReLU) and id(m) not in skip]
        if not relus:
            raise ValueError(
                f"naswot needs nn.ReLU modules; {type(network).__name__} has none outside an "
                "auxiliary head."
            )
        n = inputs.shape[0]
        kernel = torch.zeros((n, n), dtype=torch.float64, device=inputs.device)

        def hook(module: nn.Module, args: object, output: torch.Tensor) -> None:
            nonlocal kernel
            codes = (output.reshape(n, -1) > 0).double()
            kernel = kernel + codes @ codes.T + (1.0 - codes) @ (1.0 - codes).T

        handles = [m.register_forward_hook(hook) for m in relus]
        try:
            with torch.no_grad():
                clone(inputs)
        finally:
            for handle in handles:
                handle.remove()
        sign, logdet = np.linalg.slogdet(kernel.cpu().numpy())
        return float(logdet) if sign > 0 else -math.inf


@register_proxy("params")
class Params(Proxy):
    """The number of trainable parameters, an auxiliary head's left out.

    Each shared tensor counts once; the parameters of the ``auxiliary_head`` attribute (DARTS)
    are excluded, as the spaces' published counts do. Reads no data and runs nothing.
    """

    name = "params"
    needs_data = False
    reference = "A baseline in " + _ABDELFATTAH
    modifies_network = False

    def _score(
        self, network: nn.Module, inputs: torch.Tensor | None, targets: torch.Tensor | None
    ) -> float:
        aux = getattr(network, "auxiliary_head", None)
        skip = {id(p) for p in aux.parameters()} if isinstance(aux, nn.Module) else set()
        return sum(
            p.numel() for p in network.parameters() if p.requires_grad and id(p) not in skip
        )


@register_proxy("flops")
class Flops(ShapeProxy):
    """Forward FLOPs for one image, in evaluation mode (auxiliary heads do not run).

    Counted by :func:`optuna_nas.training.count_flops` (``torch.utils.flop_counter``'s
    formulas): convolutions and matrix products, two FLOPs per multiply-add (the "mult-adds" of
    NAS papers are ``flops / 2``). The network runs as it is, no copy (no gradients, each
    module's mode restored). Only the shape of one image is read.

    Args:
        input_shape: The shape of one image, ``(C, H, W)``, used when no ``inputs`` are given.
    """

    name = "flops"
    reference = "A baseline in " + _ABDELFATTAH
    modifies_network = False

    def _score(
        self, network: nn.Module, inputs: torch.Tensor | None, targets: torch.Tensor | None
    ) -> float:
        return count_flops(network, self.image_shape(inputs))
