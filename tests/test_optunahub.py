"""The OptunaHub packages (``optunahub-registry/package/``): layout, loading, examples, checks.

``optunahub-registry/`` is laid out as the root of the optunahub-registry
(github.com/optuna/optunahub-registry; a name that cannot be imported, so it never shadows the
``optunahub`` library): ``package/<category>/<name>/`` per package, and in its
``pyproject.toml`` the registry's ruff and mypy settings. The tests here are what a pull
request to the registry must pass, plus what the registry cannot check for us:

- the layout and the README front matter, as the registry's tutorial, template and
  ``optunahub-registry/header_confirm.py`` want them (:func:`front_matter_problems`);
- each package loads with ``optunahub.load_local_module`` and exports optuna-nas's objects;
- each ``example.py`` runs, as a user runs it, in a tiny mode (environment variables);
- the samplers, loaded through optunahub, pass Optuna's ``optuna.testing.pytest_samplers``;
- the registry's pre-commit hooks (ruff, ruff-format, mypy, mdformat with mdformat-myst),
  run from ``optunahub-registry/`` on its files as the hooks would run them in the registry;
- each ``requirements.txt`` admits the optuna-nas version of this checkout (see the
  "Publishing to OptunaHub" section of CONTRIBUTING.md).
"""

from __future__ import annotations

from collections.abc import Callable
import importlib.metadata
import os
from pathlib import Path
import re
import subprocess
import sys
import types
from typing import Any

import optuna
from optuna.samplers import BaseSampler
from optuna.testing.pytest_samplers import BasicSamplerTestCase
from optuna.testing.pytest_samplers import MultiObjectiveSamplerTestCase
from optuna.testing.pytest_samplers import SingleOnlySamplerTestCase
import optunahub
from packaging.requirements import Requirement
from packaging.version import Version
import pytest
import yaml

import optuna_nas
from optuna_nas.benchmarks import resolve_data_dir


REPO_ROOT = Path(__file__).resolve().parents[1]
HUB = REPO_ROOT / "optunahub-registry"
PACKAGE_ROOT = HUB / "package"

# The packages, and the environment of each example's tiny run (its budget).
EXAMPLE_ENV = {
    "samplers/regularized_evolution": {"N_TRIALS": "20"},
    "samplers/rnn_controller": {"N_TRIALS": "12"},
    "samplers/zero_cost_warm_start": {"N_TRIALS": "11", "N_CANDIDATES": "3"},
    "pruners/learning_curve": {"N_TRIALS": "30"},
    "benchmarks/nasbench301": {"N_TRIALS": "12", "MAX_EPOCHS": "8"},
}
PACKAGES = sorted(EXAMPLE_ENV)

# The registry's categories (package/<category>/) and the tag each one's README must carry.
CATEGORY_TAGS = {
    "samplers": "sampler",
    "pruners": "pruner",
    "visualization": "visualization",
    "benchmarks": "benchmark",
    "callbacks": "callback",
}
FRONT_MATTER_KEYS = ("author", "title", "description", "tags", "optuna_versions", "license")
REQUIRED_FILES = ("__init__.py", "README.md", "LICENSE", "example.py", "requirements.txt")
# The template's sections (Installation and Others are optional).
REQUIRED_SECTIONS = ("Abstract", "APIs", "Example")
IMAGE_BUDGET = 100_000  # bytes per package: the registry's "practical guideline"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

optuna.logging.set_verbosity(optuna.logging.WARNING)


def load(package: str) -> types.ModuleType:
    return optunahub.load_local_module(package=package, registry_root=str(PACKAGE_ROOT))


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """The YAML front matter of a README (``{}`` if none) and the Markdown after it."""
    match = re.match(r"---\n(.*?)\n---\n(.*)", text, flags=re.DOTALL)
    if match is None:
        return {}, text
    header = yaml.safe_load(match.group(1))
    return (header if isinstance(header, dict) else {}), match.group(2)


