"""Cell diagrams for optuna-dashboard artifacts and documentation."""

from optuna_nas.visualization._cell_diagram import CellGraph
from optuna_nas.visualization._cell_diagram import cell_diagram_svg
from optuna_nas.visualization._cell_diagram import cell_graphs
from optuna_nas.visualization._cell_diagram import upload_cell_diagram


__all__ = ["CellGraph", "cell_diagram_svg", "cell_graphs", "upload_cell_diagram"]
