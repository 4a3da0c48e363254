"""Child-training throughput: Lightning ``ChildModule`` vs a plain PyTorch loop.

Trains the same network (same initial weights) on the same data with the same optimizer (SGD,
Nesterov momentum 0.9, weight decay 5e-4, per-step cosine schedule), batch size and number of
steps, once through ``lightning.Trainer`` + :class:`optuna_nas.training.ChildModule` and once
through a hand-written loop, each with a ``DataLoader`` over an in-memory ``TensorDataset`` and
with the on-device :class:`optuna_nas.training.DeviceTensorLoader`. Warm-up steps are excluded
from the timing; each configuration is repeated (interleaved) and the median is reported.

The data are random CIFAR-shaped tensors (3x32x32, 10 classes): only throughput is measured.

    python benchmarks/child_training.py                      # CPU-sized defaults (< 2 min)
    python benchmarks/child_training.py --device cuda        # DARTS_V2, C=36, 20 cells
    python benchmarks/child_training.py --device cuda --model nb201 --compile
"""

from __future__ import annotations

import argparse
import copy
import logging
import statistics
import time
from typing import Any
import warnings

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader
from torch.utils.data import TensorDataset

from optuna_nas.search_spaces import DARTS_V2
from optuna_nas.search_spaces import create_search_space
from optuna_nas.training import ChildModule
from optuna_nas.training import DeviceTensorLoader


# One string, split before the cell's third node (line length).
NB201_CELL = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+"
    "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
)


_CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = time.perf_counter


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build_network(args: argparse.Namespace) -> nn.Module:
    if args.model == "nb201":
        space = create_search_space("nasbench201")
        return space.build(
            space.from_string(NB201_CELL),
            num_classes=10,
            channels=args.channels,
            cells_per_stage=args.layers,
        )
    space = create_search_space("darts")
    return space.build(DARTS_V2, num_classes=10, channels=args.channels, layers=args.layers)


def make_loader(kind: str, x: torch.Tensor, y: torch.Tensor, args: argparse.Namespace) -> Any:
    if kind == "device":
        return DeviceTensorLoader(
            x.to(args.device), y.to(args.device), batch_size=args.batch_size, shuffle=True
        )
    return DataLoader(
        TensorDataset(x, y),
        batch_size=args.batch_size,
        shuffle=True,
        pin_memory=args.device.type == "cuda",
        generator=torch.Generator().manual_seed(0),
    )


def _autocast(args: argparse.Namespace) -> Any:
    return torch.autocast(
        device_type=args.device.type, dtype=torch.bfloat16, enabled=args.precision == "bf16"
    )