def front_matter_problems(readme: Path, category: str) -> list[str]:
    """What the registry's header check (and its template's rules) would reject in ``readme``.

    ``header_confirm.py`` requires the six keys, each non-empty; the template and tutorial add
    that every value is a string or a list of strings, that the license is "MIT License" (the
    only one accepted) and that the tags include the category's tag (``sampler`` for
    ``package/samplers/``, ...). ``optuna_versions`` must name versions this package admits.
    """
    header, _ = split_front_matter(readme.read_text())
    if not header:
        return ["no YAML front matter between '---' lines at the top"]
    problems = [f"{key} is missing" for key in FRONT_MATTER_KEYS if key not in header]
    problems += [f"unknown key {key!r}" for key in header if key not in FRONT_MATTER_KEYS]
    for key in FRONT_MATTER_KEYS:
        value = header.get(key)
        if key in header and (value is None or value == "" or value == []):
            problems.append(f"{key} is empty")
        elif key in ("tags", "optuna_versions"):
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                problems.append(f"{key} must be a list of strings, got {value!r}")
        elif key in header and not isinstance(value, str):
            problems.append(f"{key} must be a string, got {value!r}")
    if header.get("license") != "MIT License":
        problems.append(f"license must be 'MIT License', got {header.get('license')!r}")
    tags = header.get("tags") if isinstance(header.get("tags"), list) else []
    if CATEGORY_TAGS.get(category) not in tags:
        problems.append(f"tags must include {CATEGORY_TAGS.get(category)!r}, got {tags!r}")
    for version in header.get("optuna_versions") or []:
        if not re.fullmatch(r"\d+\.\d+\.\d+", str(version)):
            problems.append(f"optuna version {version!r} is not X.Y.Z")
        elif not _admitted_optuna(Version(str(version))):
            problems.append(f"optuna version {version} is outside optuna-nas's requirement")
    return problems


def _admitted_optuna(version: Version) -> bool:
    """Whether pyproject.toml's Optuna requirement (``"optuna>=X,<Y"``) admits ``version``."""
    text = (REPO_ROOT / "pyproject.toml").read_text()
    match = re.search(r'^\s*"(optuna[<>=!~][^"]*)"', text, flags=re.MULTILINE)
    assert match is not None, "no optuna requirement in pyproject.toml"
    return version in Requirement(match.group(1)).specifier


def _project_version() -> str:
    text = (REPO_ROOT / "pyproject.toml").read_text()
    match = re.search(r'^version = "([^"]+)"', text, flags=re.MULTILINE)
    assert match is not None, "no version in pyproject.toml"
    return match.group(1)


