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


def _size(svg: str) -> tuple[float, float]:
    root = ET.fromstring(svg)
    _, _, width, height = (float(v) for v in root.attrib["viewBox"].split())
    return width, height


def test_nb201_diagram_is_readable_in_the_dashboard_thumbnail() -> None:
    # optuna-dashboard draws artifacts into a 200 x 150 box (object-fit: contain).
    space = create_search_space("nasbench201")
    cell = space.from_string(
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_3x3~1|"
        "skip_connect~2|"
    )
    svg = cell_diagram_svg(cell)
    width, height = _size(svg)
    scale = min(200 / width, 150 / height)
    root = ET.fromstring(svg)
    sizes = [float(e.attrib["font-size"]) for e in root.iter() if e.tag.endswith("text")]
    assert min(sizes) * scale >= 8.5  # pixels
    assert 1.0 <= width / height <= 1.6
    # short names drawn, full names kept as titles
    assert ">conv3x3<" in svg and ">conv1x1<" in svg and ">avg3x3<" in svg and ">skip<" in svg
    assert "<title>nor_conv_3x3</title>" in svg


def test_labels_of_one_lane_do_not_overlap() -> None:
    from optuna_nas.visualization._cell_diagram import _ROW
    from optuna_nas.visualization._cell_diagram import _assign_lanes

    for graph in cell_graphs(DARTS_V2) + cell_graphs(NASNET_A):
        edges = [e for e in graph.edges if e[2]]
        lanes = _assign_lanes(edges)
        for i, (a, b, _) in enumerate(edges):
            for j, (c, d, _) in enumerate(edges[:i]):
                if lanes[i] == lanes[j]:
                    assert abs((a + b) / 2 - (c + d) / 2) * _ROW >= 22
