"""optuna-dashboard made for NAS: objective names, a note per trial, NAS charts.

optuna-dashboard shows any Optuna study; this module adds what a NAS user looks for:

* :func:`set_objective_names`: the charts say ``val_acc`` / ``latency_ms``, not "Objective 0";
* :func:`trial_note` / :func:`write_trial_note`: a markdown note per trial (shown on the
  trial's page) with the architecture and its cell edge by edge, the parent trial and the
  mutation of an evolution child, the RNN controller's log-probability, the costs (parameters,
  FLOPs, latency), the learning curve in short, why the trial was pruned or failed, the
  architecture a DARTS search derived, and the retrained accuracy when the study has one;
* :func:`save_study_plots`: charts saved in the study (the dashboard's "Plots" area):
  accuracy vs parameters (and vs latency) with the Pareto front, best-so-far over trials, the
  evolution lineage, and search vs retrained accuracy;
* :func:`annotate_study`: all of the above for an existing study, in one call;
* :class:`NASDashboardCallback`: the same while ``study.optimize`` runs.

Notes and plots are stored in the study's system attributes (optuna-dashboard's own format),
so they work with every storage, for finished trials too, and need no running dashboard.
Plots need ``plotly`` (a dependency of the package); nothing here imports Lightning.

Example:
    .. code-block:: python

        import optuna
        from optuna_nas.dashboard import NASDashboardCallback, annotate_study
        from optuna_nas.search_spaces import create_search_space

        space = create_search_space("nasbench201")


        def objective(trial):  # NASObjective records these attributes and more
            arch = space.suggest(trial)
            trial.set_user_attr("search_space", space.name)
            trial.set_user_attr("arch", space.to_string(arch))
            return arch.ops.count("nor_conv_3x3") / 6


        study = optuna.create_study(storage="sqlite:///nas.db", direction="maximize")
        callback = NASDashboardCallback(metrics=["val_acc"])
        study.optimize(objective, n_trials=5, callbacks=[callback])
        annotate_study(study)  # every note again and the plots of the whole run
        # then: optuna-dashboard sqlite:///nas.db --artifact-dir ./artifacts
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import math
from typing import TYPE_CHECKING
from typing import Any
import warnings

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_nas._validation import check_int
from optuna_nas.samplers._evolution import MOVE_FALLBACK
from optuna_nas.samplers._evolution import MOVE_KEY
from optuna_nas.samplers._evolution import MOVE_PROPOSAL
from optuna_nas.samplers._evolution import MOVE_RANDOM
from optuna_nas.samplers._evolution import MOVE_SCORE_KEY
from optuna_nas.samplers._evolution import MUTATION_KEY
from optuna_nas.samplers._evolution import PARENT_KEY
from optuna_nas.samplers._warm_start import USER_ATTR_N_CANDIDATES as WARM_START_N
from optuna_nas.samplers._warm_start import USER_ATTR_RANK as WARM_START_RANK
from optuna_nas.samplers._warm_start import USER_ATTR_SCORE as WARM_START_SCORE


if TYPE_CHECKING:
    import plotly.graph_objects as go

    from optuna_nas.search_spaces import SearchSpace


__all__ = [
    "PLOT_IDS",
    "RETRAIN_ATTR_PREFIX",
    "NASDashboardCallback",
    "annotate_study",
    "format_count",
    "format_flops",
    "format_latency",
    "infer_objective_names",
    "save_study_plots",
    "set_objective_names",
    "trial_note",
    "trial_url",
    "write_trial_note",
]

#: Study user attribute prefix of a retrained result: ``"retrain:trial_<n>"`` holds a dict
#: (``test_acc``, ``epochs``, ...) for the architecture of trial ``n``
#: (written by :mod:`optuna_nas.retrain`; only read here).
RETRAIN_ATTR_PREFIX = "retrain:trial_"

#: The graph object ids of :func:`save_study_plots` (re-saving one replaces it).
PLOT_IDS = {
    "params": "optuna-nas-accuracy-vs-params",
    "latency": "optuna-nas-accuracy-vs-latency",
    "history": "optuna-nas-best-so-far",
    "lineage": "optuna-nas-evolution-lineage",
    "retrain": "optuna-nas-search-vs-retrained",
}

_RNN_LOG_PROB = "RNNControllerSampler:log_prob"
_RNN_BASELINE = "RNNControllerSampler:baseline"
_COST_ATTRS = ("n_params", "flops", "latency_ms")
_SPARK = "▁▂▃▄▅▆▇█"


# ----------------------------------------------------------------------------- formatting
def format_count(value: float) -> str:
    """A count with a K/M/G suffix and three significant digits.

    Example:
        >>> format_count(1234567), format_count(45600), format_count(950)
        ('1.23M', '45.6K', '950')
    """
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def format_flops(value: float) -> str:
    """FLOPs with a K/M/G prefix.

    Example:
        >>> format_flops(45.6e6), format_flops(2.5e9)
        ('45.6 MFLOPs', '2.5 GFLOPs')
    """
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}FLOPs"
    return f"{value:.3g} FLOPs"


def format_latency(value_ms: float) -> str:
    """A latency in milliseconds (microseconds below 0.1 ms).

    Example:
        >>> format_latency(0.8), format_latency(12.345), format_latency(0.042)
        ('0.8 ms', '12.3 ms', '42 µs')
    """
    if 0 < value_ms < 0.1:
        return f"{value_ms * 1000:.3g} µs"
    return f"{value_ms:.3g} ms"


def _num(value: Any) -> float | None:
    """``value`` as a finite float, or ``None``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _fmt(value: Any) -> str:
    number = _num(value)
    if number is None:
        return str(value)
    return f"{number:.4g}"


