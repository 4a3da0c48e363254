"""Registry of search spaces: ``create_search_space(name, **kwargs)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from typing import TypeVar

from optuna_nas.search_spaces._base import SearchSpace


_FactoryT = TypeVar("_FactoryT", bound=Callable[..., SearchSpace[Any]])
_REGISTRY: dict[str, Callable[..., SearchSpace[Any]]] = {}


def register_search_space(name: str) -> Callable[[_FactoryT], _FactoryT]:
    """Class decorator that registers a search space under ``name``.

    Raises:
        ValueError: ``name`` is already registered.
    """

    def decorator(factory: _FactoryT) -> _FactoryT:
        if name in _REGISTRY:
            raise ValueError(f"Search space {name!r} is already registered.")
        _REGISTRY[name] = factory
        return factory

    return decorator


def create_search_space(name: str, **kwargs: Any) -> SearchSpace[Any]:
    """Create a registered search space by name.

    Args:
        name: One of :func:`list_search_spaces`.
        **kwargs: Passed to the space's constructor.

    Raises:
        ValueError: ``name`` is not registered.

    Example:
        .. code-block:: python

            from optuna_nas.search_spaces import create_search_space

            space = create_search_space("nasbench201")
            print(space.num_architectures)  # 15625
    """
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"Unknown search space {name!r}; available: {list_search_spaces()!r}."
        ) from None
    return factory(**kwargs)


def list_search_spaces() -> list[str]:
    """Names of the registered search spaces, sorted."""
    return sorted(_REGISTRY)


def search_space_for(arch: Any) -> SearchSpace[Any] | None:
    """The registered space (with default arguments) whose ``architecture_type`` ``arch`` is.

    Returns ``None`` when no registered space declares the type of ``arch``.
    """
    for name in list_search_spaces():
        factory = _REGISTRY[name]
        arch_type = getattr(factory, "architecture_type", None)
        if arch_type is not None and isinstance(arch, arch_type):
            return factory()
    return None
