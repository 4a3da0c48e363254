"""optuna_nas.dashboard: notes, plots and names, read back through optuna-dashboard's API."""

from __future__ import annotations

from collections.abc import Callable
import json
from pathlib import Path
import subprocess
import sys
from typing import Any

from dashboard import SPACE  # tests/helpers/
from dashboard import DashboardServer
from dashboard import dashboard_server  # noqa: F401  (the fixture)
from dashboard import evolution_study
from dashboard import nas_objective
import optuna
from optuna.artifacts import FileSystemArtifactStore
from optuna.trial import TrialState
from optuna_dashboard import get_note
from optuna_dashboard._custom_plot_data import get_plotly_graph_objects
from optuna_dashboard._custom_plot_data import list_graph_object_ids
import pytest

from optuna_nas.dashboard import PLOT_IDS
from optuna_nas.dashboard import NASDashboardCallback
from optuna_nas.dashboard import annotate_study
from optuna_nas.dashboard import infer_objective_names
from optuna_nas.dashboard import save_study_plots
from optuna_nas.dashboard import set_objective_names
from optuna_nas.dashboard import trial_note
from optuna_nas.dashboard import trial_url
from optuna_nas.dashboard import write_trial_note
from optuna_nas.samplers import RNNControllerSampler
from optuna_nas.search_spaces import DARTS_V2


def _system_attrs(study: optuna.Study) -> dict[str, Any]:
    return study._storage.get_study_system_attrs(study._study_id)


def child_of(study: optuna.Study) -> optuna.trial.FrozenTrial:
    return next(t for t in study.trials if "evolution:parent" in t.user_attrs)


def test_evolution_child_note_links_the_parent_and_names_the_mutation() -> None:
    study = evolution_study()
    set_objective_names(study, ["val_acc"])
    child = child_of(study)
    parent = study.trials[child.user_attrs["evolution:parent"]]
    note = trial_note(study, child)
    assert f"[trial {parent.number}]({trial_url(study, parent.number)})" in note
    assert f"/dashboard/studies/{study._study_id}/trials?numbers={parent.number}" in note
    mutated = child.user_attrs["evolution:mutated"].split(",")
    assert mutated
    for name in mutated:
        old, new = parent.params[name], child.params[name]
        assert f"mutated `{name}`: {old} → **{new}**" in note
    # architecture, cell by node, costs, curve
    assert child.user_attrs["arch"] in note
    assert "output ← input: **" in note
    assert "parameters" in note and "MFLOPs" in note and "ms latency" in note
    assert f"val_acc {child.value:.4g}" in note
    assert "3 epochs" in note and "best" in note
    # a warm-up trial says it is random
    assert "random trial" in trial_note(study, 0)


def test_cost_formats() -> None:
    study = optuna.create_study(direction="maximize")
    t = study.ask()
    t.set_user_attr("n_params", 1_234_567)
    t.set_user_attr("flops", 45.6e6)
    t.set_user_attr("latency_ms", 0.8)
    study.tell(t, 0.5)
    assert "1.23M parameters · 45.6 MFLOPs · 0.8 ms latency" in trial_note(study, 0)


def test_pruned_and_failed_trials_say_why() -> None:
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner())
    # pruned with a recorded reason
    t = study.ask()
    t.set_user_attr("pruned_reason", "NaN loss at epoch 2")
    study.tell(t, state=TrialState.PRUNED)
    # pruned without one: the pruner and the epoch
    t = study.ask()
    t.report(0.1, 0)
    t.report(0.2, 1)
    study.tell(t, state=TrialState.PRUNED)
    # failed
    t = study.ask()
    t.set_user_attr("fail_reason", "CUDA out of memory")
    study.tell(t, state=TrialState.FAIL)
    assert "**Pruned**: NaN loss at epoch 2" in trial_note(study, 0)
    assert "pruned by MedianPruner at epoch 1" in trial_note(study, 1)
    note = trial_note(study, 2)
    assert "FAIL" in note and "**Failed**: CUDA out of memory" in note