def _sparkline(values: Sequence[float]) -> str:
    finite = [v for v in values if _num(v) is not None]
    if not finite:
        return ""
    low, high = min(finite), max(finite)
    span = high - low or 1.0
    return "".join(
        _SPARK[min(len(_SPARK) - 1, int((v - low) / span * len(_SPARK)))]
        if _num(v) is not None
        else " "
        for v in values
    )


def _curve_text(curve: Sequence[Any]) -> str:
    values = [float(v) for v in curve if _num(v) is not None]
    if not values:
        return ""
    if len(values) <= 6:
        steps = " → ".join(f"{v:.3f}" for v in values)
    else:
        steps = (
            " → ".join(f"{v:.3f}" for v in values[:2])
            + " → … → "
            + " → ".join(f"{v:.3f}" for v in values[-2:])
        )
    best = max(range(len(values)), key=values.__getitem__)
    return f"`{_sparkline(values)}` {steps} (best {values[best]:.3f} at epoch {best})"


# ----------------------------------------------------------------------------- objective names
def set_objective_names(study: optuna.Study, metrics: Sequence[str]) -> None:
    """Name the study's objectives (e.g. ``["val_acc", "latency_ms"]``) for the dashboard.

    Stored as Optuna's metric names (``study.set_metric_names``), which optuna-dashboard reads
    first; its own ``optuna_dashboard.set_objective_names`` now only forwards there (with a
    deprecation warning).

    Raises:
        ValueError: ``metrics`` is not one non-empty name per study direction.
    """
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    if len(names) != len(study.directions) or any(not isinstance(n, str) or not n for n in names):
        raise ValueError(
            f"metrics must hold one non-empty name per objective ({len(study.directions)} "
            f"for this study); got {metrics!r}."
        )
    with warnings.catch_warnings():
        # experimental since Optuna 3.2, and what optuna-dashboard reads
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(names)