def _run(
    args: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _describe(result: subprocess.CompletedProcess[str]) -> str:
    return (
        f"{result.args} exited with {result.returncode}\n--- stdout\n{result.stdout[-4000:]}"
        f"\n--- stderr\n{result.stderr[-4000:]}"
    )


def _hub_files(suffix: str) -> list[str]:
    """Files under optunahub-registry/ ending in ``suffix``, relative to it (as hooks see them)."""
    return sorted(
        str(path.relative_to(HUB))
        for path in HUB.rglob(f"*{suffix}")
        if not any(part.startswith(".") or part == "__pycache__" for part in path.parts)
    )


# ------------------------------------------------------------------------------------ layout
def test_the_package_list_matches_the_folder() -> None:
    found = sorted(
        f"{p.parent.parent.name}/{p.parent.name}" for p in PACKAGE_ROOT.glob("*/*/__init__.py")
    )
    assert found == PACKAGES, "a package without a test here, or a test without its package"


@pytest.mark.parametrize("package", PACKAGES)
def test_layout(package: str) -> None:
    folder = PACKAGE_ROOT / package
    category, name = package.split("/")
    assert category in CATEGORY_TAGS, f"{category!r} is not a registry category"
    assert name.isidentifier(), f"package name {name!r} must be a valid Python module name"
    missing = [f for f in REQUIRED_FILES if not (folder / f).is_file()]
    assert not missing, f"{package}: missing {missing}"

    license_text = (folder / "LICENSE").read_text()
    assert license_text.startswith("MIT License\n"), f"{package}: LICENSE is not the MIT License"
    assert "Permission is hereby granted, free of charge" in license_text
    assert "<COPYRIGHT HOLDER" not in license_text, f"{package}: template placeholder left"

    images = sorted((folder / "images").glob("*"))
    assert images, f"{package}: no image in images/"
    for image in images:
        assert image.suffix == ".png" and image.read_bytes()[:8] == PNG_MAGIC, image
    size = sum(image.stat().st_size for image in images)
    assert size <= IMAGE_BUDGET, f"{package}: images take {size} bytes (> {IMAGE_BUDGET})"


@pytest.mark.parametrize("package", PACKAGES)
def test_readme(package: str) -> None:
    folder = PACKAGE_ROOT / package
    problems = front_matter_problems(folder / "README.md", package.split("/")[0])
    assert not problems, f"{package}/README.md: {problems}"

    _, body = split_front_matter((folder / "README.md").read_text())
    sections = re.findall(r"^## (.+)$", body, flags=re.MULTILINE)
    missing = [s for s in REQUIRED_SECTIONS if s not in sections]
    assert not missing, f"{package}/README.md lacks the sections {missing} (has {sections})"
    prose = re.sub(r"```.*?```", "", body, flags=re.DOTALL)
    prose = re.sub(r"`[^`\n]*`", "", prose)
    html = re.findall(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>", prose)
    assert not html, f"{package}/README.md: HTML tags are stripped by the registry: {html}"

    # Images: relative references into images/ only; the first one is the thumbnail.
    references = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", body)
    assert references, f"{package}/README.md shows no image"
    for reference in references:
        assert reference.startswith("images/"), f"{package}: image {reference!r} not in images/"
        assert (folder / reference).is_file(), f"{package}: {reference} does not exist"

    # What users copy must load from OptunaHub, not from a local folder or a fork.
    for text in (body, (folder / "example.py").read_text()):
        assert "repo_owner" not in text and str(REPO_ROOT) not in text
    assert "load_local_module" not in body
    assert f'load_module("{package}")' in body, f"{package}/README.md: no load_module example"


@pytest.mark.parametrize("package", PACKAGES)
def test_requirements_admit_this_optuna_nas(package: str) -> None:
    lines = [
        line.strip()
        for line in (PACKAGE_ROOT / package / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    requirements = [Requirement(line) for line in lines]
    ours = [r for r in requirements if r.name == "optuna-nas"]
    assert len(ours) == 1, f"{package}/requirements.txt must name optuna-nas once: {lines}"
    version = _project_version()
    assert ours[0].specifier.contains(version), (
        f"{package}/requirements.txt ({ours[0]}) does not admit optuna-nas {version} "
        "(pyproject.toml): update the packages' requirements with the release"
    )
    if package == "benchmarks/nasbench301":
        assert "nb301" in ours[0].extras, "NAS-Bench-301 needs optuna-nas[nb301] (yahpo-gym)"


# ----------------------------------------------------------------------------------- loading
@pytest.mark.parametrize("package", PACKAGES)
def test_loads_with_load_local_module(package: str) -> None:
    module = load(package)
    assert module.__name__ == f"optunahub_registry.package.{package.replace('/', '.')}"
    assert module.__all__, f"{package} exports nothing"
    for name in module.__all__:
        obj = getattr(module, name)
        origin = getattr(obj, "__module__", "")
        # Everything is optuna-nas's own object, or (the benchmark's Problem) defined in the
        # package on top of it.
        assert origin.startswith(("optuna_nas.", module.__name__)), (name, origin)
        if origin.startswith("optuna_nas."):
            public = sys.modules[origin.rsplit("._", 1)[0]]
            assert getattr(public, name) is obj, f"{name} is not optuna-nas's {origin}.{name}"


def test_loaded_objects_work() -> None:
    sampler = load("samplers/regularized_evolution").RegularizedEvolutionSampler(seed=0)
    assert isinstance(sampler, BaseSampler)
    assert isinstance(load("samplers/rnn_controller").RNNControllerSampler(seed=0), BaseSampler)
    pruner = load("pruners/learning_curve").LearningCurvePruner(max_resource=5)
    assert isinstance(pruner, optuna.pruners.BasePruner)
    warm = load("samplers/zero_cost_warm_start")
    assert warm.warm_start is optuna_nas.samplers.warm_start
    problem_class = load("benchmarks/nasbench301").Problem
    assert issubclass(problem_class, optunahub.benchmarks.BaseProblem)


def _nb301_data() -> str:
    pytest.importorskip("yahpo_gym")
    try:
        folder = resolve_data_dir() / "nasbench301"
    except FileNotFoundError:
        pytest.skip("NAS-Bench-301 data not found (set OPTUNA_NAS_DATA)")
    if not (folder / "model.onnx").is_file():
        pytest.skip("NAS-Bench-301 data not found (set OPTUNA_NAS_DATA)")
    return str(folder.parent)


def test_nasbench301_problem() -> None:
    data = _nb301_data()
    problem = load("benchmarks/nasbench301").Problem(max_epochs=5, data_dir=data)
    assert problem.directions == [optuna.study.StudyDirection.MAXIMIZE]
    study = optuna.create_study(directions=problem.directions)
    study.optimize(problem, n_trials=3)
    for trial in study.trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        assert set(trial.params) == set(problem.search_space)
        assert trial.distributions == problem.search_space
        curve = problem.learning_curve(trial.params)
        assert len(curve) == 5 and sorted(trial.intermediate_values) == [0, 1, 2, 3, 4]
        assert [trial.intermediate_values[s] for s in range(5)] == pytest.approx(curve)
        assert trial.value == pytest.approx(problem.evaluate(trial.params)) == curve[-1]
        assert 0.0 < curve[-1] < 100.0


# ---------------------------------------------------------------------------------- examples
@pytest.mark.parametrize("package", PACKAGES)
def test_example_runs(package: str, tmp_path: Path) -> None:
    args = [sys.executable, str(PACKAGE_ROOT / package / "example.py")]
    if package == "benchmarks/nasbench301":
        args.append(_nb301_data())
    path = os.environ.get("PYTHONPATH")
    env = {
        **os.environ,
        **EXAMPLE_ENV[package],
        "PYTHONPATH": str(REPO_ROOT) + (os.pathsep + path if path else ""),
        "OPTUNAHUB_REGISTRY_ROOT": str(PACKAGE_ROOT),
    }
    result = _run(args, cwd=tmp_path, env=env, timeout=180)
    assert result.returncode == 0, _describe(result)
    out = result.stdout
    assert re.search(r"^best (value|accuracy) -?\d+\.\d+", out, flags=re.MULTILINE), out
    n_trials = int(EXAMPLE_ENV[package]["N_TRIALS"])
    if package == "samplers/regularized_evolution":
        # Past the random warm-up of 15 trials, every trial is a mutated child.
        assert f"{n_trials - 15} of {n_trials} trials were mutated children" in out, out
    elif package == "samplers/rnn_controller":
        assert re.search(rf"^{n_trials} trials; log-probability .* -\d+\.\d+$", out, re.M), out
    elif package == "samplers/zero_cost_warm_start":
        assert "warm start: 3 cells scored" in out, out
        assert f"ranks of the trials: [1, 2, 3{', None' * (n_trials - 3)}]" in out, out
        assert "moves of the children: ['" in out, out  # one child past the 10 warm-up trials
    elif package == "pruners/learning_curve":
        pruned = re.search(r"; (\d+) of (\d+) pruned", out)
        assert pruned is not None and int(pruned.group(2)) == n_trials, out
        assert int(pruned.group(1)) > 0, out
        assert "LearningCurvePruner at epoch" in out, out
    elif package == "benchmarks/nasbench301":
        accuracy = re.search(r"best accuracy (\d+\.\d+)% \((\d+) of (\d+) pruned\)", out)
        assert accuracy is not None and 0 < float(accuracy.group(1)) < 100, out
        assert int(accuracy.group(3)) == n_trials, out
        assert "Genotype(normal=[" in out, out


# ---------------------------------------------- Optuna's sampler conformance, through optunahub
@pytest.fixture(
    params=[{}, {"population_size": 2, "sample_size": 2}], ids=["default", "tiny"], scope="module"
)
def _evolution_factory(request: pytest.FixtureRequest) -> Callable[[], BaseSampler]:
    sampler_class = load("samplers/regularized_evolution").RegularizedEvolutionSampler
    kwargs = request.param
    return lambda: sampler_class(**kwargs)


class TestHubRegularizedEvolution(BasicSamplerTestCase):
    @pytest.fixture
    def sampler(self, _evolution_factory: Callable[[], BaseSampler]) -> Callable[[], BaseSampler]:
        return _evolution_factory


class TestHubRegularizedEvolutionMultiObjective(MultiObjectiveSamplerTestCase):
    @pytest.fixture
    def sampler(self, _evolution_factory: Callable[[], BaseSampler]) -> Callable[[], BaseSampler]:
        return _evolution_factory


class TestHubRNNController(BasicSamplerTestCase, SingleOnlySamplerTestCase):
    @pytest.fixture
    def sampler(self) -> Callable[[], BaseSampler]:
        sampler_class = load("samplers/rnn_controller").RNNControllerSampler
        return lambda: sampler_class()


class TestHubRNNControllerMultiObjective(MultiObjectiveSamplerTestCase):
    @pytest.fixture
    def sampler(self) -> Callable[[], BaseSampler]:
        sampler_class = load("samplers/rnn_controller").RNNControllerSampler
        return lambda: sampler_class(reward_fn=lambda values: values[1] - values[0])


# ------------------------------------------------------------------ the registry's own checks
def test_registry_ruff() -> None:
    # The registry's hooks: `ruff --fix --exit-non-zero-on-fix` and `ruff-format` on Python
    # files, with the registry's settings (optunahub-registry/pyproject.toml); --no-fix here, so
    # that the check never rewrites the checkout.
    files = _hub_files(".py")
    for command in (["check", "--no-fix"], ["format", "--check", "--diff"]):
        result = _run([sys.executable, "-m", "ruff", *command, *files], cwd=HUB)
        assert result.returncode == 0, _describe(result)


def test_registry_mypy(tmp_path: Path) -> None:
    # The registry's hook runs mypy in its own environment, where optuna, optunahub and
    # optuna-nas are not installed (ignore_missing_imports makes them Any): following no
    # imports reproduces that (and takes seconds, not the half-minute of reading torch's and
    # Optuna's types; CONTRIBUTING.md gives the typed command, which passes too).
    result = _run(
        [sys.executable, "-m", "mypy", "--ignore-missing-imports", "--follow-imports=skip"]
        + ["--cache-dir", str(tmp_path), *_hub_files(".py")],
        cwd=HUB,
    )
    assert result.returncode == 0, _describe(result)


def test_registry_mdformat() -> None:
    # The registry's hook: mdformat 1.0 with the mdformat-myst plugin (and the plugins it
    # brings: front matter, tables, footnotes), on every Markdown file but its root README.
    for plugin in ("mdformat", "mdformat-myst"):
        importlib.metadata.version(plugin)  # raises when absent: the check would differ
    files = _hub_files(".md")
    assert len(files) >= len(PACKAGES)
    result = _run([sys.executable, "-m", "mdformat", "--check", *files], cwd=HUB)
    assert result.returncode == 0, _describe(result)


def test_front_matter_checker_rejects_bad_headers(tmp_path: Path) -> None:
    """The header check itself: each rule fires on a README that breaks it."""
    good = {
        "author": "a",
        "title": "T",
        "description": "D",
        "tags": ["sampler"],
        "optuna_versions": ["5.0.0"],
        "license": "MIT License",
    }
    readme = tmp_path / "README.md"

    def problems(**changes: Any) -> list[str]:
        header = {k: v for k, v in {**good, **changes}.items() if v is not KeyError}
        readme.write_text(f"---\n{yaml.safe_dump(header)}---\n\n## Abstract\n")
        return front_matter_problems(readme, "samplers")

    assert problems() == []
    assert problems(author=KeyError) == ["author is missing"]
    assert problems(title="") == ["title is empty"]
    assert problems(license="Apache-2.0") == ["license must be 'MIT License', got 'Apache-2.0'"]
    assert problems(tags=["pruner"]) == ["tags must include 'sampler', got ['pruner']"]
    assert problems(optuna_versions=[5.0]) == [
        "optuna_versions must be a list of strings, got [5.0]",
        "optuna version 5.0 is not X.Y.Z",
    ]
    assert problems(optuna_versions=["3.6.1"]) == [
        "optuna version 3.6.1 is outside optuna-nas's requirement"
    ]
    assert problems(extra="x") == ["unknown key 'extra'"]
    readme.write_text("## Abstract\n")
    assert front_matter_problems(readme, "samplers") != []
