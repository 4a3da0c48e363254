"""Cell diagrams as dependency-free SVG, for optuna-dashboard artifacts and docs.

SVG is written by hand (no graphviz/matplotlib) so the diagram of every trial can be recorded
by the core package, whose dependencies stay small; optuna-dashboard previews SVG artifacts.
"""

from __future__ import annotations

import html
import os
import tempfile
from typing import TYPE_CHECKING
from typing import Any

from optuna_nas.search_spaces._base import CellGraph
from optuna_nas.search_spaces._registry import search_space_for


if TYPE_CHECKING:
    import optuna

    from optuna_nas._optuna_compat import ArtifactStore
    from optuna_nas.search_spaces._base import SearchSpace


# Colours by operation family, so the kind of cell is visible at a glance.
_OP_COLOURS = {
    "skip": "#2ca02c",
    "pool": "#1f77b4",
    "conv": "#d62728",
    "none": "#bbbbbb",
    "": "#555555",
}


#: The start of the file name of every cell diagram artifact (``cell_trial<n>.svg``).
DIAGRAM_FILE_PREFIX = "cell_trial"


def _colour(label: str) -> str:
    for key in ("skip", "pool", "none"):
        if key in label:
            return _OP_COLOURS[key]
    if "conv" in label or "x" in label:
        return _OP_COLOURS["conv"]
    return _OP_COLOURS[""]


def cell_graphs(arch: Any, *, space: SearchSpace[Any] | None = None) -> list[CellGraph]:
    """The drawable graphs of an architecture, as its search space describes them.

    Args:
        arch: The architecture.
        space: The space that draws it (:meth:`SearchSpace.cell_graphs`); by default the
            registered space whose ``architecture_type`` ``arch`` is.

    Raises:
        ValueError: No registered space has architectures of ``arch``'s type.
        NotImplementedError: ``space`` draws no diagrams.
    """
    if space is None:
        space = search_space_for(arch)
        if space is None:
            raise ValueError(
                f"No cell diagram for architecture {arch!r} of type {type(arch).__name__}: no "
                "registered search space has it as architecture_type; pass space=."
            )
    return space.cell_graphs(arch)


#: Short operation names drawn on the edges, so that a diagram stays readable when shown small
#: (optuna-dashboard's artifact thumbnail is 200 x 150 pixels); the SVG's ``<title>`` elements
#: keep the full names.
_SHORT_NAMES = {
    "skip_connect": "skip",
    "nor_conv_1x1": "conv1x1",
    "nor_conv_3x3": "conv3x3",
    "avg_pool_3x3": "avg3x3",
    "max_pool_3x3": "max3x3",
    "sep_conv_3x3": "sep3x3",
    "sep_conv_5x5": "sep5x5",
    "sep_conv_7x7": "sep7x7",
    "dil_conv_3x3": "dil3x3",
    "dil_conv_5x5": "dil5x5",
    "conv_7x1_1x7": "7x1/1x7",
}

# Layout, in SVG user units. The canvas is sized so that an NB201 cell is about 4:3 and
# 380 units wide: at the dashboard's 200-pixel thumbnail its 18-unit text is ~9 pixels high.
_FONT = 18
_CHAR_W = 0.6 * _FONT  # average glyph width of a sans-serif font, for the layout
_NODE_H = 34
_ROW = 66  # vertical distance between node centres
_TITLE_H = 30
_MARGIN = 10


def short_operation_name(label: str) -> str:
    """The name drawn for an operation (e.g. ``"nor_conv_3x3"`` -> ``"conv3x3"``)."""
    return _SHORT_NAMES.get(label, label)


def _text_width(text: str) -> float:
    return len(text) * _CHAR_W


def _assign_lanes(edges: list[tuple[int, int, str]]) -> list[int]:
    """A lane (0, 1, ...: how far right the arc bulges) per labelled edge.

    Shorter edges first; an edge takes the first lane that is outside every lane used by an
    edge it encloses and whose labels there do not overlap its own label vertically.
    """
    order = sorted(range(len(edges)), key=lambda i: (edges[i][1] - edges[i][0], edges[i][0]))
    lanes = [0] * len(edges)
    placed: list[int] = []
    for i in order:
        a, b, _ = edges[i]
        mid = (a + b) / 2
        lane = 0
        for j in placed:
            c, d, _ = edges[j]
            encloses = a <= c and d <= b
            overlaps = abs((c + d) / 2 - mid) * _ROW < _FONT + 4
            if encloses or overlaps:
                lane = max(lane, lanes[j] + 1)
        lanes[i] = lane
        placed.append(i)
    return lanes


