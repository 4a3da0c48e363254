"""Aggregate child-training throughput with 1, 2, 4 ... children sharing one device.

``optuna-nas worker`` runs one trial per device; a user with one big GPU may instead start
several workers on it. Separate processes time-slice a GPU, so whether that pays depends on
how much of the GPU one child leaves idle. This script starts K processes at once (a barrier
releases them together), each training the same network through ``lightning.Trainer`` +
``ChildModule`` (``child_training.run_lightning``) on the on-device loader, and reports the
aggregate images/s (the timed images of all children over the span from the first
child's timed start to the last child's end) against
one child alone.

    python benchmarks/concurrent_children.py --device cuda --children 1 2 4 --batch-size 256
    python benchmarks/concurrent_children.py --quick                  # CPU smoke run (~20 s)
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import queue as queue_module
import sys
import time
from typing import Any


def _child(args: argparse.Namespace, barrier: Any, queue: Any) -> None:
    import logging
    import warnings

    import child_training
    import torch

    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    child_args = argparse.Namespace(**vars(args), compile=False)
    child_args.device = device
    torch.manual_seed(0)
    network = child_training.build_network(child_args)
    n = args.batch_size * (args.warmup + args.steps)
    x, y = torch.randn(n, 3, 32, 32), torch.randint(0, 10, (n,))
    loader = child_training.make_loader("device", x, y, child_args)
    barrier.wait()
    rate = child_training.run_lightning(network, loader, child_args)
    end = time.perf_counter()
    # The timed window (after the warm-up steps) ended now and lasted images / rate.
    queue.put((end - args.steps * args.batch_size / rate, end, rate))


def measure(args: argparse.Namespace, children: int) -> dict[str, float]:
    """Run ``children`` processes at once; their aggregate and per-child images/s."""
    context = mp.get_context("spawn")  # CUDA cannot be forked
    barrier = context.Barrier(children)
    queue = context.Queue()
    processes = [
        context.Process(target=_child, args=(args, barrier, queue)) for _ in range(children)
    ]
    for process in processes:
        process.start()
    results: list[tuple[float, float, float]] = []
    while len(results) < children:
        try:
            results.append(queue.get(timeout=1.0))
        except queue_module.Empty:
            crashed = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
            if crashed:  # a crashed child never reports: do not wait for it
                for process in processes:
                    process.kill()
                raise RuntimeError(f"a child exited with {crashed[0]}") from None
    for process in processes:
        process.join()
    first = min(start for start, _, _ in results)
    last = max(end for _, end, _ in results)
    images = children * args.batch_size * args.steps
    return {
        "aggregate": images / (last - first),
        "per_child": sum(rate for _, _, rate in results) / children,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:1 or cpu")
    parser.add_argument("--children", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--model", choices=("nb201", "darts_v2"), default="darts_v2")
    parser.add_argument("--channels", type=int, default=36)
    parser.add_argument("--layers", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=60, help="timed steps per child")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps per child")
    parser.add_argument("--precision", choices=("32", "bf16"), default="bf16")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per child")
    parser.add_argument("--quick", action="store_true", help="tiny CPU run (smoke test)")
    args = parser.parse_args()
    if args.quick:
        args.device, args.children, args.model = "cpu", [1, 2], "nb201"
        args.channels, args.layers, args.batch_size = 8, 1, 16
        args.steps, args.warmup, args.precision = 4, 1, "32"
    # The children import child_training from this folder.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.abspath(__file__)), os.environ.get("PYTHONPATH", "")]
    )
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

    print(
        f"{args.model} C={args.channels} layers={args.layers}, batch {args.batch_size}, "
        f"{args.steps} timed steps per child (+{args.warmup}), precision {args.precision}, "
        f"device {args.device}"
    )
    print("\n| children | aggregate images/s | per child | vs one child |")
    print("|---:|---:|---:|---:|")
    baseline = None
    for children in args.children:
        result = measure(args, children)
        baseline = baseline or result["aggregate"]
        print(
            f"| {children} | {result['aggregate']:.0f} | {result['per_child']:.0f} | "
            f"{result['aggregate'] / baseline:.2f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
