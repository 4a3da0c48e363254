"""Tables, CSV files and the plot of ``benchmarks/pruning.py``."""

from __future__ import annotations

from collections.abc import Sequence
import csv
from dataclasses import asdict
import math
from pathlib import Path
import sys
import time
from typing import Any

from _pruning_study import BUDGET_FRACTIONS
from _pruning_study import BUDGET_TRIAL_FACTOR
from _pruning_study import CHECKPOINT_FRACTIONS
from _pruning_study import PREDICTABILITY_SKIP
from _pruning_study import TOP_KS
from _pruning_study import Result
import numpy as np


def summary_table(results: Sequence[Result], scale: float) -> list[dict[str, Any]]:
    """Per (part, sampler, pruner): means over seeds, paired with the unpruned run."""
    base = {(r.part, r.sampler, r.seed): r for r in results if r.pruner == "none"}
    rows = []
    keys = sorted({(r.part, r.sampler) for r in results})
    for part, sampler in keys:
        pruner_names = list(dict.fromkeys(r.pruner for r in results if r.sampler == sampler))
        for pruner in pruner_names:
            rs = [r for r in results if (r.part, r.sampler, r.pruner) == (part, sampler, pruner)]
            paired = [
                (r, base[(part, sampler, r.seed)]) for r in rs if (part, sampler, r.seed) in base
            ]
            deltas = np.array([scale * (r.best - b.best) for r, b in paired])
            ratio = np.array([r.epochs / b.epochs for r, b in paired])
            rows.append(
                {
                    "part": part,
                    "sampler": sampler,
                    "pruner": pruner,
                    "seeds": len(rs),
                    "epochs": float(np.mean([r.epochs for r in rs])),
                    "epochs_fraction": float(ratio.mean()) if ratio.size else math.nan,
                    "saving_x": float(1.0 / ratio.mean()) if ratio.size else math.nan,
                    "best": float(scale * np.nanmean([r.best for r in rs])),
                    "delta_mean": float(deltas.mean()) if deltas.size else math.nan,
                    "delta_se": (
                        float(deltas.std(ddof=1) / math.sqrt(deltas.size))
                        if deltas.size > 1
                        else math.nan
                    ),
                    "delta_worst": float(deltas.min()) if deltas.size else math.nan,
                    "completed": float(np.mean([r.n_complete for r in rs])),
                    "wall_s": float(np.mean([r.wall_s for r in rs])),
                }
            )
    return rows


def budget_table(results: Sequence[Result]) -> list[dict[str, Any]]:
    """Equal compute: pruned studies run on until they trained the unpruned study's epochs."""
    base = {(r.sampler, r.seed): r for r in results if r.part == "nb301" and r.pruner == "none"}
    rows = []
    budget = [r for r in results if r.part == "nb301-budget"]
    for sampler, pruner in dict.fromkeys((r.sampler, r.pruner) for r in budget):
        paired = [
            (r, base[(sampler, r.seed)])
            for r in budget
            if (r.sampler, r.pruner) == (sampler, pruner) and (sampler, r.seed) in base
        ]
        if not paired:
            continue
        row: dict[str, Any] = {"sampler": sampler, "pruner": pruner, "seeds": len(paired)}
        for i, fraction in enumerate(BUDGET_FRACTIONS):
            deltas = np.array([r.best_within[i] - b.best for r, b in paired])
            # NaN: no trial completed within that budget (counted, not averaged).
            finite = deltas[np.isfinite(deltas)]
            row[f"delta_at_{fraction:.2f}"] = float(finite.mean()) if finite.size else math.nan
            row[f"se_at_{fraction:.2f}"] = (
                float(finite.std(ddof=1) / math.sqrt(finite.size)) if finite.size > 1 else math.nan
            )
            row[f"none_completed_at_{fraction:.2f}"] = int(deltas.size - finite.size)
        row["trials"] = float(np.mean([r.n_trials for r, _ in paired]))
        rows.append(row)
    return rows


