from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import optuna
from optuna.artifacts import FileSystemArtifactStore
import pytest

from optuna_nas.search_spaces import DARTS_V2
from optuna_nas.search_spaces import NASNET_A
from optuna_nas.search_spaces import create_search_space
from optuna_nas.search_spaces import list_search_spaces
from optuna_nas.visualization import cell_diagram_svg
from optuna_nas.visualization import cell_graphs
from optuna_nas.visualization import upload_cell_diagram


@pytest.mark.parametrize("name", list_search_spaces())
def test_every_space_renders_valid_svg(name: str) -> None:
    space = create_search_space(name)
    rng = np.random.default_rng(0)
    for _ in range(5):
        arch = space.sample(rng)
        root = ET.fromstring(cell_diagram_svg(arch))
        assert root.tag.endswith("svg")


def test_darts_graph_has_one_edge_per_input_and_concat() -> None:
    normal, reduce = cell_graphs(DARTS_V2)
    assert len([e for e in normal.edges if e[2]]) == len(DARTS_V2.normal)
    assert len([e for e in normal.edges if not e[2]]) == len(DARTS_V2.normal_concat)
    assert len(reduce.nodes) == 2 + len(DARTS_V2.reduce) // 2 + 1
    # Five-node published cells draw too.
    assert len(cell_graphs(NASNET_A)[0].nodes) == 2 + 5 + 1


def test_nb201_none_edges_are_not_drawn() -> None:
    space = create_search_space("nasbench201")
    cell = space.from_string("|none~0|+|skip_connect~0|none~1|+|none~0|none~1|nor_conv_3x3~2|")
    (graph,) = cell_graphs(cell)
    assert sorted(e[2] for e in graph.edges) == ["nor_conv_3x3", "skip_connect"]


def test_unknown_architecture_raises() -> None:
    with pytest.raises(ValueError, match="object"):
        cell_graphs(object())


def test_upload_as_trial_artifact(tmp_path: object) -> None:
    store = FileSystemArtifactStore(str(tmp_path))
    space = create_search_space("nasbench201")
    study = optuna.create_study()
    trial = study.ask()
    artifact_id = upload_cell_diagram(trial, space.suggest(trial), artifact_store=store)
    study.tell(trial, 1.0)
    with store.open_reader(artifact_id) as f:
        assert b"<svg" in f.read()
