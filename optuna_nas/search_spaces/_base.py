"""The search-space contract: architecture as data plus a shared builder."""

from __future__ import annotations

import abc
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
import inspect
import math
from typing import TYPE_CHECKING
from typing import Any
from typing import ClassVar
from typing import Generic
from typing import TypeVar

import numpy as np
from optuna.distributions import CategoricalDistribution

from optuna_nas.trial_outcome import InvalidArchitectureError
from optuna_nas.trial_outcome import invalid_architecture


if TYPE_CHECKING:
    import optuna
    import torch

    from optuna_nas.darts._supernet import Supernet


ArchT = TypeVar("ArchT")

#: Random generators accepted by :meth:`SearchSpace.sample` and :meth:`SearchSpace.mutate`.
RandomGenerator = np.random.RandomState | np.random.Generator


@dataclass(frozen=True)
class Decision:
    """One categorical decision of a search space.

    Attributes:
        name: The Optuna parameter name, namespaced by the space (e.g. ``nb201/edge_1_0``), so
            it never clashes with the user's own hyperparameters in the same trial.
        choices: The values ``trial.suggest_categorical`` may return, in a fixed order.
    """

    name: str
    choices: tuple[Any, ...]

    def __post_init__(self) -> None:
        if len(self.choices) == 0:
            raise ValueError(f"Decision {self.name!r} has no choices.")
        if len(set(self.choices)) != len(self.choices):
            raise ValueError(f"Decision {self.name!r} has repeated choices: {self.choices!r}.")


@dataclass
class CellGraph:
    """A drawable DAG: nodes left to right in topological order, labelled edges.

    :meth:`SearchSpace.cell_graphs` describes an architecture with these, and
    :func:`optuna_nas.visualization.cell_diagram_svg` draws them.

    Attributes:
        title: The panel's title, e.g. ``"normal cell"``.
        nodes: Node labels, in drawing order.
        edges: ``(from, to, label)`` with node indices; an empty label draws a dashed edge.
    """

    title: str
    nodes: list[str]
    edges: list[tuple[int, int, str]] = field(default_factory=list)


def check_build_options(
    space: str, options: Mapping[str, Any], network: Callable[..., Any]
) -> None:
    """Check that ``options`` are keyword-only options of ``network`` (a network class).

    A space's :meth:`SearchSpace.build` passes its options on to its network class, so the
    network's signature is the one place that names them and sets their defaults.

    Raises:
        ValueError: An option is not one of the network's (``num_classes`` and ``in_channels``
            are :meth:`SearchSpace.build`'s own arguments).
    """
    parameters = inspect.signature(network).parameters.values()
    known = {p.name for p in parameters if p.kind is p.KEYWORD_ONLY}
    known -= {"num_classes", "in_channels"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(
            f"Unknown build options for {space}: {unknown!r}; expected some of {sorted(known)!r}."
        )


def random_index(rng: RandomGenerator, n: int) -> int:
    """Draw an index in ``[0, n)`` from either NumPy random API."""
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(n))
    return int(rng.randint(n))


