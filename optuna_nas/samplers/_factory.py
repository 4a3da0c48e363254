"""Registry of samplers by name: ``create_sampler(name, seed=..., **kwargs)``.

The one place that turns a sampler name into an Optuna sampler, for the ``optuna-nas`` command
line, the benchmark scripts and user code alike. Every sampler is built with its own defaults;
keyword arguments are passed through to its constructor.
"""

from __future__ import annotations

from collections.abc import Callable
import inspect
from typing import TYPE_CHECKING
from typing import Any

import optuna


if TYPE_CHECKING:
    from optuna_nas.search_spaces import SearchSpace

# A sampler class, as a callable taking keyword arguments (``BaseSampler`` itself takes none).
_SamplerClass = Callable[..., optuna.samplers.BaseSampler]


def _random() -> _SamplerClass:
    return optuna.samplers.RandomSampler


def _tpe() -> _SamplerClass:
    return optuna.samplers.TPESampler


def _nsgaii() -> _SamplerClass:
    return optuna.samplers.NSGAIISampler


def _evolution() -> _SamplerClass:
    from optuna_nas.samplers._evolution import RegularizedEvolutionSampler

    return RegularizedEvolutionSampler


def _rnn() -> _SamplerClass:
    from optuna_nas.samplers._rnn_controller import RNNControllerSampler

    return RNNControllerSampler


# name -> (loader of the class, whether its constructor takes ``search_space``)
_REGISTRY: dict[str, tuple[Callable[[], _SamplerClass], bool]] = {
    "random": (_random, False),
    "tpe": (_tpe, False),
    "nsgaii": (_nsgaii, False),
    "evolution": (_evolution, True),
    "rnn": (_rnn, False),
}


def list_samplers() -> list[str]:
    """Names accepted by :func:`create_sampler`, sorted."""
    return sorted(_REGISTRY)


def create_sampler(
    name: str,
    *,
    seed: int | None = None,
    search_space: SearchSpace[Any] | None = None,
    **kwargs: Any,
) -> optuna.samplers.BaseSampler:
    """Create a sampler by name, with the sampler's own defaults.

    ``random`` (:class:`optuna.samplers.RandomSampler`), ``tpe``
    (:class:`optuna.samplers.TPESampler`), ``nsgaii`` (:class:`optuna.samplers.NSGAIISampler`),
    ``evolution`` (:class:`~optuna_nas.samplers.RegularizedEvolutionSampler`) and ``rnn``
    (:class:`~optuna_nas.samplers.RNNControllerSampler`).

    Args:
        name: One of :func:`list_samplers`.
        seed: The sampler's seed.
        search_space: The NAS search space, for samplers that use it (``evolution`` mutates
            whole architectures with it); the others work define-by-run and ignore it.
        **kwargs: Other keyword arguments of the sampler's constructor.

    Returns:
        The sampler.

    Raises:
        ValueError: ``name`` is not registered, or ``kwargs`` holds an argument that the
            sampler's constructor does not take (the message names it and lists those it
            takes); the constructor's own validation errors pass through.

    Example:
        >>> import optuna
        >>> from optuna_nas.samplers import create_sampler
        >>> sampler = create_sampler("tpe", seed=0, n_startup_trials=5)
        >>> isinstance(sampler, optuna.samplers.TPESampler)
        True
    """
    try:
        load, takes_space = _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown sampler {name!r}; available: {list_samplers()!r}.") from None
    cls = load()
    accepted = [
        p.name
        for p in inspect.signature(cls).parameters.values()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        bad = ", ".join(repr(k) for k in unknown)
        label = getattr(cls, "__name__", repr(cls))
        raise ValueError(
            f"Sampler {name!r} ({label}) does not take argument(s) {bad}; it takes "
            f"{[a for a in accepted if a not in ('seed', 'search_space')]!r} besides seed"
            + (" and search_space." if takes_space else ".")
        )
    if takes_space:
        kwargs["search_space"] = search_space
    return cls(seed=seed, **kwargs)