def infer_objective_names(study: optuna.Study) -> list[str] | None:
    """The objective names the completed trials' attributes imply, or ``None``.

    Objective ``k`` is ``val_acc`` when every completed trial's value equals the last entry of
    its ``val_acc_curve`` attribute, or the name of a numeric user attribute (``n_params``,
    ``flops``, ``latency_ms``, a benchmark's hardware metric...) that equals the value in every
    completed trial. ``None`` when some objective cannot be told (or no trial completed).
    """
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not trials:
        return None
    names: list[str] = []
    for k in range(len(study.directions)):
        candidates: list[str] | None = None
        for t in trials:
            value = t.values[k]
            found = []
            curve = t.user_attrs.get("val_acc_curve")
            if isinstance(curve, list) and curve and _same(curve[-1], value):
                found.append("val_acc")
            found += [
                key
                for key, attr in t.user_attrs.items()
                if not key.startswith(("best_", "true_")) and _same(attr, value)
            ]
            candidates = found if candidates is None else [c for c in candidates if c in found]
            if not candidates:
                return None
        assert candidates
        preferred = [c for c in candidates if c == "val_acc" or c in _COST_ATTRS]
        names.append((preferred or candidates)[0])
    return names


def _same(attr: Any, value: float) -> bool:
    number = _num(attr)
    return number is not None and math.isclose(number, value, rel_tol=1e-9, abs_tol=1e-12)


def _objective_names(study: optuna.Study) -> list[str]:
    names = study.metric_names
    if names is None or len(names) != len(study.directions):
        if len(study.directions) == 1:
            return ["objective"]
        return [f"objective {k}" for k in range(len(study.directions))]
    return list(names)


# ----------------------------------------------------------------------------- notes
def trial_url(study: optuna.Study, number: int, *, base_url: str = "/dashboard") -> str:
    """The optuna-dashboard address of trial ``number`` of ``study`` (a path on its server).

    Example:
        >>> import optuna
        >>> trial_url(optuna.create_study(), 3)
        '/dashboard/studies/0/trials?numbers=3'
    """
    return f"{base_url.rstrip('/')}/studies/{study._study_id}/trials?numbers={number}"


def _frozen(study: optuna.Study, trial: FrozenTrial | optuna.Trial | int) -> FrozenTrial:
    if isinstance(trial, FrozenTrial):
        return trial
    if isinstance(trial, optuna.Trial):
        return study._storage.get_trial(trial._trial_id)
    if isinstance(trial, int) and not isinstance(trial, bool):
        return study.trials[trial]
    raise ValueError(f"trial must be a FrozenTrial, an optuna.Trial or a number; got {trial!r}.")


def _space(name: Any) -> SearchSpace[Any] | None:
    from optuna_nas.search_spaces import create_search_space

    try:
        return create_search_space(name) if isinstance(name, str) else None
    except Exception:
        return None


def _cell_lines(space: SearchSpace[Any] | None, arch_string: str) -> list[str]:
    """The cell(s) of ``arch_string`` node by node, as markdown bullets (``[]`` if unknown)."""
    candidates = [space] if space is not None else [_space("nasbench201"), _space("darts")]
    for candidate in candidates:
        if candidate is None:
            continue
        try:
            graphs = candidate.cell_graphs(candidate.from_string(arch_string))
        except Exception:
            continue
        lines: list[str] = []
        for graph in graphs:
            lines.append(f"- *{graph.title}*")
            for node, name in enumerate(graph.nodes):
                inputs = [(a, label) for a, b, label in graph.edges if b == node]
                if not inputs:
                    continue
                ops = [f"{graph.nodes[a]}: **{label}**" for a, label in inputs if label]
                plain = [graph.nodes[a] for a, label in inputs if not label]
                if len(plain) > 1:
                    ops.append(f"concat({', '.join(plain)})")
                elif plain:
                    ops.append(plain[0])
                lines.append(f"  - {name} ← {'; '.join(ops)}")
        return lines
    return []


#: How the evolution sampler made a child (``RegularizedEvolutionSampler(mutation_score=...)``).
_MOVE_TEXT = {
    MOVE_PROPOSAL: "the best-scored single mutation (zero-cost proxy)",
    MOVE_RANDOM: "a random mutation (the random share of proxy-guided moves)",
    MOVE_FALLBACK: "a random mutation (no scored neighbour was new)",
}


