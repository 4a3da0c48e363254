"""PLACEHOLDER: to be replaced by the DARTS search space implementation."""
from typing import Any
AMOEBANET_A: Any = None
DARTS_V1: Any = None
DARTS_V2: Any = None
ENAS: Any = None
NASNET_A: Any = None
PRIMITIVES: Any = None
Genotype: Any = None
DartsSearchSpace: Any = None
