"""Scoring many architectures of a search space with zero-cost proxies."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import time
from typing import Any

import numpy as np
import torch

from optuna_nas._validation import check_positive_ints
from optuna_nas._validation import check_seed
from optuna_nas.estimators._base import Proxy
from optuna_nas.estimators._registry import create_proxy
from optuna_nas.samplers._randomness import derive_seed
from optuna_nas.search_spaces._base import SearchSpace


class ProxyScorer:
    """Score architectures of a space with zero-cost proxies, without training them.

    Each architecture's network is built with ``torch`` seeded by
    ``derive_seed(seed, space.to_string(arch))`` (the global random state is restored
    afterwards), so an architecture gets the same initialisation, hence the same scores,
    whatever was scored before it and in whichever process. The scorer is also a plain
    ``Callable[[arch], float]``: ``scorer(arch)`` is the first proxy's score, the interface
    of a proxy warm-start or a training-free objective.

    Args:
        space: The search space whose architectures are scored.
        proxies: Proxy names (:func:`~optuna_nas.estimators.list_proxies`) or
            :class:`~optuna_nas.estimators.Proxy` objects; the first is what ``scorer(arch)``
            returns.
        num_classes: Output classes of the built networks.
        in_channels: Image channels.
        image_size: Image height and width: an int or ``(height, width)``.
        build_kwargs: Further options of ``space.build`` (e.g. ``channels``).
        batch: ``(inputs, targets)`` tensors, ``(N, in_channels, H, W)`` and ``(N,)``, for the
            data-dependent proxies (the same batch for every architecture). Data-free proxies
            read only the image shape.
        seed: Seed of the networks' initialisations.
        device: Where networks are built and scored.

    Raises:
        ValueError: An unknown proxy, a repeated one, a data-dependent proxy without a batch,
            or a batch of the wrong shape.

    Example:
        .. code-block:: python

            import numpy as np
            from optuna_nas.estimators import ProxyScorer
            from optuna_nas.search_spaces import create_search_space

            space = create_search_space("nasbench201")
            scorer = ProxyScorer(
                space, proxies=("synflow", "params"), num_classes=10, in_channels=3,
                image_size=32, build_kwargs={"channels": 4, "cells_per_stage": 1},
            )
            arch = space.sample(np.random.RandomState(0))
            print(scorer.score(arch))  # {'synflow': ..., 'params': ..., 'seconds': ...}
            print(scorer(arch))  # the synflow score
    """

    def __init__(
        self,
        space: SearchSpace[Any],
        *,
        proxies: Sequence[str | Proxy] = ("synflow",),
        num_classes: int,
        in_channels: int,
        image_size: int | tuple[int, int],
        build_kwargs: Mapping[str, Any] | None = None,
        batch: tuple[torch.Tensor, torch.Tensor] | None = None,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        if not isinstance(space, SearchSpace):
            raise ValueError(f"space must be a SearchSpace, got {space!r}.")
        if isinstance(proxies, (str, Proxy)):
            proxies = (proxies,)
        self.proxies: tuple[Proxy, ...] = tuple(
            p if isinstance(p, Proxy) else create_proxy(p) for p in proxies
        )
        names = [p.name for p in self.proxies]
        if not names:
            raise ValueError("proxies must name at least one proxy, got none.")
        if len(set(names)) != len(names) or "seconds" in names:
            raise ValueError(f"proxies must have distinct names other than 'seconds': {names!r}.")
        sizes: dict[str, Any] = {"num_classes": num_classes, "in_channels": in_channels}
        if isinstance(image_size, (tuple, list)):
            if len(image_size) != 2:
                raise ValueError(
                    f"image_size must be an int or (height, width), got {image_size!r}."
                )
            sizes.update({"image_size[0]": image_size[0], "image_size[1]": image_size[1]})
            size = tuple(image_size)
        else:
            sizes["image_size"] = image_size
            size = (image_size, image_size)
        check_positive_ints("ProxyScorer sizes", sizes)
        check_seed(seed, allow_none=False)
        self.space = space
        self.num_classes = int(num_classes)
        self.in_channels = int(in_channels)
        self.image_size = (int(size[0]), int(size[1]))
        self.build_kwargs = dict(build_kwargs or {})
        self.seed = int(seed)
        self.device = torch.device(device)
        shape = (self.in_channels, *self.image_size)
        data_proxies = [p.name for p in self.proxies if p.needs_data]
        if batch is None:
            if data_proxies:
                raise ValueError(f"Proxies {data_proxies!r} need batch=(inputs, targets).")
            self._inputs = torch.zeros((1, *shape), device=self.device)
            self._targets: torch.Tensor | None = None
        else:
            inputs, targets = batch
            if tuple(inputs.shape[1:]) != shape or inputs.shape[0] < 1:
                raise ValueError(
                    f"batch inputs must have shape (N, {', '.join(map(str, shape))}), got "
                    f"{tuple(inputs.shape)}."
                )
            if tuple(targets.shape) != (inputs.shape[0],):
                raise ValueError(
                    f"batch targets must have shape ({inputs.shape[0]},), got "
                    f"{tuple(targets.shape)}."
                )
            self._inputs = inputs.to(self.device)
            self._targets = targets.to(self.device)

    @property
    def proxy_names(self) -> tuple[str, ...]:
        """The proxies' names, in order."""
        return tuple(p.name for p in self.proxies)

    def build(self, arch: Any) -> torch.nn.Module:
        """The network of ``arch`` with its derived initialisation, on :attr:`device`."""
        seed = derive_seed(self.seed, self.space.to_string(arch))
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            network = self.space.build(
                arch,
                num_classes=self.num_classes,
                in_channels=self.in_channels,
                **self.build_kwargs,
            )
        return network.to(self.device)

    def score(self, arch: Any) -> dict[str, float]:
        """Every proxy's score of ``arch``, and ``"seconds"``: the wall time of building and
        scoring its network."""
        start = time.perf_counter()
        network = self.build(arch)
        scores: dict[str, float] = {}
        # The proxies that leave the network as it is score it first; each of the others then
        # consumes a network of its own: a rebuild (seeded, so the same weights; cheaper than
        # the deep copy a proxy makes otherwise), the last one this network.
        keeping = [p for p in self.proxies if not p.modifies_network]
        consuming = [p for p in self.proxies if p.modifies_network]
        for proxy in keeping:
            scores[proxy.name] = proxy(network, self._inputs, self._targets)
        for i, proxy in enumerate(consuming):
            own = network if i == len(consuming) - 1 else self.build(arch)
            scores[proxy.name] = proxy(own, self._inputs, self._targets, consume=True)
        result = {p.name: scores[p.name] for p in self.proxies}
        result["seconds"] = time.perf_counter() - start
        return result

    def score_many(self, archs: Sequence[Any]) -> list[dict[str, float]]:
        """:meth:`score` of each architecture, in order."""
        return [self.score(arch) for arch in archs]

    def __call__(self, arch: Any) -> float:
        """The first proxy's score of ``arch``."""
        return self.score(arch)[self.proxies[0].name]

    def __repr__(self) -> str:
        return (
            f"ProxyScorer({self.space!r}, proxies={list(self.proxy_names)!r}, "
            f"num_classes={self.num_classes}, in_channels={self.in_channels}, "
            f"image_size={self.image_size}, seed={self.seed})"
        )


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks (1 = smallest), ties sharing their average rank; NaN ranks lowest."""
    values = np.where(np.isnan(values), -np.inf, values)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), dtype=float)
    sorted_values = values[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_values[j + 1] == sorted_values[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def vote(scores: Sequence[Mapping[str, float]], proxies: Sequence[str]) -> list[float]:
    """Combine proxies by averaging each architecture's rank under each of them.

    Abdelfattah et al. (ICLR 2021) combine ``synflow``, ``jacob_cov`` and ``snip`` by a
    majority vote; for a ranking of many architectures its natural form, used here, is the mean
    of the per-proxy ranks: each proxy ranks the architectures from 1 (worst) to ``n`` (best;
    ties share their average rank, NaN ranks worst), and an architecture's vote is the mean of
    its ranks, so a larger vote is better. For two architectures and three proxies the better
    vote is the majority's choice. Proxies are taken as higher-is-better (all built-in ones are).

    Args:
        scores: One mapping per architecture, e.g. :meth:`ProxyScorer.score_many`'s.
        proxies: The proxy names to combine (each a key of every mapping).

    Raises:
        ValueError: ``proxies`` is empty or a mapping lacks one of them.

    Example:
        >>> vote([{"a": 1.0, "b": 5.0}, {"a": 2.0, "b": 3.0}, {"a": 3.0, "b": 4.0}], ["a", "b"])
        [2.0, 1.5, 2.5]
    """
    proxies = [proxies] if isinstance(proxies, str) else list(proxies)
    if not proxies:
        raise ValueError("vote needs at least one proxy name, got none.")
    if not scores:
        return []
    ranks = []
    for name in proxies:
        missing = [i for i, s in enumerate(scores) if name not in s]
        if missing:
            raise ValueError(f"Proxy {name!r} is missing from the scores at indices {missing!r}.")
        values = np.array([float(s[name]) for s in scores], dtype=float)
        ranks.append(_average_ranks(values))
    return [float(v) for v in np.mean(ranks, axis=0)]