def _diagram_lines(study: optuna.Study, t: FrozenTrial) -> list[str]:
    """The trial's cell diagram, embedded in the note at its natural size.

    optuna-dashboard draws artifacts as a 200 x 150 thumbnail, where a DARTS genotype's two
    cells cannot be read; the note is as wide as the page. The image is the artifact the
    dashboard serves itself (``/artifacts/<study id>/<trial id>/<artifact id>``).
    """
    from optuna.artifacts import get_all_artifact_meta

    from optuna_nas.visualization._cell_diagram import DIAGRAM_FILE_PREFIX

    try:
        metas = get_all_artifact_meta(t, storage=study._storage)
    except Exception:  # an artifact record the dashboard could not read either
        return []
    for meta in metas:
        if meta.mimetype == "image/svg+xml" and meta.filename.startswith(DIAGRAM_FILE_PREFIX):
            url = f"/artifacts/{study._study_id}/{t._trial_id}/{meta.artifact_id}"
            return ["", f"![cell diagram of trial {t.number}]({url})"]
    return []


def _retrain_result(study: optuna.Study, number: int) -> Mapping[str, Any] | None:
    result = study.user_attrs.get(f"{RETRAIN_ATTR_PREFIX}{number}")
    return result if isinstance(result, Mapping) else None


def _retrain_text(result: Mapping[str, Any]) -> str:
    text = f"test_acc {_fmt(result.get('test_acc'))}"
    if result.get("epochs") is not None:
        text += f" after {result['epochs']} epochs"
    extras = [
        f"{key} {_fmt(value)}"
        for key, value in result.items()
        if key not in ("test_acc", "epochs") and _num(value) is not None
    ]
    return text + (f" ({', '.join(extras)})" if extras else "")


