"""Seconds per network of zero-cost scoring, against the straightforward way, in one process.

For random cells of NAS-Bench-201 (C=16, 5 cells per stage, 3x32x32 input: the size of
``proxy_correlation.py``'s table) and of the DARTS space (C=16, 8 cells), each network is
scored two ways, alternating cell by cell on one CPU thread so that both see the same machine
load:

* ``ProxyScorer``: what ``optuna_nas.estimators`` does: one build per cell, the proxies that
  leave the network as it is (``params``, ``flops``) share it, the last one that modifies its
  network (``synflow``) consumes it, and FLOPs are counted without the stock counter's
  per-module tracking.
* baseline: the same build, then each proxy on its own deep copy, and FLOPs with torch's
  ``FlopCounterMode`` as it is (what calling each proxy and the stock counter in turn costs).

Both must give the same scores (checked on every cell). Prints a markdown table (seconds per
cell, the ratio, and the projected minutes for all 15,625 NB201 cells scored by two processes
on two cores, as ``proxy_correlation.py --shard`` does) and writes it to
``<out>/proxy_speed.md``.

Usage (from the repository root)::

    python benchmarks/proxy_speed.py                 # 100 cells per space
    python benchmarks/proxy_speed.py --cells 300 --proxies synflow params flops snip
    python benchmarks/proxy_speed.py --quick         # CI smoke run (tiny networks)
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import copy
from pathlib import Path
import statistics
import time
from typing import Any

import numpy as np


RESULTS_DIR = Path(__file__).resolve().parent / "results"
NB201_CELLS = 15_625
FREE_PROXIES = ("synflow", "params", "flops")


def baseline_score(scorer: Any, arch: Any) -> dict[str, float]:
    """Each proxy on a deep copy of one build, FLOPs by torch's stock ``FlopCounterMode``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    network = scorer.build(arch)
    scores: dict[str, float] = {}
    for proxy in scorer.proxies:
        clone = copy.deepcopy(network)
        if proxy.name == "flops":
            clone.eval()
            counter = FlopCounterMode(display=False)
            with torch.no_grad(), counter:
                clone(torch.zeros((1, scorer.in_channels, *scorer.image_size)))
            scores["flops"] = float(counter.get_total_flops())
        else:
            scores[proxy.name] = proxy(clone, scorer._inputs, scorer._targets)
    return scores


def time_space(
    name: str, build: dict[str, Any], cells: int, proxies: Sequence[str], batch: Any, seed: int
) -> dict[str, Any]:
    from optuna_nas.estimators import ProxyScorer
    from optuna_nas.search_spaces import create_search_space

    space = create_search_space(name)
    scorer = ProxyScorer(
        space,
        proxies=tuple(proxies),
        num_classes=10,
        in_channels=3,
        image_size=32,
        build_kwargs=build,
        batch=batch,
        seed=seed,
    )
    rng = np.random.RandomState(seed)
    archs = [space.sample(rng) for _ in range(cells)]
    scorer.score(archs[0])  # first-call costs (imports, allocator) are not counted
    baseline_score(scorer, archs[0])
    wall: dict[str, list[float]] = {"ours": [], "baseline": []}
    cpu: dict[str, list[float]] = {"ours": [], "baseline": []}
    for i, arch in enumerate(archs):
        # Alternate which goes first: neither always runs on a warm cache.
        runs = [("ours", scorer.score), ("baseline", lambda a: baseline_score(scorer, a))]
        for label, run in runs if i % 2 == 0 else runs[::-1]:
            start, start_cpu = time.perf_counter(), time.process_time()
            scores = run(arch)
            wall[label].append(time.perf_counter() - start)
            cpu[label].append(time.process_time() - start_cpu)
            if label == "ours":
                mine = {k: v for k, v in scores.items() if k != "seconds"}
            else:
                reference = scores
        if mine != reference:
            raise AssertionError(f"{space.to_string(arch)}: {mine} != {reference}")
    return {
        "space": name,
        "build": build,
        "cells": cells,
        "ours": statistics.mean(wall["ours"]),
        "baseline": statistics.mean(wall["baseline"]),
        "ours_cpu": statistics.mean(cpu["ours"]),
        "baseline_cpu": statistics.mean(cpu["baseline"]),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=100, help="random cells per space")
    parser.add_argument("--proxies", nargs="+", default=list(FREE_PROXIES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--quick", action="store_true", help="CI: 6 cells, tiny networks")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from optuna_nas.estimators import create_proxy

    needs_data = any(create_proxy(p).needs_data for p in args.proxies)
    batch = None
    if needs_data:
        g = torch.Generator().manual_seed(args.seed)
        batch = (torch.randn(64, 3, 32, 32, generator=g), torch.randint(0, 10, (64,), generator=g))
    cells = 6 if args.quick else args.cells
    spaces = [
        (
            "nasbench201",
            {"channels": 4 if args.quick else 16, "cells_per_stage": 1 if args.quick else 5},
        ),
        ("darts", {"channels": 4 if args.quick else 16, "layers": 2 if args.quick else 8}),
    ]
    rows = [
        time_space(name, build, cells, args.proxies, batch, args.seed) for name, build in spaces
    ]

    lines = [
        f"Proxies {', '.join(args.proxies)}; {cells} random cells per space, one CPU thread, "
        "build + scoring per cell; the same scores both ways. Wall seconds per cell, and in "
        "parentheses the CPU seconds of this process (what the cell costs on an idle core when "
        "the machine is shared). The projection is for all 15,625 NB201 cells scored by two "
        "processes on two idle cores, from the CPU seconds.",
        "",
        "| space | build | ProxyScorer s/cell | baseline s/cell | speed-up | 15,625 NB201 cells, "
        "2 processes (min) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        build = ", ".join(f"{k}={v}" for k, v in row["build"].items())
        projected = (
            f"{row['ours_cpu'] * NB201_CELLS / 2 / 60:.1f} (baseline "
            f"{row['baseline_cpu'] * NB201_CELLS / 2 / 60:.1f})"
            if row["space"] == "nasbench201"
            else "-"
        )
        lines.append(
            f"| {row['space']} | {build} | {row['ours']:.4f} ({row['ours_cpu']:.4f}) | "
            f"{row['baseline']:.4f} ({row['baseline_cpu']:.4f}) | "
            f"{row['baseline'] / row['ours']:.2f}x | {projected} |"
        )
    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "proxy_speed.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