def print_budget_table(rows: Sequence[dict[str, Any]]) -> None:
    print(
        "\nEqual compute (--equal-budget): pruned studies run on (up to "
        f"{BUDGET_TRIAL_FACTOR}x the trials) until they trained as many epochs as the unpruned "
        "one; delta = their best final accuracy within the given share of those epochs minus the "
        "unpruned study's best (pp, mean +- s.e.)."
    )
    shares = "".join(f"{f'{f:.2f}x epochs':>18s}" for f in BUDGET_FRACTIONS)
    header = f"{'sampler':9s} {'pruner':20s} {'seeds':>5s}{shares} {'trials':>7s}"
    print(header)
    print("-" * len(header))
    for r in rows:
        cells = "".join(
            f"{r[f'delta_at_{f:.2f}']:+9.3f} +- {r[f'se_at_{f:.2f}']:.3f}"
            for f in BUDGET_FRACTIONS
        )
        print(f"{r['sampler']:9s} {r['pruner']:20s} {r['seeds']:5d}{cells} {r['trials']:7.1f}")


def predictability_table(results: Sequence[Result]) -> list[dict[str, Any]]:
    """Per (part, sampler): the unpruned studies' `predictability`, averaged over seeds."""
    rows = []
    for part, sampler in sorted({(r.part, r.sampler) for r in results if r.rank_corr}):
        rs = [r for r in results if (r.part, r.sampler) == (part, sampler) and r.rank_corr]
        corr = np.nanmean([r.rank_corr for r in rs], axis=0)
        shares = np.nanmean([r.top_k_share for r in rs], axis=0)
        epochs = float(np.mean([r.epochs / r.n_trials for r in rs]))  # epochs of a full trial
        row: dict[str, Any] = {"part": part, "sampler": sampler, "seeds": len(rs)}
        for fraction, rho in zip(CHECKPOINT_FRACTIONS, corr):
            row[f"rank_corr_at_{fraction:.2f}"] = float(rho)
        for k, share in zip(TOP_KS, shares):
            row[f"top{k}_share"] = float(share)
            # The share trains to the end, every other trial one epoch: the most a top-k rule
            # (even one knowing the final values) can save.
            row[f"top{k}_max_saving_x"] = float(epochs / (share * epochs + (1 - share)))
        rows.append(row)
    return rows


def print_predictability_table(rows: Sequence[dict[str, Any]]) -> None:
    print(
        "\nPredictability (unpruned studies, mean over seeds): Spearman correlation, among a "
        f"study's trials from number {PREDICTABILITY_SKIP} on, of the value after a share of "
        "the epochs with the final value; share of trials whose final value enters the running "
        "top-k, and the most a rule pruning only trials that cannot join the top-k can save."
    )
    checkpoints = "".join(f"{f'{f:.0%}':>6s}" for f in CHECKPOINT_FRACTIONS)
    tops = "".join(f"{f'top-{k} (max x)':>16s}" for k in TOP_KS)
    header = f"{'part':18s} {'sampler':9s} {'seeds':>5s}{checkpoints}{tops}"
    print(header)
    print("-" * len(header))
    for r in rows:
        corr = "".join(f"{r[f'rank_corr_at_{f:.2f}']:6.2f}" for f in CHECKPOINT_FRACTIONS)
        share = "".join(
            f"{r[f'top{k}_share']:8.3f} ({r[f'top{k}_max_saving_x']:4.1f}x)" for k in TOP_KS
        )
        print(f"{r['part']:18s} {r['sampler']:9s} {r['seeds']:5d}{corr}{share}")


def print_table(rows: Sequence[dict[str, Any]]) -> None:
    header = (
        f"{'part':18s} {'sampler':9s} {'pruner':34s} {'seeds':>5s} {'epochs':>8s} "
        f"{'saving':>7s} {'best %':>7s} {'delta pp':>16s} {'worst':>7s} {'done':>5s}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['part']:18s} {r['sampler']:9s} {r['pruner']:34s} {r['seeds']:5d} "
            f"{r['epochs']:8.0f} {r['saving_x']:6.2f}x {r['best']:7.3f} "
            f"{r['delta_mean']:+8.3f} +- {r['delta_se']:.3f} {r['delta_worst']:+7.3f} "
            f"{r['completed']:5.1f}"
        )