def trial_note(study: optuna.Study, trial: FrozenTrial | optuna.Trial | int) -> str:
    """A markdown note about one trial of a NAS study, for its optuna-dashboard page.

    It holds what the trial recorded: the state and objective values; the architecture
    string and its cell(s) node by node (each node's inputs and operations; DARTS: the normal
    and the reduction cell); for a child of
    :class:`~optuna_nas.samplers.RegularizedEvolutionSampler` a link to the parent trial and
    each mutated parameter (old → new value); the
    :class:`~optuna_nas.samplers.RNNControllerSampler`'s log-probability; parameters, FLOPs
    and latency (``1.23M``, ``45.6 MFLOPs``, ``0.8 ms``); epochs trained, training time and
    the validation-accuracy curve in short; why it was pruned (``pruned_reason``, else the
    pruner and the last epoch) or failed (``fail_reason``); for a DARTS search trial the
    derived architecture; for a trial enqueued by one, a link to the search; and, when the
    study holds a retrained result for the trial (study user attribute
    ``"retrain:trial_<n>"``), its test accuracy next to the search accuracy.

    Args:
        study: The study.
        trial: One of its trials (finished or running), or its number.
    """
    t = _frozen(study, trial)
    attrs = t.user_attrs
    system = t.system_attrs
    lines: list[str] = []

    names = _objective_names(study)
    state = t.state.name
    head = f"### Trial {t.number} · {state}"
    if t.values is not None:
        head += " · " + ", ".join(f"{n} {_fmt(v)}" for n, v in zip(names, t.values))
    lines.append(head)

    # ---- architecture
    darts_arch = attrs.get("darts:arch") if attrs.get("source") == "darts_search" else None
    arch = attrs.get("arch")
    space_name = attrs.get("search_space")
    if isinstance(arch, str):
        where = f" (`{space_name}`)" if isinstance(space_name, str) else ""
        lines += ["", f"**Architecture**{where}: `{arch}`"]
        lines += _cell_lines(_space(space_name), arch)
        lines += _diagram_lines(study, t)
    if isinstance(darts_arch, str):
        lines += ["", f"**DARTS search**: derived architecture `{darts_arch}`"]
        lines += _cell_lines(_space(space_name), darts_arch)
        details = []
        for key, label in (
            ("darts:epochs", "epochs"),
            ("darts:skip_connections", "skip connections"),
            ("darts:second_order", "second order"),
        ):
            if key in attrs:
                details.append(f"{label} {attrs[key]}")
        if "darts:search_seconds" in attrs:
            details.append(f"{_fmt(attrs['darts:search_seconds'])} s")
        if details:
            lines.append("- " + ", ".join(details))
        if "darts:stop_reason" in attrs:
            lines.append(f"- stopped early: {attrs['darts:stop_reason']}")
    search_trial = attrs.get("darts:search_trial")
    if isinstance(search_trial, int):
        lines += [
            "",
            f"**From DARTS search** [trial {search_trial}]({trial_url(study, search_trial)})",
        ]

    # ---- lineage
    parent = system.get(PARENT_KEY)
    if isinstance(parent, int):
        parent_trial = next(
            (p for p in study.get_trials(deepcopy=False) if p.number == parent), None
        )
        link = f"[trial {parent}]({trial_url(study, parent)})"
        if parent_trial is not None and parent_trial.values is not None:
            link += (
                " ("
                + ", ".join(f"{n} {_fmt(v)}" for n, v in zip(names, parent_trial.values))
                + ")"
            )
        lines += ["", f"**Evolution**: child of {link}"]
        mutation = system.get(MUTATION_KEY) or {}
        parent_params = parent_trial.params if parent_trial is not None else {}
        for name in sorted(mutation):
            old = parent_params.get(name, "?")
            lines.append(f"- mutated `{name}`: {old} → **{mutation[name]}**")
        move = system.get(MOVE_KEY)
        if isinstance(move, str):
            text = _MOVE_TEXT.get(move, move)
            score = _num(system.get(MOVE_SCORE_KEY))
            if score is not None:
                text += f" (score {_fmt(score)})"
            lines.append(f"- move: {text}")
    elif PARENT_KEY in system:
        lines += ["", "**Evolution**: random trial (initial population)"]

    # ---- warm start
    rank = attrs.get(WARM_START_RANK)
    if isinstance(rank, int):
        text = f"**Warm start**: rank {rank}"
        n = attrs.get(WARM_START_N)
        if isinstance(n, int):
            text += f" of {n:,} scored candidates"
        score = _num(attrs.get(WARM_START_SCORE))
        if score is not None:
            text += f", zero-cost score {_fmt(score)}"
        lines += ["", text + " (trained first)"]

    # ---- controller
    log_prob = _num(system.get(_RNN_LOG_PROB, attrs.get("rnn_controller:log_prob")))
    if log_prob is not None:
        text = f"**RNN controller**: log-probability {log_prob:.3f} (p = {math.exp(log_prob):.3g})"
        baseline = _num(system.get(_RNN_BASELINE))
        if baseline is not None:
            text += f", reward baseline {baseline:.4g}"
        lines += ["", text]

    # ---- costs and training
    costs = []
    if _num(attrs.get("n_params")) is not None:
        costs.append(f"{format_count(attrs['n_params'])} parameters")
    if _num(attrs.get("flops")) is not None:
        costs.append(format_flops(attrs["flops"]))
    if _num(attrs.get("latency_ms")) is not None:
        costs.append(f"{format_latency(attrs['latency_ms'])} latency")
    if costs:
        lines += ["", "**Cost**: " + " · ".join(costs)]
    training = []
    if "epochs_trained" in attrs:
        training.append(f"{attrs['epochs_trained']} epochs")
    if _num(attrs.get("train_time_s")) is not None:
        training.append(f"{attrs['train_time_s']:.1f} s")
    if "resumed_at_epoch" in attrs:
        training.append(f"resumed at epoch {attrs['resumed_at_epoch']}")
    if "worker" in attrs:
        training.append(f"on {attrs['worker']}")
    if training:
        lines += ["", "**Training**: " + ", ".join(training)]
    curve = attrs.get("val_acc_curve")
    if isinstance(curve, list) and _curve_text(curve):
        lines.append(f"- val_acc {_curve_text(curve)}")

    # ---- retrained
    retrained = _retrain_result(study, t.number)
    if retrained is not None:
        search = f"{names[0]} {_fmt(t.values[0])}" if t.values else "no search value"
        lines += ["", f"**Retrained**: {_retrain_text(retrained)} (search: {search})"]

    # ---- outcome
    if t.state == TrialState.PRUNED:
        reason = attrs.get("pruned_reason")
        if not isinstance(reason, str):
            from optuna_nas.pruners import pruned_reason

            reason = pruned_reason(t, study.pruner)
        lines += ["", f"**Pruned**: {reason}"]
    elif t.state == TrialState.FAIL:
        reason = attrs.get("fail_reason")
        lines += ["", f"**Failed**: {reason if isinstance(reason, str) else 'no reason recorded'}"]
    return "\n".join(lines) + "\n"