class SearchSpace(abc.ABC, Generic[ArchT]):
    """A NAS search space: suggests architectures define-by-run and builds them.

    An architecture is plain, immutable data (``ArchT``). Every space round-trips exactly between
    three forms: Optuna parameters (:meth:`to_params`/:meth:`from_params`, for
    ``study.enqueue_trial`` and ``study.add_trial``), the architecture object, and a string
    (:meth:`to_string`/:meth:`from_string`, e.g. the NAS-Bench-201 or DARTS genotype format).

    Subclasses set their decisions (``self._decisions``, see :attr:`decisions`) and implement
    :meth:`from_params`, :meth:`to_params`, :meth:`to_string`, :meth:`from_string` and
    :meth:`build`. The default :meth:`suggest`, :meth:`sample` and :meth:`mutate` work decision
    by decision. Two optional hooks plug a space into the rest of the package:
    :meth:`create_supernet` (one-shot DARTS search) and :meth:`cell_graphs` (cell diagrams); a
    space without them says so with ``NotImplementedError``. Invalid architectures,
    parameters and strings raise :class:`~optuna_nas.InvalidArchitectureError` (a
    ``ValueError``), which fails a trial instead of the study; invalid constructor or build
    options (configuration errors) raise plain ``ValueError``.

    Example:
        .. code-block:: python

            import optuna
            from optuna_nas.search_spaces import create_search_space

            space = create_search_space("nasbench201")

            def objective(trial):
                arch = space.suggest(trial)
                lr = trial.suggest_float("lr", 1e-3, 1e-1, log=True)  # the user's own HP
                model = space.build(arch, num_classes=10)
                return sum(p.numel() for p in model.parameters()) * lr

            optuna.create_study().optimize(objective, n_trials=2)
    """

    #: Registry name of the space (``create_search_space(name)``).
    name: str = ""
    #: Namespace of the space's Optuna parameter names (``f"{prefix}/..."``).
    prefix: str = ""
    #: The class of the space's architectures, if it has one: lets
    #: :func:`optuna_nas.visualization.cell_graphs` find the registered space of an architecture.
    architecture_type: ClassVar[type[Any] | None] = None

    #: The decisions that :attr:`decisions` returns; subclasses set it in their constructor.
    _decisions: tuple[Decision, ...]

    # ----------------------------------------------------------------- abstract contract
    @property
    def decisions(self) -> Sequence[Decision]:
        """The ordered categorical decisions, in the order :meth:`suggest` asks them.

        Subclasses set ``self._decisions`` in their constructor, or override this property.
        """
        return self._decisions

    @abc.abstractmethod
    def from_params(self, params: Mapping[str, Any]) -> ArchT:
        """Build the architecture from Optuna parameters.

        Parameters outside this space's namespace are ignored, so ``space.from_params(
        trial.params)`` works in a study that also tunes other hyperparameters.

        Raises:
            InvalidArchitectureError: A decision is missing or has a value outside its
                choices.
        """

    @abc.abstractmethod
    def to_params(self, arch: ArchT) -> dict[str, Any]:
        """The Optuna parameters that :meth:`suggest` would record for ``arch``."""

    @abc.abstractmethod
    def to_string(self, arch: ArchT) -> str:
        """The canonical string of ``arch``."""

    @abc.abstractmethod
    def from_string(self, text: str) -> ArchT:
        """Parse a string made by :meth:`to_string`.

        Raises:
            InvalidArchitectureError: The string is malformed, names an unknown operation or
                has the wrong number of inputs; the message quotes the offending part.
        """

    @abc.abstractmethod
    def build(
        self, arch: ArchT, *, num_classes: int, in_channels: int = 3, **kwargs: Any
    ) -> torch.nn.Module:
        """Build the network of ``arch`` as a ``torch.nn.Module`` (on the CPU, float32)."""

    # ----------------------------------------------------------------- optional hooks
    def create_supernet(
        self, *, num_classes: int, in_channels: int = 3, **kwargs: Any
    ) -> Supernet:
        """The DARTS supernet of this space, whose ``derive()`` gives architectures of it.

        :func:`optuna_nas.darts.create_supernet` and :class:`optuna_nas.darts.DartsSearch` find
        the supernet here; override it to make a space searchable by DARTS (``darts`` and
        ``nasbench201`` do). The supernet must be an :class:`optuna_nas.darts.Supernet`.

        Args:
            num_classes: Output classes.
            in_channels: Image channels.
            **kwargs: Options of the space's supernet (width, depth, ...).

        Raises:
            NotImplementedError: The space has no supernet.
        """
        raise NotImplementedError(
            f"Search space {self.name!r} ({type(self).__name__}) has no DARTS supernet; "
            "a space gets one by overriding SearchSpace.create_supernet."
        )

    @property
    def has_supernet(self) -> bool:
        """Whether the space overrides :meth:`create_supernet` (checked without building)."""
        return type(self).create_supernet is not SearchSpace.create_supernet

    def cell_graphs(self, arch: ArchT) -> list[CellGraph]:
        """The drawable graphs of ``arch`` (one per cell type), for cell diagrams.

        Override it to draw a space's architectures with
        :func:`optuna_nas.visualization.cell_diagram_svg`; the built-in spaces do.

        Raises:
            NotImplementedError: The space draws no diagrams.
        """
        raise NotImplementedError(
            f"Search space {self.name!r} ({type(self).__name__}) draws no cell diagram; "
            "a space gets one by overriding SearchSpace.cell_graphs."
        )

    # ----------------------------------------------------------------- shared behaviour
    def suggest(self, trial: optuna.Trial) -> ArchT:
        """Suggest an architecture define-by-run: one ``suggest_categorical`` per decision.

        Raises:
            InvalidArchitectureError: A value is not valid (e.g. an enqueued trial's).
            ParameterConflictError: The study has a parameter of the same name with another
                distribution (e.g. resumed with other operations).
        """
        params: dict[str, Any] = {}
        for d in self.decisions:
            distribution = CategoricalDistribution(d.choices)
            with invalid_architecture(trial=trial, name=d.name, distribution=distribution):
                params[d.name] = trial.suggest_categorical(d.name, d.choices)
        return self.from_params(params)

    def sample(self, rng: RandomGenerator) -> ArchT:
        """Draw an architecture uniformly at random (each decision independently)."""
        params = {d.name: d.choices[random_index(rng, len(d.choices))] for d in self.decisions}
        return self.from_params(params)

    def mutate(self, arch: ArchT, rng: RandomGenerator) -> ArchT:
        """Return ``arch`` with exactly one decision changed to a different value."""
        params = self.to_params(arch)
        mutable = [d for d in self.decisions if len(d.choices) > 1]
        if not mutable:
            raise ValueError(f"Search space {self.name!r} has no decision with two choices.")
        decision = mutable[random_index(rng, len(mutable))]
        others = [c for c in decision.choices if c != params[decision.name]]
        params[decision.name] = others[random_index(rng, len(others))]
        return self.from_params(params)

    @property
    def num_architectures(self) -> int:
        """Number of distinct parameter assignments (isomorphic cells counted separately)."""
        return math.prod(len(d.choices) for d in self.decisions)

    def owns_param(self, param_name: str) -> bool:
        """Whether ``param_name`` is one of this space's Optuna parameter names."""
        return param_name.startswith(f"{self.prefix}/")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    # ----------------------------------------------------------------- helpers for subclasses
    def _read_decisions(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Read and validate every decision's value from ``params``."""
        values: dict[str, Any] = {}
        for decision in self.decisions:
            if decision.name not in params:
                raise InvalidArchitectureError(
                    f"Parameter {decision.name!r} of search space {self.name!r} is missing."
                )
            value = params[decision.name]
            if value not in decision.choices:
                raise InvalidArchitectureError(
                    f"Parameter {decision.name!r} has value {value!r}, "
                    f"which is not one of {list(decision.choices)!r}."
                )
            values[decision.name] = value
        return values