def test_darts_search_trial_and_its_retrained_result() -> None:
    study = optuna.create_study(direction="maximize")
    t = study.ask()
    t.set_user_attr("source", "darts_search")
    t.set_user_attr("darts:arch", str(DARTS_V2))
    t.set_user_attr("darts:epochs", 50)
    t.set_user_attr("darts:skip_connections", 2)
    t.set_user_attr("darts:stop_reason", "3 skip connections in the normal cell")
    study.tell(t, 0.88)
    study.set_user_attr("retrain:trial_0", {"test_acc": 0.9731, "epochs": 600, "seconds": 1200})
    # the derived architecture, enqueued, refers back to its search
    study.enqueue_trial({"x": 1.0}, user_attrs={"source": "darts", "darts:search_trial": 0})
    t = study.ask()
    t.suggest_float("x", 0, 2)
    study.tell(t, 0.9)

    note = trial_note(study, 0)
    assert f"derived architecture `{DARTS_V2}`" in note
    assert "*normal cell*" in note and "*reduction cell*" in note
    assert "sep_conv_3x3" in note and "concat(" in note
    assert "epochs 50" in note and "stopped early: 3 skip" in note
    assert "**Retrained**: test_acc 0.9731 after 600 epochs" in note
    assert "(search: objective 0.88)" in note
    assert f"[trial 0]({trial_url(study, 0)})" in trial_note(study, 1)


def test_rnn_controller_log_probability() -> None:
    study = optuna.create_study(direction="maximize", sampler=RNNControllerSampler(seed=0))
    study.optimize(nas_objective(), n_trials=2)
    log_prob = study.trials[1].system_attrs["RNNControllerSampler:log_prob"]
    assert f"log-probability {log_prob:.3f}" in trial_note(study, 1)


def test_write_note_plots_replace_and_names(tmp_path: Path) -> None:
    study = evolution_study()
    assert infer_objective_names(study) == ["val_acc"]
    annotate_study(study)
    assert study.metric_names == ["val_acc"]
    assert get_note(optuna.Trial(study, study.trials[3]._trial_id)) == trial_note(study, 3)
    ids = set(list_graph_object_ids(_system_attrs(study)))
    assert ids == {PLOT_IDS[k] for k in ("params", "latency", "history", "lineage")}
    n_attrs = len(_system_attrs(study))
    # Saved again (with one more retrained result): replaced, not added.
    study.set_user_attr("retrain:trial_3", {"test_acc": 0.7, "epochs": 10})
    save_study_plots(study)
    save_study_plots(study)
    ids = set(list_graph_object_ids(_system_attrs(study)))
    assert ids == set(PLOT_IDS.values())
    assert len(_system_attrs(study)) <= n_attrs + 4
    lineage = json.loads(get_plotly_graph_objects(_system_attrs(study))[PLOT_IDS["lineage"]])
    assert "lineage" in lineage["layout"]["title"]["text"]
    # a note written twice is replaced too
    write_trial_note(study, 3)
    assert get_note(optuna.Trial(study, study.trials[3]._trial_id)) == trial_note(study, 3)


def test_objective_names_are_checked() -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    set_objective_names(study, ["val_acc", "latency_ms"])
    assert study.metric_names == ["val_acc", "latency_ms"]
    with pytest.raises(ValueError, match="one non-empty name per objective"):
        set_objective_names(study, ["val_acc"])


