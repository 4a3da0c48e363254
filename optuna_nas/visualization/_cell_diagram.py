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


def cell_diagram_svg(arch: Any, *, space: SearchSpace[Any] | None = None) -> str:
    """Render ``arch`` (NB201 cell, DARTS genotype, macro architecture...) as an SVG document.

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
    node_gap, node_w, node_h = 190, 80, 30
    panels: list[str] = []
    y_offset = 0
    width = 0
    for graph in graphs:
        span = max((b - a for a, b, _ in graph.edges), default=1)
        arc_room = 26 * span + 30
        height = 2 * arc_room + node_h + 30
        mid = y_offset + 30 + arc_room
        xs = [40 + i * node_gap + node_w / 2 for i in range(len(graph.nodes))]
        width = max(width, int(xs[-1] + node_w / 2 + 40))
        parts = [
            f'<text x="10" y="{y_offset + 20}" font-size="15" font-weight="bold">'
            f"{html.escape(graph.title)}</text>"
        ]
        seen: dict[tuple[int, int], int] = {}
        for a, b, label in graph.edges:
            repeat = seen.get((a, b), 0)
            seen[(a, b)] = repeat + 1
            colour = _colour(label) if label else "#888888"
            dash = "" if label else ' stroke-dasharray="4 3"'
            x1, x2 = xs[a] + node_w / 2, xs[b] - node_w / 2
            if b - a == 1 and repeat == 0:
                path = f"M {x1:.0f} {mid} L {x2:.0f} {mid}"
                lx, ly = (x1 + x2) / 2, mid - 6.0
            else:
                # Longer or repeated edges arc above (even) or below (odd) to stay legible.
                sign = -1 if (b - a + repeat) % 2 == 0 else 1
                lift = sign * (26 * (b - a) + 14 * repeat)
                x1, x2 = xs[a], xs[b]
                y0 = mid + sign * node_h / 2
                control = f"{(x1 + x2) / 2:.0f} {y0 + 2 * lift:.0f}"
                path = f"M {x1:.0f} {y0:.0f} Q {control} {x2:.0f} {y0:.0f}"
                lx, ly = (x1 + x2) / 2, y0 + lift + (4.0 if sign > 0 else -4.0)
            parts.append(
                f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash} '
                'marker-end="url(#arrow)"/>'
            )
            if label:
                parts.append(
                    f'<text x="{lx:.0f}" y="{ly:.0f}" font-size="11" text-anchor="middle" '
                    f'fill="{colour}">{html.escape(label)}</text>'
                )
        for x, name in zip(xs, graph.nodes):
            parts.append(
                f'<rect x="{x - node_w / 2:.0f}" y="{mid - node_h / 2}" width="{node_w}" '
                f'height="{node_h}" rx="6" fill="#f4f4f4" stroke="#333"/>'
                f'<text x="{x:.0f}" y="{mid + 4}" font-size="12" text-anchor="middle">'
                f"{html.escape(name)}</text>"
            )
        panels.extend(parts)
        y_offset += height
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y_offset}" '
        f'viewBox="0 0 {width} {y_offset}" font-family="sans-serif">'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" '
        'markerHeight="6" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        'fill="#555"/></marker></defs>'
        f'<rect width="{width}" height="{y_offset}" fill="white"/>' + "".join(panels) + "</svg>"
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
        path = os.path.join(tmp, f"cell_trial{trial.number}.svg")
        with open(path, "w", encoding="utf-8") as f:
            f.write(cell_diagram_svg(arch, space=space))
        return upload_artifact(
            artifact_store=artifact_store,
            file_path=path,
            study_or_trial=trial,
            mimetype="image/svg+xml",
        )