def write_trial_note(study: optuna.Study, trial: FrozenTrial | optuna.Trial | int) -> str:
    """Write :func:`trial_note` as the trial's optuna-dashboard note; returns the note.

    Works on finished trials too: optuna-dashboard keeps notes in the study's system
    attributes. Writing again replaces the note (a user's edit in the dashboard too).
    """
    from optuna_dashboard import save_note

    frozen = _frozen(study, trial)
    note = trial_note(study, frozen)
    save_note(optuna.Trial(study, frozen._trial_id), note)
    return note


# ----------------------------------------------------------------------------- plots
def _accuracy_index(study: optuna.Study) -> int:
    """The objective plotted as "accuracy": the first maximized one (else the first)."""
    for k, direction in enumerate(study.directions):
        if direction == StudyDirection.MAXIMIZE:
            return k
    return 0


def _pareto(
    points: list[tuple[float, float, int]], maximize: bool
) -> list[tuple[float, float, int]]:
    """Non-dominated ``(cost, value, number)``: cost minimized, value maximized (or minimized)."""
    sign = 1.0 if maximize else -1.0
    front: list[tuple[float, float, int]] = []
    best = -math.inf
    for cost, value, number in sorted(points, key=lambda p: (p[0], -sign * p[1])):
        if sign * value > best:
            front.append((cost, value, number))
            best = sign * value
    return front


def _cost_figure(
    study: optuna.Study, trials: list[FrozenTrial], attr: str, label: str, *, log_x: bool
) -> go.Figure | None:
    import plotly.graph_objects as go

    k = _accuracy_index(study)
    name = _objective_names(study)[k]
    points = [
        (float(t.user_attrs[attr]), float(t.values[k]), t.number)
        for t in trials
        if _num(t.user_attrs.get(attr)) is not None and _num(t.values[k]) is not None
    ]
    if not points:
        return None
    maximize = study.directions[k] == StudyDirection.MAXIMIZE
    front = _pareto(points, maximize)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[p[0] for p in points],
            y=[p[1] for p in points],
            mode="markers",
            name="trials",
            text=[f"trial {p[2]}" for p in points],
            marker={"color": "#9ab", "size": 7},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[p[0] for p in front],
            y=[p[1] for p in front],
            mode="lines+markers",
            line={"shape": "hv", "color": "#d62728"},
            marker={"size": 9, "color": "#d62728"},
            name="Pareto front",
            text=[f"trial {p[2]}" for p in front],
        )
    )
    fig.update_layout(
        title=f"{name} vs {label} (Pareto front in red)",
        xaxis_title=label,
        yaxis_title=name,
    )
    if log_x:
        fig.update_xaxes(type="log")
    return fig