def run_plain(network: nn.Module, loader: Any, args: argparse.Namespace) -> float:
    """The reference: a hand-written training loop. Returns images per second."""
    device = args.device
    network = network.to(device).train()
    model = torch.compile(network) if args.compile else network
    total = args.warmup + args.steps
    optimizer = torch.optim.SGD(
        network.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    step, start = 0, 0.0
    while step < total:
        for x, y in loader:
            if step == args.warmup:
                _sync(device)
                start = _clock()
            x = x.to(device, non_blocking=True)
            y = y.to(device, non_blocking=True)
            with _autocast(args):
                loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            if step == total:
                break
    _sync(device)
    return args.steps * args.batch_size / (_clock() - start)


class _Timer(pl.Callback):
    def __init__(self, warmup: int, device: torch.device) -> None:
        self.warmup, self.device = warmup, device
        self.start = self.end = 0.0

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.global_step == self.warmup and not self.start:
            _sync(self.device)
            self.start = _clock()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        _sync(self.device)
        self.end = _clock()


def run_lightning(network: nn.Module, loader: Any, args: argparse.Namespace) -> float:
    """The same training through Trainer + ChildModule. Returns images per second."""
    model = torch.compile(network) if args.compile else network
    module = ChildModule(network=model, num_classes=10, lr=0.1)  # type: ignore[arg-type]
    timer = _Timer(args.warmup, args.device)
    trainer = pl.Trainer(
        accelerator=args.device.type,
        devices=1,
        max_steps=args.warmup + args.steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        precision="bf16-mixed" if args.precision == "bf16" else "32-true",
        benchmark=args.device.type == "cuda",
        callbacks=[timer],
    )
    trainer.fit(module, train_dataloaders=loader)
    return args.steps * args.batch_size / (timer.end - timer.start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=("nb201", "darts_v2"), default=None)
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps per run")
    parser.add_argument("--channels", type=int, default=None, help="C of the network")
    parser.add_argument("--layers", type=int, default=None, help="cells (nb201: per stage)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per configuration")
    parser.add_argument("--precision", choices=("32", "bf16"), default="32")
    parser.add_argument("--compile", action="store_true", help="torch.compile the network")
    parser.add_argument(
        "--clock",
        choices=tuple(_CLOCKS),
        default="wall",
        help="wall time, or this process's CPU time (steadier on a shared CPU; 1 thread only)",
    )
    parser.add_argument(
        "--loaders", nargs="+", choices=("dataloader", "device"), default=["dataloader", "device"]
    )
    args = parser.parse_args()
    global _clock
    _clock = _CLOCKS[args.clock]
    # Keep the table readable: no per-fit banners from Lightning.
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*no `val_dataloader`.*")
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    args.device = torch.device(args.device)
    cuda = args.device.type == "cuda"
    # CPU defaults keep a run under 2 minutes on 2 cores; CUDA defaults are the DARTS setting.
    defaults = {
        "model": "darts_v2" if cuda else "nb201",
        "batch_size": 96 if cuda else 32,
        "steps": 100 if cuda else 20,
        "warmup": 20 if cuda else 3,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    model_defaults = {"darts_v2": (36, 20), "nb201": (16, 5) if cuda else (16, 1)}
    channels, layers = model_defaults[args.model]
    args.channels = args.channels or channels
    args.layers = args.layers or layers
    if cuda:
        torch.backends.cudnn.benchmark = True

    torch.manual_seed(0)
    reference = build_network(args)
    n_params = sum(p.numel() for p in reference.parameters())
    n = args.batch_size * (args.warmup + args.steps)
    x = torch.randn(n, 3, 32, 32)
    y = torch.randint(0, 10, (n,))
    print(
        f"{args.model} C={args.channels} layers={args.layers} ({n_params / 1e6:.3f}M params), "
        f"device={args.device}, batch={args.batch_size}, steps={args.steps} (+{args.warmup} "
        f"warm-up), precision={args.precision}, compile={args.compile}, "
        f"threads={torch.get_num_threads()}, repeats={args.repeats}, clock={args.clock}"
    )

    runners = {"plain PyTorch": run_plain, "Lightning ChildModule": run_lightning}
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.repeats):
        for loader_kind in args.loaders:
            for name, runner in runners.items():
                network = copy.deepcopy(reference)
                loader = make_loader(loader_kind, x, y, args)
                results.setdefault((loader_kind, name), []).append(runner(network, loader, args))

    print(f"\n{'loader':<12} {'training':<24} {'images/s (median)':>18} {'runs':>30}")
    for (loader_kind, name), values in results.items():
        runs = " ".join(f"{v:.0f}" for v in values)
        print(f"{loader_kind:<12} {name:<24} {statistics.median(values):>18.1f} {runs:>30}")
    print()
    for loader_kind in args.loaders:
        plain = statistics.median(results[(loader_kind, "plain PyTorch")])
        lightning = statistics.median(results[(loader_kind, "Lightning ChildModule")])
        print(f"Lightning / plain ({loader_kind}): {lightning / plain:.3f}  (target >= 0.95)")
    if len(args.loaders) == 2:
        for name in runners:
            dl = statistics.median(results[("dataloader", name)])
            dev = statistics.median(results[("device", name)])
            print(f"device-resident / DataLoader ({name}): {dev / dl:.3f}")


if __name__ == "__main__":
    main()
