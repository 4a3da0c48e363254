"""Registry of zero-cost proxies: ``create_proxy(name, **kwargs)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from typing import TypeVar

from optuna_nas.estimators._base import Proxy


_FactoryT = TypeVar("_FactoryT", bound=Callable[..., Proxy])
_REGISTRY: dict[str, Callable[..., Proxy]] = {}


def register_proxy(name: str) -> Callable[[_FactoryT], _FactoryT]:
    """Class decorator that registers a proxy under ``name``.

    Raises:
        ValueError: ``name`` is already registered.
    """

    def decorator(factory: _FactoryT) -> _FactoryT:
        if name in _REGISTRY:
            raise ValueError(f"Proxy {name!r} is already registered.")
        _REGISTRY[name] = factory
        return factory

    return decorator


def create_proxy(name: str, **kwargs: Any) -> Proxy:
    """Create a registered zero-cost proxy by name.

    Args:
        name: One of :func:`list_proxies`.
        **kwargs: Passed to the proxy's constructor (e.g. ``input_shape`` of ``synflow``).

    Raises:
        ValueError: ``name`` is not registered.

    Example:
        .. code-block:: python

            import torch
            from torch import nn
            from optuna_nas.estimators import create_proxy

            net = nn.Sequential(nn.Flatten(), nn.Linear(12, 4, bias=False), nn.ReLU(),
                                nn.Linear(4, 3))
            synflow = create_proxy("synflow", input_shape=(3, 2, 2))
            print(synflow(net), create_proxy("params")(net))  # ..., 63
            x, y = torch.randn(8, 3, 2, 2), torch.randint(0, 3, (8,))
            print(create_proxy("snip")(net, x, y))
    """
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"Unknown proxy {name!r}; available: {list_proxies()!r}.") from None
    return factory(**kwargs)


def list_proxies() -> list[str]:
    """Names of the registered proxies, sorted."""
    return sorted(_REGISTRY)