def _history_figure(study: optuna.Study, trials: list[FrozenTrial]) -> go.Figure | None:
    import plotly.graph_objects as go

    k = _accuracy_index(study)
    name = _objective_names(study)[k]
    maximize = study.directions[k] == StudyDirection.MAXIMIZE
    done = sorted((t for t in trials if _num(t.values[k]) is not None), key=lambda t: t.number)
    if not done:
        return None
    best: list[float] = []
    for t in done:
        value = float(t.values[k])
        best.append(value if not best else (max if maximize else min)(best[-1], value))
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[t.number for t in done],
            y=[t.values[k] for t in done],
            mode="markers",
            name=name,
            marker={"color": "#9ab"},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[t.number for t in done],
            y=best,
            mode="lines",
            line={"shape": "hv", "color": "#1f77b4"},
            name=f"best {name} so far",
        )
    )
    fig.update_layout(title=f"Best {name} so far", xaxis_title="trial", yaxis_title=name)
    return fig


def _lineage_figure(study: optuna.Study, all_trials: list[FrozenTrial]) -> go.Figure | None:
    import plotly.graph_objects as go

    k = _accuracy_index(study)
    name = _objective_names(study)[k]
    by_number = {t.number: t for t in all_trials}

    def y(t: FrozenTrial) -> float | None:
        return _num(t.values[k]) if t.values is not None else None

    edges_x: list[float | None] = []
    edges_y: list[float | None] = []
    n_edges = 0
    for t in all_trials:
        parent = by_number.get(t.system_attrs.get(PARENT_KEY, -1))
        if parent is None or y(t) is None or y(parent) is None:
            continue
        edges_x += [parent.number, t.number, None]
        edges_y += [y(parent), y(t), None]
        n_edges += 1
    if not n_edges:
        return None
    nodes = [t for t in all_trials if y(t) is not None and PARENT_KEY in t.system_attrs]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=edges_x,
            y=edges_y,
            mode="lines",
            line={"color": "#bbb", "width": 1},
            name="parent → child",
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[t.number for t in nodes],
            y=[y(t) for t in nodes],
            mode="markers",
            name="trials",
            text=[f"trial {t.number}, parent {t.system_attrs.get(PARENT_KEY)}" for t in nodes],
            marker={
                "color": [
                    "#2ca02c" if t.system_attrs.get(PARENT_KEY) is None else "#1f77b4"
                    for t in nodes
                ],
                "size": 7,
            },
        )
    )
    fig.update_layout(
        title=f"Evolution lineage ({n_edges} parent → child edges; random trials green)",
        xaxis_title="trial",
        yaxis_title=name,
    )
    return fig


def _retrain_figure(study: optuna.Study, trials: list[FrozenTrial]) -> go.Figure | None:
    import plotly.graph_objects as go

    k = _accuracy_index(study)
    name = _objective_names(study)[k]
    points = []
    for t in trials:
        result = _retrain_result(study, t.number)
        test_acc = _num(result.get("test_acc")) if result is not None else None
        if test_acc is not None and t.values is not None and _num(t.values[k]) is not None:
            points.append((float(t.values[k]), test_acc, t.number))
    if not points:
        return None
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[p[0] for p in points],
            y=[p[1] for p in points],
            mode="markers+text",
            text=[f"trial {p[2]}" for p in points],
            textposition="top center",
            name="retrained",
        )
    )
    low = min(min(p[0], p[1]) for p in points)
    high = max(max(p[0], p[1]) for p in points)
    fig.add_trace(
        go.Scatter(
            x=[low, high],
            y=[low, high],
            mode="lines",
            line={"dash": "dash", "color": "#999"},
            name="equal",
            hoverinfo="skip",
        )
    )
    fig.update_layout(
        title=f"Search {name} vs retrained test_acc",
        xaxis_title=f"search {name}",
        yaxis_title="retrained test_acc",
    )
    return fig