#: Pruners LearningCurvePruner must not be dominated by (the issue's list), by name prefix.
BASELINES = ("median", "percentile", "hyperband", "successive_halving")
OURS = "learning_curve"


def dominance(
    rows: Sequence[dict[str, Any]],
    ours: str = OURS,
    baselines: Sequence[str] = BASELINES,
) -> list[dict[str, Any]]:
    """Per (part, sampler) and baseline setting: does the baseline dominate ``ours``?

    A point is (saving, loss) with saving = ``saving_x`` (larger is better) and loss =
    ``-delta_mean`` (points of best value lost, smaller is better). The baseline *dominates*
    when it saves at least as much at no more loss, one of them strictly; ``ours`` dominates
    it symmetrically; otherwise the two are a trade-off. Means over seeds are compared as
    they are (their standard errors are in the table).
    """
    out = []
    for part, sampler in dict.fromkeys((r["part"], r["sampler"]) for r in rows):
        panel = {r["pruner"]: r for r in rows if (r["part"], r["sampler"]) == (part, sampler)}
        if ours not in panel:
            continue
        mine = panel[ours]
        s_o, l_o = mine["saving_x"], -mine["delta_mean"]
        for name, r in panel.items():
            if name.split(":")[0] not in baselines:
                continue
            s_b, l_b = r["saving_x"], -r["delta_mean"]
            if s_b >= s_o and l_b <= l_o and (s_b > s_o or l_b < l_o):
                verdict = "dominated"
            elif s_o >= s_b and l_o <= l_b:
                verdict = "dominates"
            else:
                verdict = "trade-off"
            out.append(
                {
                    "part": part,
                    "sampler": sampler,
                    "baseline": name,
                    "baseline_saving_x": s_b,
                    "baseline_loss": l_b,
                    "ours_saving_x": s_o,
                    "ours_loss": l_o,
                    "verdict": verdict,
                }
            )
    return out


def print_dominance(rows: Sequence[dict[str, Any]]) -> None:
    print(
        f"\nNon-dominance of {OURS} (saving x, loss pp = -delta): 'dominated' = the baseline "
        "saves at least as much at no more loss."
    )
    for part, sampler in dict.fromkeys((r["part"], r["sampler"]) for r in rows):
        panel = [r for r in rows if (r["part"], r["sampler"]) == (part, sampler)]
        bad = [r["baseline"] for r in panel if r["verdict"] == "dominated"]
        verdict = "DOMINATED by " + ", ".join(bad) if bad else "not dominated"
        mine = panel[0]
        cells = ", ".join(
            f"{r['baseline']} {r['baseline_saving_x']:.2f}x/{r['baseline_loss']:+.3f}"
            f" ({r['verdict']})"
            for r in panel
        )
        print(
            f"{part:18s} {sampler:9s} ours {mine['ours_saving_x']:.2f}x/"
            f"{mine['ours_loss']:+.3f}: {verdict}  [{cells}]"
        )


COLORS = {
    "none": "black",
    "median": "tab:blue",
    "percentile": "tab:cyan",
    "successive_halving": "tab:green",
    "hyperband": "tab:orange",
    "learning_curve": "tab:red",
    "learning_curve (best_so_far)": "tab:purple",
    "oracle": "grey",
}