def _panel(graph: CellGraph, x0: float, y0: float) -> tuple[list[str], float, float]:
    """One graph drawn at ``(x0, y0)``: its SVG parts, width and height.

    Nodes stand in a column, top to bottom; each labelled edge (an operation) is an arc on the
    right of the column with its operation written at the arc's apex; unlabelled edges
    (concatenations, a chain) are dashed arcs on the left.
    """
    labelled = [e for e in graph.edges if e[2]]
    plain = [e for e in graph.edges if not e[2]]
    lanes = _assign_lanes(labelled)
    label_w = max((_text_width(short_operation_name(e[2])) for e in labelled), default=0.0)
    lane_w = label_w + 22
    node_w = max(_text_width(n) for n in graph.nodes) + 16
    left_room = 14 + 10 * max((b - a for a, b, _ in plain), default=0)
    col_x = x0 + left_room  # the node boxes' left edge
    right_x = col_x + node_w
    ys = [y0 + _TITLE_H + _NODE_H / 2 + i * _ROW for i in range(len(graph.nodes))]
    n_lanes = max(lanes, default=-1) + 1
    width = left_room + node_w + (n_lanes * lane_w + 8 if labelled else 12)
    height = _TITLE_H + _NODE_H + (len(graph.nodes) - 1) * _ROW + 6
    parts = [
        f'<text x="{x0:.0f}" y="{y0 + _FONT:.0f}" font-size="{_FONT}" font-weight="bold">'
        f"{html.escape(graph.title)}</text>"
    ]
    for a, b, _ in plain:
        bulge = col_x - 12 - 10 * (b - a)
        ya, yb = ys[a] + 6, ys[b] - 6
        parts.append(
            f'<path d="M {col_x:.0f} {ya:.0f} Q {2 * bulge - col_x:.0f} {(ya + yb) / 2:.0f} '
            f'{col_x:.0f} {yb:.0f}" fill="none" stroke="#888" stroke-width="2" '
            'stroke-dasharray="5 4" marker-end="url(#arrow)"/>'
        )
    texts = []
    for (a, b, label), lane in zip(labelled, lanes):
        colour = _colour(label)
        apex = right_x + 18 + lane * lane_w
        ya, yb = ys[a] + 5, ys[b] - 5
        ym = (ya + yb) / 2
        parts.append(
            f'<path d="M {right_x:.0f} {ya:.0f} Q {2 * apex - right_x:.0f} {ym:.0f} '
            f'{right_x:.0f} {yb:.0f}" fill="none" stroke="{colour}" stroke-width="2.5" '
            'marker-end="url(#arrow)"/>'
        )
        # The label sits just right of the apex, on a white halo over any crossing arc.
        texts.append(
            f'<text x="{apex + 3:.0f}" y="{ym + _FONT * 0.35:.0f}" font-size="{_FONT}" '
            f'fill="{colour}" stroke="white" stroke-width="4" paint-order="stroke" '
            f'font-weight="bold"><title>{html.escape(label)}</title>'
            f"{html.escape(short_operation_name(label))}</text>"
        )
    for y, name in zip(ys, graph.nodes):
        parts.append(
            f'<rect x="{col_x:.0f}" y="{y - _NODE_H / 2:.0f}" width="{node_w:.0f}" '
            f'height="{_NODE_H}" rx="6" fill="#f4f4f4" stroke="#333" stroke-width="1.5"/>'
            f'<text x="{col_x + node_w / 2:.0f}" y="{y + _FONT * 0.35:.0f}" font-size="{_FONT}" '
            f'text-anchor="middle">{html.escape(name)}</text>'
        )
    return parts + texts, width, height


def cell_diagram_svg(arch: Any, *, space: SearchSpace[Any] | None = None) -> str:
    """Render ``arch`` (NB201 cell, DARTS genotype, macro architecture...) as an SVG document.

    Each graph of :func:`cell_graphs` is a panel (side by side): the nodes top to bottom, each
    operation an arc on the right labelled with its short name (``conv3x3`` for
    ``nor_conv_3x3``, ``sep5x5`` for ``sep_conv_5x5``...; the full name is the label's
    ``<title>``), coloured by family (convolutions red, pooling blue, skips green); dashed arcs
    on the left are concatenations (DARTS' cell output) or a plain chain (macro). Sized so that
    a NAS-Bench-201 cell is about 4:3 and its labels stay readable in optuna-dashboard's
    200 x 150 pixel artifact thumbnail.

    Args:
        arch: The architecture.
        space: The space that draws it; see :func:`cell_graphs`.

    Example:
        .. code-block:: python

            from optuna_nas.search_spaces import DARTS_V2
            from optuna_nas.visualization import cell_diagram_svg

            svg = cell_diagram_svg(DARTS_V2)
    """
    graphs = cell_graphs(arch, space=space)
    panels: list[str] = []
    x = float(_MARGIN)
    height = 0.0
    for graph in graphs:
        parts, w, h = _panel(graph, x, _MARGIN)
        panels.extend(parts)
        x += w + 2 * _MARGIN
        height = max(height, h)
    width = int(x - _MARGIN)
    total_h = int(height + 2 * _MARGIN)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{total_h}" '
        f'viewBox="0 0 {width} {total_h}" font-family="DejaVu Sans, Arial, sans-serif">'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="5" '
        'markerHeight="5" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        'fill="#555"/></marker></defs>'
        f'<rect width="{width}" height="{total_h}" fill="white"/>' + "".join(panels) + "</svg>"
    )


def upload_cell_diagram(
    trial: optuna.Trial,
    arch: Any,
    *,
    artifact_store: ArtifactStore,
    space: SearchSpace[Any] | None = None,
) -> str:
    """Upload the cell diagram of ``arch`` as an SVG artifact of ``trial``.

    optuna-dashboard shows it in the trial's artifact list. Returns the artifact id. ``space``
    draws it (see :func:`cell_graphs`).

    Example:
        .. code-block:: python

            import os

            import optuna
            from optuna.artifacts import FileSystemArtifactStore
            from optuna_nas.search_spaces import create_search_space
            from optuna_nas.visualization import upload_cell_diagram

            os.makedirs("./artifacts", exist_ok=True)
            store = FileSystemArtifactStore("./artifacts")
            space = create_search_space("nasbench201")
            study = optuna.create_study()
            trial = study.ask()
            upload_cell_diagram(trial, space.suggest(trial), artifact_store=store)
    """
    from optuna.artifacts import upload_artifact

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"{DIAGRAM_FILE_PREFIX}{trial.number}.svg")
        with open(path, "w", encoding="utf-8") as f:
            f.write(cell_diagram_svg(arch, space=space))
        return upload_artifact(
            artifact_store=artifact_store,
            file_path=path,
            study_or_trial=trial,
            mimetype="image/svg+xml",
        )
