"""PLACEHOLDER: to be replaced by the macro search space implementation."""
from typing import Any
MacroArchitecture: Any = None
MacroSearchSpace: Any = None
