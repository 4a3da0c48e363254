"""Every ``.. code-block:: python`` example in the package's docstrings runs.

Examples that cannot run here (a download, a GPU) start with a comment line
``# Not run by the test suite: <why>``; everything else is executed in a fresh namespace in a
temporary folder, so a docstring that drifts from the code fails the suite.
"""

from __future__ import annotations

from collections.abc import Iterator
import importlib
import inspect
import os
from pathlib import Path
import pkgutil
import re
import textwrap
from types import ModuleType

import pytest

import optuna_nas


_SKIP_MARK = "# Not run by the test suite:"
_BLOCK = re.compile(r"^(?P<indent>[ \t]*)\.\. code-block:: python[ \t]*\n", re.MULTILINE)


def _modules() -> Iterator[ModuleType]:
    yield optuna_nas
    for info in pkgutil.walk_packages(optuna_nas.__path__, prefix="optuna_nas."):
        if info.name.endswith("__main__"):
            continue
        yield importlib.import_module(info.name)


def _code_blocks(doc: str) -> Iterator[str]:
    for match in _BLOCK.finditer(doc):
        indent = len(match.group("indent").expandtabs())
        lines: list[str] = []
        for line in doc[match.end() :].splitlines():
            stripped = line.strip()
            if stripped and len(line) - len(line.lstrip()) <= indent:
                break  # dedented back to the directive's level: the block ended
            lines.append(line)
        code = textwrap.dedent("\n".join(lines)).strip("\n")
        if code:
            yield code


def _examples() -> list[tuple[str, str]]:
    found: dict[str, str] = {}
    for module in _modules():
        objects: list[tuple[str, object]] = [(module.__name__, module)]
        for name, obj in vars(module).items():
            if getattr(obj, "__module__", None) != module.__name__:
                continue  # re-exported: collected in its own module
            if inspect.isclass(obj):
                objects.append((f"{module.__name__}.{name}", obj))
                for attr, member in vars(obj).items():
                    func = getattr(member, "__func__", member)
                    if inspect.isfunction(func) or isinstance(member, property):
                        objects.append((f"{module.__name__}.{name}.{attr}", func))
            elif inspect.isfunction(obj):
                objects.append((f"{module.__name__}.{name}", obj))
        for qualname, obj in objects:
            # The object's own docstring: inspect.getdoc would inherit a base class's (Lightning's
            # hooks carry examples of their own).
            doc = getattr(obj, "__doc__", None) if not isinstance(obj, property) else obj.__doc__
            for k, code in enumerate(_code_blocks(inspect.cleandoc(doc or ""))):
                found.setdefault(f"{qualname}[{k}]", code)
    return sorted(found.items())


EXAMPLES = _examples()


def test_the_package_has_examples() -> None:
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize("code", [c for _, c in EXAMPLES], ids=[n for n, _ in EXAMPLES])
def test_docstring_example_runs(
    code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if code.lstrip().startswith(_SKIP_MARK):
        pytest.skip(code.lstrip().splitlines()[0][len(_SKIP_MARK) :].strip())
    if "Benchmark" in code:
        # The NB201/NB301 examples read the benchmark data, which a checkout may lack.
        from optuna_nas.benchmarks import resolve_data_dir

        try:
            resolve_data_dir()
        except FileNotFoundError as error:
            pytest.skip(str(error))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    exec(compile(code, "<docstring example>", "exec"), {"__name__": "__doc_example__"})