@pytest.mark.parametrize("plot_every", [0, -1, 1.5, True])
def test_callback_validates_plot_every(plot_every: Any) -> None:
    with pytest.raises(ValueError, match="plot_every"):
        NASDashboardCallback(plot_every=plot_every)
    with pytest.raises(ValueError, match="plots"):
        NASDashboardCallback(plots=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        NASDashboardCallback(True)  # type: ignore[misc]


def test_callback_writes_notes_and_plots() -> None:
    calls: list[int] = []
    study = optuna.create_study(direction="maximize")
    callback = NASDashboardCallback(plot_every=3, metrics=["val_acc"])
    import optuna_nas.dashboard as dashboard

    original = dashboard.save_study_plots

    def spy(s: optuna.Study) -> list[str]:
        calls.append(len(s.trials))
        return original(s)

    dashboard.save_study_plots = spy  # type: ignore[assignment]
    try:
        study.optimize(nas_objective(), n_trials=6, callbacks=[callback])
    finally:
        dashboard.save_study_plots = original  # type: ignore[assignment]
    assert calls == [1, 3, 6]
    assert study.metric_names == ["val_acc"]
    for t in study.trials:
        assert get_note(optuna.Trial(study, t._trial_id)).startswith(f"### Trial {t.number}")


def test_dashboard_module_stays_light() -> None:
    probe = (
        "import sys, optuna_nas.dashboard; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('lightning', 'optuna_integration', 'plotly', 'matplotlib') "
        "or m.startswith(('optuna_nas.training', 'optuna_nas.darts'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"


def test_dashboard_serves_notes_plots_and_diagrams(
    tmp_path: Path,
    dashboard_server: Callable[..., DashboardServer],  # noqa: F811
) -> None:
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    study = evolution_study(
        FileSystemArtifactStore(str(artifacts)), storage=storage, study_name="nas"
    )
    annotate_study(study)

    server = dashboard_server(storage, str(artifacts))
    studies = server.get_json("/api/studies")["study_summaries"]
    (entry,) = [s for s in studies if s["study_name"] == "nas"]
    detail = server.get_json(f"/api/studies/{entry['study_id']}?after=0")
    assert detail["objective_names"] == ["val_acc"]
    assert {g["id"] for g in detail["plotly_graph_objects"]} >= {
        PLOT_IDS["params"],
        PLOT_IDS["lineage"],
    }
    child = child_of(study)
    served = next(t for t in detail["trials"] if t["number"] == child.number)
    assert served["note"]["body"] == trial_note(study, child)
    assert "child of [trial" in served["note"]["body"]
    (artifact,) = served["artifacts"]
    assert artifact["mimetype"] == "image/svg+xml"
    url = f"/artifacts/{entry['study_id']}/{served['trial_id']}/{artifact['artifact_id']}"
    svg = server.get(url)
    assert svg.startswith(b"<svg")
    # The note embeds the same diagram at full size (the artifact card is a thumbnail).
    assert f"![cell diagram of trial {child.number}]({url})" in served["note"]["body"]
    assert SPACE.to_string(SPACE.from_params(child.params)) == child.user_attrs["arch"]


def test_pareto_front_of_accuracy_vs_parameters() -> None:
    study = optuna.create_study(direction="maximize")
    for n_params, acc in [(100, 0.5), (200, 0.7), (300, 0.6), (400, 0.9), (150, 0.4)]:
        t = study.ask()
        t.set_user_attr("n_params", n_params)
        study.tell(t, acc)
    save_study_plots(study)
    figure = json.loads(get_plotly_graph_objects(_system_attrs(study))[PLOT_IDS["params"]])
    points, front = figure["data"]
    assert len(points["x"]) == 5
    assert front["name"] == "Pareto front"
    assert list(zip(front["x"], front["y"])) == [(100, 0.5), (200, 0.7), (400, 0.9)]
    assert figure["layout"]["xaxis"]["type"] == "log"
    # no latency recorded: no latency chart; no evolution: no lineage
    ids = set(list_graph_object_ids(_system_attrs(study)))
    assert ids == {PLOT_IDS["params"], PLOT_IDS["history"]}


def test_notes_of_a_real_nas_objective_study(tmp_path: Path) -> None:
    from optuna_nas.training import EmbeddedDataModule
    from optuna_nas.training import NASObjective

    store = FileSystemArtifactStore(str(tmp_path))
    objective = NASObjective(
        SPACE,
        EmbeddedDataModule(dataset="digits", subset=300, image_size=8, batch_size=32, seed=0),
        max_epochs=1,
        build_kwargs={"channels": 4, "cells_per_stage": 1},
        trainer_kwargs={"accelerator": "cpu"},
        latency_repeats=1,
        artifact_store=store,
    )
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    study.optimize(objective, n_trials=3, callbacks=[NASDashboardCallback(plot_every=2)])
    annotate_study(study)
    assert study.metric_names == ["val_acc"]
    for t in study.trials:
        note = get_note(optuna.Trial(study, t._trial_id))
        assert t.user_attrs["arch"] in note
        assert "parameters ·" in note and "FLOPs" in note and "latency" in note
        assert "**Training**: 1 epochs" in note and "val_acc `" in note


def test_notes_of_warm_started_and_proxy_guided_trials() -> None:
    """A warm start's trials say their rank and score; an evolution child made by the move
    proposal says so, with its score."""
    from optuna_nas.samplers import RegularizedEvolutionSampler
    from optuna_nas.samplers import warm_start

    def convolutions(arch: Any) -> float:  # a deterministic stand-in for a proxy
        return float(SPACE.to_string(arch).count("conv"))

    sampler = RegularizedEvolutionSampler(
        population_size=3,
        sample_size=2,
        seed=0,
        search_space=SPACE,
        mutation_score=convolutions,
        random_mutation_fraction=0.0,
    )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    warm_start(study, SPACE, convolutions, n_candidates=20, top_k=3, seed=0)
    study.optimize(lambda t: convolutions(SPACE.suggest(t)), n_trials=6)
    first = trial_note(study, study.trials[0])
    assert "**Warm start**: rank 1 of 20 scored candidates" in first
    assert f"zero-cost score {convolutions(SPACE.from_params(study.trials[0].params)):g}" in first
    children = [t for t in study.trials[3:]]
    notes = [trial_note(study, t) for t in children]
    assert any("move: the best-scored single mutation" in n for n in notes), notes
