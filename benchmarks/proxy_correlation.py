"""Rank correlation of zero-cost proxies with NAS-Bench-201 and NAS-Bench-301 accuracies.

Three parts, each scored into a CSV cache (``arch``, one column per proxy, ``seconds``; NB301
also ``accuracy``) that later calls reuse, so an interrupted or sharded run resumes where it
stopped:

* ``free``: the data-free proxies ``synflow``, ``params``, ``flops`` on NB201 cells (all 15,625
  by default) at the benchmark's size (C=16, 5 cells per stage, 3x32x32 input, 10 classes),
  against the table's CIFAR-10 test accuracy.
* ``data``: the data-dependent proxies ``snip``, ``grad_norm``, ``grasp``, ``fisher``,
  ``jacob_cov``, ``naswot`` on a seeded random subset of NB201 cells, with ONE batch of the
  embedded MNIST digits (``optuna_nas.training.EmbeddedDataModule``, resized to 32x32 and
  replicated to 3 channels; the paper used one CIFAR-10 batch). The data-free proxies and
  the rank vote of synflow + jacob_cov + snip (Abdelfattah et al.) on the same subset too.
* ``nb301``: the data-free proxies on random DARTS cells (C=16, 8 cells by default) against the
  NAS-Bench-301 surrogate's predicted accuracy after 98 epochs (needs ``yahpo-gym``).

Every network is built with ``ProxyScorer``'s initialisation derived from its architecture
string, so scores do not depend on the order, the shard or the process.

Outputs: a markdown table (ours next to the published Spearman numbers) on stdout and in
``<out>/proxy_correlation.md``; the caches stay in ``<cache>`` (default
``<out>/proxy_cache``; ``benchmarks/results/`` is not committed).

Usage (from the repository root)::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/proxy_correlation.py        # everything
    # the 15,625 data-free cells on two cores, then the report from the merged caches:
    python benchmarks/proxy_correlation.py --parts free --shard 0/2 --no-report &
    python benchmarks/proxy_correlation.py --parts free --shard 1/2 --no-report &
    wait; python benchmarks/proxy_correlation.py --parts free data nb301
    python benchmarks/proxy_correlation.py --n-data 300 --n-nb301 300       # smaller subsets
    python benchmarks/proxy_correlation.py --report-only                    # caches as they are
    python benchmarks/proxy_correlation.py --quick                          # CI, seconds
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from collections.abc import Sequence
import csv
import math
import os
from pathlib import Path
import sys
import time
from typing import Any

from _common import data_dir
import numpy as np


RESULTS_DIR = Path(__file__).resolve().parent / "results"
FREE_PROXIES = ("synflow", "params", "flops")
DATA_PROXIES = ("snip", "grad_norm", "grasp", "fisher", "jacob_cov", "naswot")
VOTE = ("synflow", "jacob_cov", "snip")
PARTS = ("free", "data", "nb301")
# Spearman rho on NB201 CIFAR-10, all 15,625 cells (Abdelfattah et al., ICLR 2021; params:
# about 0.7, as ZiCo, ICLR 2023, reports). See DESIGN.md section 10.
PUBLISHED_NB201 = {
    "synflow": "0.74",
    "jacob_cov": "0.73",
    "grad_norm": "0.58",
    "snip": "0.58",
    "grasp": "0.48",
    "fisher": "0.36",
    "params": "~0.7",
}


# ------------------------------------------------------------------------------ caches
def cache_stem(part: str, args: argparse.Namespace) -> str:
    """The cache file stem of a part with these settings (shards add a suffix)."""
    if part == "free":
        return f"nb201_free_C{args.channels}_N{args.cells_per_stage}"
    if part == "data":
        return f"nb201_data_C{args.channels}_N{args.cells_per_stage}_mnist_b{args.batch_size}"
    return f"nb301_free_C{args.nb301_channels}_L{args.nb301_layers}"


def read_cache(folder: Path, stem: str) -> dict[str, dict[str, float]]:
    """All rows of ``<folder>/<stem>*.csv`` (the unsharded file and every shard), by arch."""
    rows: dict[str, dict[str, float]] = {}
    for path in sorted(folder.glob(f"{stem}*.csv")):
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                arch = row.pop("arch")
                try:
                    rows[arch] = {k: float(v) for k, v in row.items()}
                except (TypeError, ValueError):
                    continue  # a line cut short by an interrupted run
    return rows


class CacheWriter:
    """Appends one scored architecture per line (flushed), writing the header once."""

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.is_file() or path.stat().st_size == 0
        self._file = open(path, "a", newline="")
        self._writer = csv.writer(self._file)
        self._columns = list(columns)
        if new:
            self._writer.writerow(["arch", *self._columns])

    def write(self, arch: str, values: dict[str, float]) -> None:
        self._writer.writerow([arch, *(repr(float(values[c])) for c in self._columns)])
        self._file.flush()

    def close(self) -> None:
        self._file.close()


# ------------------------------------------------------------------------------ scoring
def embedded_batch(batch_size: int, image_size: int = 32) -> tuple[Any, Any]:
    """One training batch of the embedded MNIST digits, 3 channels of ``image_size``^2."""
    from optuna_nas.training import EmbeddedDataModule

    dm = EmbeddedDataModule(dataset="mnist", batch_size=batch_size, image_size=image_size)
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    return x.repeat(1, 3, 1, 1).contiguous(), y


def score_into_cache(
    scorer: Any,
    archs: Sequence[Any],
    space: Any,
    writer: CacheWriter,
    done: set[str],
    *,
    deadline: float,
    label: str,
    extra: Any = None,
) -> int:
    """Score the archs not in ``done`` until ``deadline``; returns how many were scored."""
    todo = [a for a in archs if space.to_string(a) not in done]
    start = time.perf_counter()
    n = 0
    for arch in todo:
        if time.perf_counter() > deadline:
            print(f"  {label}: time limit reached, {len(todo) - n} cells left", file=sys.stderr)
            break
        values = scorer.score(arch)
        if extra is not None:
            values.update(extra(arch))
        writer.write(space.to_string(arch), values)
        n += 1
        if n % 200 == 0:
            rate = (time.perf_counter() - start) / n
            print(
                f"  {label}: {n}/{len(todo)} cells, {rate:.3f} s/cell, "
                f"{rate * (len(todo) - n) / 60:.1f} min left",
                file=sys.stderr,
            )
    return n


def shard_of(items: Sequence[Any], shard: tuple[int, int]) -> list[Any]:
    k, n = shard
    return [x for i, x in enumerate(items) if i % n == k]


# ------------------------------------------------------------------------------ reporting
def correlations(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """(Spearman rho, Kendall tau) over the pairs where both are finite."""
    from scipy.stats import kendalltau
    from scipy.stats import spearmanr

    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return math.nan, math.nan
    return float(spearmanr(a[ok], b[ok])[0]), float(kendalltau(a[ok], b[ok])[0])


def _f(v: float) -> str:
    return "n/a" if math.isnan(v) else f"{v:.3f}"


def table(
    title: str,
    names: Sequence[str],
    values: Mapping[str, Sequence[float]],
    accuracy: Sequence[float],
    *,
    published: Mapping[str, str] | None,
) -> list[str]:
    head = "| proxy | Spearman | Kendall |"
    sep = "|---|---:|---:|"
    if published is not None:
        head += " published Spearman |"
        sep += "---:|"
    lines = ["", title, "", head, sep]
    for name in names:
        rho, tau = correlations(values[name], accuracy)
        row = f"| {name} | {_f(rho)} | {_f(tau)} |"
        if published is not None:
            row += f" {published.get(name, '-')} |"
        lines.append(row)
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="folder holding nasbench201/, ...301/")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="default benchmarks/results")
    parser.add_argument(
        "--cache", type=Path, default=None, help="score caches (default <out>/proxy_cache)"
    )
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=None, help="default: all")
    parser.add_argument(
        "--n-free", type=int, default=None, help="NB201 cells of 'free' (default all 15,625)"
    )
    parser.add_argument("--n-data", type=int, default=None, help="NB201 cells of 'data' (1000)")
    parser.add_argument("--n-nb301", type=int, default=None, help="DARTS cells of 'nb301' (1000)")
    parser.add_argument("--channels", type=int, default=None, help="NB201 C (16)")
    parser.add_argument("--cells-per-stage", type=int, default=None, help="NB201 N (5)")
    parser.add_argument("--nb301-channels", type=int, default=None, help="DARTS C (16)")
    parser.add_argument("--nb301-layers", type=int, default=None, help="DARTS cells (8)")
    parser.add_argument("--batch-size", type=int, default=64, help="batch of 'data' (64)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the subsets and inits")
    parser.add_argument(
        "--shard", default="0/1", help="K/N: score only every N-th cell from the K-th"
    )
    parser.add_argument(
        "--max-minutes", type=float, default=None, help="stop scoring after this; report cache"
    )
    parser.add_argument("--report-only", action="store_true", help="score nothing")
    parser.add_argument("--no-report", action="store_true", help="score only (for shards)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="CI smoke run: 20 cells per part, C=4, 1 cell per stage, DARTS C=4 with 2 cells",
    )
    args = parser.parse_args(argv)

    q = args.quick
    parts = args.parts or list(PARTS)
    args.channels = args.channels or (4 if q else 16)
    args.cells_per_stage = args.cells_per_stage or (1 if q else 5)
    args.nb301_channels = args.nb301_channels or (4 if q else 16)
    args.nb301_layers = args.nb301_layers or (2 if q else 8)
    n_data = args.n_data if args.n_data is not None else (20 if q else 1000)
    n_nb301 = args.n_nb301 if args.n_nb301 is not None else (20 if q else 1000)
    try:
        k, n = (int(v) for v in args.shard.split("/"))
        if not 0 <= k < n:
            raise ValueError
    except ValueError:
        parser.error(f"--shard must be K/N with 0 <= K < N, got {args.shard!r}")
    cache_dir = args.cache or (args.out / "proxy_cache")
    suffix = "" if n == 1 else f".shard{k}of{n}"
    deadline = time.perf_counter() + (
        60 * args.max_minutes if args.max_minutes is not None else math.inf
    )

    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
    from optuna_nas.benchmarks import NB201Benchmark
    from optuna_nas.estimators import ProxyScorer
    from optuna_nas.estimators import vote

    root = data_dir(args.data_dir)
    bench = NB201Benchmark.load(root, hardware=False)
    space = bench.space
    order = np.random.default_rng(args.seed).permutation(len(bench))
    n_free = args.n_free if args.n_free is not None else (20 if q else len(bench))
    free_archs = [bench.archs[i] for i in sorted(order[:n_free])]
    data_archs = [bench.archs[i] for i in sorted(order[:n_data])]
    nb201_build = {"channels": args.channels, "cells_per_stage": args.cells_per_stage}
    sizes: dict[str, Any] = {"num_classes": 10, "in_channels": 3, "image_size": 32}

    # -------------------------------------------------------------- scoring
    if not args.report_only:
        if "free" in parts:
            stem = cache_stem("free", args)
            scorer = ProxyScorer(
                space, proxies=FREE_PROXIES, build_kwargs=nb201_build, seed=args.seed, **sizes
            )
            writer = CacheWriter(cache_dir / f"{stem}{suffix}.csv", [*FREE_PROXIES, "seconds"])
            score_into_cache(
                scorer,
                [space.from_string(a) for a in shard_of(free_archs, (k, n))],
                space,
                writer,
                set(read_cache(cache_dir, stem)),
                deadline=deadline,
                label="NB201 data-free",
            )
            writer.close()
        if "data" in parts:
            stem = cache_stem("data", args)
            scorer = ProxyScorer(
                space,
                proxies=DATA_PROXIES,
                build_kwargs=nb201_build,
                batch=embedded_batch(args.batch_size),
                seed=args.seed,
                **sizes,
            )
            writer = CacheWriter(cache_dir / f"{stem}{suffix}.csv", [*DATA_PROXIES, "seconds"])
            score_into_cache(
                scorer,
                [space.from_string(a) for a in shard_of(data_archs, (k, n))],
                space,
                writer,
                set(read_cache(cache_dir, stem)),
                deadline=deadline,
                label="NB201 data-dependent",
            )
            writer.close()
        if "nb301" in parts:
            from optuna_nas.benchmarks import NB301Benchmark
            from optuna_nas.search_spaces import DartsSearchSpace

            stem = cache_stem("nb301", args)
            darts = DartsSearchSpace()
            rng = np.random.RandomState(args.seed)
            genotypes = [darts.sample(rng) for _ in range(n_nb301)]
            nb301 = NB301Benchmark.load(root)
            scorer = ProxyScorer(
                darts,
                proxies=FREE_PROXIES,
                build_kwargs={"channels": args.nb301_channels, "layers": args.nb301_layers},
                seed=args.seed,
                **sizes,
            )
            writer = CacheWriter(
                cache_dir / f"{stem}{suffix}.csv", [*FREE_PROXIES, "seconds", "accuracy"]
            )
            score_into_cache(
                scorer,
                shard_of(genotypes, (k, n)),
                darts,
                writer,
                set(read_cache(cache_dir, stem)),
                deadline=deadline,
                label="NB301 data-free",
                extra=lambda g: {"accuracy": nb301.accuracy(g)},
            )
            writer.close()
    if args.no_report:
        return 0

    # -------------------------------------------------------------- report
    lines = [
        "## Zero-cost proxies: rank correlation with the true accuracy",
        "",
        f"NB201 networks: C={args.channels}, {args.cells_per_stage} cells per stage, 3x32x32 "
        f"input, 10 classes; accuracy = the NB201 CIFAR-10 test accuracy (200 epochs). One "
        f"initialisation per cell (ProxyScorer, seed {args.seed}); seconds = building and "
        f"scoring one network on one CPU thread (torch {torch.__version__}).",
    ]
    if "free" in parts:
        rows = read_cache(cache_dir, cache_stem("free", args))
        archs = [a for a in free_archs if a in rows]
        if archs:
            acc = [bench.accuracy(a) for a in archs]
            values = {p: [rows[a][p] for a in archs] for p in FREE_PROXIES}
            sec = float(np.mean([rows[a]["seconds"] for a in archs]))
            if len(archs) == len(bench):
                whole = f"all {len(bench)} cells"
            else:
                whole = f"a seeded random {len(free_archs)} of {len(bench)} cells"
                if len(archs) < len(free_archs):
                    whole = f"{len(archs)} scored so far of {whole}"
            lines += table(
                f"### NB201 CIFAR-10, data-free proxies, {whole}",
                FREE_PROXIES,
                values,
                acc,
                published=PUBLISHED_NB201,
            )
            lines += [
                "",
                f"Seconds per cell (the three proxies together, mean): {sec:.3f}; all "
                f"{len(bench)} cells: {sec * len(bench) / 60:.1f} min on one core, "
                f"{sec * len(bench) / 120:.1f} min on two.",
            ]
    if "data" in parts:
        rows = read_cache(cache_dir, cache_stem("data", args))
        free_rows = read_cache(cache_dir, cache_stem("free", args))
        archs = [a for a in data_archs if a in rows and a in free_rows]
        if archs:
            merged = [{**free_rows[a], **rows[a]} for a in archs]
            names = [*DATA_PROXIES, *FREE_PROXIES, "vote"]
            values = {p: [m[p] for m in merged] for p in (*DATA_PROXIES, *FREE_PROXIES)}
            values["vote"] = vote(merged, VOTE)
            acc = [bench.accuracy(a) for a in archs]
            sec = float(np.mean([rows[a]["seconds"] for a in archs]))
            lines += table(
                f"### NB201 CIFAR-10, all proxies, {len(archs)} cells (of a seeded random "
                f"{len(data_archs)} of {len(bench)}); data-dependent ones on one batch of "
                f"{args.batch_size} embedded MNIST digits (32x32, 3 channels; the paper used "
                "one CIFAR-10 batch)",
                names,
                values,
                acc,
                published={**PUBLISHED_NB201, "vote": "-"},
            )
            lines += [
                "",
                f"vote = mean rank of {' + '.join(VOTE)} (optuna_nas.estimators.vote). Seconds "
                f"per cell, the six data-dependent proxies together: {sec:.3f}.",
            ]
        elif "free" not in parts or not free_rows:
            lines += ["", "(data part: run the free part on the same cells first)"]
    if "nb301" in parts:
        rows = read_cache(cache_dir, cache_stem("nb301", args))
        if rows:
            archs = list(rows)
            values = {p: [rows[a][p] for a in archs] for p in FREE_PROXIES}
            acc = [rows[a]["accuracy"] for a in archs]
            sec = float(np.mean([rows[a]["seconds"] for a in archs]))
            lines += table(
                f"### NB301 (DARTS space), data-free proxies, {len(archs)} random cells "
                f"(C={args.nb301_channels}, {args.nb301_layers} cells) against the surrogate's "
                "CIFAR-10 validation accuracy at epoch 98",
                FREE_PROXIES,
                values,
                acc,
                published=None,
            )
            lines += [
                "",
                f"Seconds per cell (the three proxies together): {sec:.3f}; surrogate accuracies "
                f"span {min(acc):.2f} to {max(acc):.2f}.",
            ]
    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "proxy_correlation.md").write_text(text + "\n")
    print(f"\nWrote {args.out / 'proxy_correlation.md'}; caches in {cache_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