def save_study_plots(study: optuna.Study) -> list[str]:
    """Save the NAS charts of ``study`` as optuna-dashboard plots; returns their ids.

    The charts (each only when the study has its data): accuracy vs parameters and vs latency
    with the Pareto front highlighted (``"accuracy"`` is the first maximized objective);
    best-so-far over trials; the evolution lineage (parent → child edges of
    :class:`~optuna_nas.samplers.RegularizedEvolutionSampler`); search vs retrained accuracy
    (study user attributes ``"retrain:trial_<n>"``). Each has a fixed id (:data:`PLOT_IDS`),
    so saving again replaces the charts instead of adding copies.
    """
    from optuna_dashboard import save_plotly_graph_object

    all_trials = study.get_trials(deepcopy=False)
    complete = [t for t in all_trials if t.state == TrialState.COMPLETE]
    figures = {
        "params": _cost_figure(study, complete, "n_params", "parameters", log_x=True),
        "latency": _cost_figure(study, complete, "latency_ms", "latency (ms)", log_x=False),
        "history": _history_figure(study, complete),
        "lineage": _lineage_figure(study, all_trials),
        "retrain": _retrain_figure(study, complete),
    }
    saved = []
    for key, figure in figures.items():
        if figure is not None:
            save_plotly_graph_object(study, figure, graph_object_id=PLOT_IDS[key])
            saved.append(PLOT_IDS[key])
    return saved


# ----------------------------------------------------------------------------- all at once
def annotate_study(
    study: optuna.Study, *, metrics: Sequence[str] | None = None, plots: bool = True
) -> None:
    """Prepare an existing study for optuna-dashboard: names, every trial's note, the plots.

    Args:
        study: The study.
        metrics: The objective names; by default the study's metric names if it has them, or
            else those :func:`infer_objective_names` finds (left unset when it finds none).
        plots: Also :func:`save_study_plots`.
    """
    if metrics is not None:
        set_objective_names(study, metrics)
    elif study.metric_names is None:
        inferred = infer_objective_names(study)
        if inferred is not None:
            set_objective_names(study, inferred)
    for t in study.get_trials(deepcopy=False):
        if t.state.is_finished():
            write_trial_note(study, t)
    if plots:
        save_study_plots(study)


class NASDashboardCallback:
    """A ``study.optimize`` callback that keeps the dashboard's NAS view up to date.

    After every finished trial it writes the trial's note (:func:`write_trial_note`). With
    ``plots=True`` it refreshes the study plots (:func:`save_study_plots`) after the first
    trial this callback sees and after every ``plot_every``-th one; call
    :func:`save_study_plots` (or :func:`annotate_study`) once more after ``optimize`` returns
    for plots of the whole run (``optuna-nas search`` does). With ``metrics``, the objective
    names are set at the first trial.

    Args:
        plots: Refresh the study plots.
        plot_every: Refresh them every this many finished trials (an int >= 1).
        metrics: Objective names to set (see :func:`set_objective_names`).

    Raises:
        ValueError: ``plot_every`` is not an int >= 1, or ``plots`` is not a bool.

    Example:
        .. code-block:: python

            import optuna
            from optuna_nas.dashboard import NASDashboardCallback, save_study_plots

            study = optuna.create_study()
            callback = NASDashboardCallback(plot_every=20)
            study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=30, callbacks=[callback])
            save_study_plots(study)  # the plots of the whole run
    """

    def __init__(
        self,
        *,
        plots: bool = True,
        plot_every: int = 10,
        metrics: Sequence[str] | None = None,
    ) -> None:
        if not isinstance(plots, bool):
            raise ValueError(f"plots must be a bool, got {plots!r}.")
        check_int("plot_every", plot_every, minimum=1)
        self.plots = plots
        self.plot_every = int(plot_every)
        self.metrics = None if metrics is None else list(metrics)
        self._seen = 0

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._seen += 1
        if self._seen == 1 and self.metrics is not None:
            set_objective_names(study, self.metrics)
        write_trial_note(study, trial)
        if self.plots and (self._seen == 1 or self._seen % self.plot_every == 0):
            save_study_plots(study)

    def __repr__(self) -> str:
        return f"NASDashboardCallback(plots={self.plots}, plot_every={self.plot_every})"