def plot(rows: Sequence[dict[str, Any]], out: Path) -> list[Path]:
    """One figure per part (family), one panel per sampler: ``out/pruning_<part>.png``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot.", file=sys.stderr)
        return []

    def family(name: str) -> str:
        if name.startswith("learning_curve:best_so_far"):
            return "learning_curve (best_so_far)"
        return name.split(":")[0]

    paths = []
    for part in dict.fromkeys(r["part"] for r in rows):
        samplers = sorted({r["sampler"] for r in rows if r["part"] == part})
        fig, axes = plt.subplots(1, len(samplers), figsize=(6 * len(samplers), 4.5), squeeze=False)
        for ax, sampler in zip(axes[0], samplers):
            panel = [r for r in rows if (r["part"], r["sampler"]) == (part, sampler)]
            for name, color in COLORS.items():
                pts = [r for r in panel if family(r["pruner"]) == name]
                pts.sort(key=lambda r: r["epochs_fraction"])
                if not pts:
                    continue
                x = [r["epochs_fraction"] for r in pts]
                y = [-r["delta_mean"] for r in pts]
                err = [r["delta_se"] for r in pts]
                ls = "-" if name.startswith(("learning_curve", "oracle")) else "none"
                ax.errorbar(x, y, yerr=err, color=color, marker="o", label=name, capsize=3, ls=ls)
                for r in pts:
                    if r["pruner"] != "none":
                        setting = r["pruner"].partition(":")[2] or "default"
                        ax.annotate(
                            setting.replace("best_so_far,", ""),
                            (r["epochs_fraction"], -r["delta_mean"]),
                            fontsize=7,
                            color=color,
                            xytext=(3, 3),
                            textcoords="offset points",
                        )
            ax.axhline(0.1, color="grey", lw=0.8, ls="--")
            ax.axvline(1 / 3, color="grey", lw=0.8, ls=":")
            ax.set_xlabel("epochs trained / epochs without pruning")
            ax.set_ylabel("regret vs no pruning (points of best value)")
            ax.set_title(f"{part}, {sampler} sampler ({panel[0]['seeds']} seeds)")
            ax.set_xlim(0, 1.05)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.tight_layout()
        path = out / f"pruning_{part}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def report(
    results: Sequence[Result],
    out: Path,
    notes: Sequence[str],
    description: str,
    started: float | None = None,
) -> int:
    if not results:
        print("Nothing was run.", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for part in dict.fromkeys(r.part for r in results):
        if part.endswith("-budget"):
            continue
        # Every family reports percent except real training, whose accuracies lie in [0, 1].
        scale = 100.0 if part == "real" else 1.0
        rows += summary_table([r for r in results if r.part == part], scale=scale)
    dominance_rows = dominance(rows)
    budget_rows = budget_table(results)
    predictability_rows = predictability_table(results)
    records = [asdict(r) for r in results]
    for record in records:
        for key in ("best_within", "rank_corr", "top_k_share"):
            record[key] = ";".join(f"{v:.6g}" for v in record[key])
    write_csv(out / "results.csv", records)
    write_csv(out / "summary.csv", rows)
    if budget_rows:
        write_csv(out / "equal_compute.csv", budget_rows)
    if predictability_rows:
        write_csv(out / "predictability.csv", predictability_rows)
    if dominance_rows:
        write_csv(out / "dominance.csv", dominance_rows)
    plots = plot(rows, out)
    print(
        f"Pruning benchmark ({description}): delta = best final accuracy minus that of the "
        "same sampler and seed without pruning (percentage points); saving = epochs without "
        "pruning / epochs with; done = completed trials."
    )
    print_table(rows)
    if budget_rows:
        print_budget_table(budget_rows)
    if predictability_rows:
        print_predictability_table(predictability_rows)
    if dominance_rows:
        print_dominance(dominance_rows)
    for note in notes:
        print(note)
    if plots:
        print("plots: " + ", ".join(str(p) for p in plots))
    elapsed = f"{time.perf_counter() - started:.0f}s; " if started is not None else ""
    print(f"{elapsed}results in {out}/")
    return 0


def load_results(paths: Sequence[str]) -> list[Result]:
    """Results from saved ``results.csv`` files; later files win for duplicate studies."""
    found: dict[tuple[str, str, str, int], Result] = {}
    for path in paths:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                r = Result(
                    part=row["part"],
                    sampler=row["sampler"],
                    pruner=row["pruner"],
                    seed=int(row["seed"]),
                    n_trials=int(row["n_trials"]),
                    epochs=int(row["epochs"]),
                    best=float(row["best"]),
                    n_complete=int(row["n_complete"]),
                    n_pruned=int(row["n_pruned"]),
                    wall_s=float(row["wall_s"]),
                    best_within=floats(row.get("best_within")),
                    rank_corr=floats(row.get("rank_corr")),  # absent in older files
                    top_k_share=floats(row.get("top_k_share")),
                )
                found[(r.part, r.sampler, r.pruner, r.seed)] = r
    return list(found.values())


def floats(text: str | None) -> tuple[float, ...]:
    return tuple(float(v) for v in (text or "").split(";") if v)
