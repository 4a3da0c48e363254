"""Warm-start a study with the best-scored of many random architectures (zero-cost proxies)."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
import math
import time
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from optuna_nas._validation import check_int
from optuna_nas._validation import check_seed


if TYPE_CHECKING:
    import optuna

    from optuna_nas.search_spaces import SearchSpace


__all__ = [
    "USER_ATTR_N_CANDIDATES",
    "USER_ATTR_RANK",
    "USER_ATTR_SCORE",
    "USER_ATTR_SECONDS",
    "WARM_START_KEY_PREFIX",
    "WarmStartCandidate",
    "WarmStartResult",
    "warm_start",
    "warm_start_key",
]

#: Prefix of the study system attribute that records a warm start (see :func:`warm_start_key`).
WARM_START_KEY_PREFIX = "optuna_nas:warm_start"
#: User attribute of an enqueued trial: its architecture's score.
USER_ATTR_SCORE = "warm_start:score"
#: User attribute of an enqueued trial: its rank among the candidates (1 = best-scored).
USER_ATTR_RANK = "warm_start:rank"
#: User attribute of an enqueued trial: the number of candidates scored.
USER_ATTR_N_CANDIDATES = "warm_start:n_candidates"
#: User attribute of an enqueued trial: the seconds the whole warm start spent scoring.
USER_ATTR_SECONDS = "warm_start:seconds"

# Distinct draws end after this many draws per wanted candidate (a space with fewer
# architectures, or whose strings collapse many parameter sets, yields fewer candidates).
_DRAWS_PER_CANDIDATE = 20


@dataclass(frozen=True)
class WarmStartCandidate:
    """One enqueued architecture of :func:`warm_start`.

    Attributes:
        arch: The architecture (of the space given to :func:`warm_start`).
        params: Its Optuna parameters (``space.to_params(arch)``), as enqueued.
        score: Its score.
        rank: 1 for the best-scored candidate, 2 for the next, ...
        seconds: The seconds its scoring took.
    """

    arch: Any
    params: dict[str, Any]
    score: float
    rank: int
    seconds: float


class WarmStartResult(list[WarmStartCandidate]):
    """The enqueued candidates of :func:`warm_start`, best first, and facts about the run.

    A ``list`` of :class:`WarmStartCandidate` with these attributes:

    Attributes:
        seconds: Total seconds spent scoring (all candidates, not only the enqueued ones).
        n_candidates: The number of distinct architectures scored.
        enqueued: ``False`` when the study had this warm start already (nothing was scored or
            enqueued: the candidates were read back from the study).
        key: The study system attribute that records the warm start.
    """

    def __init__(
        self,
        candidates: list[WarmStartCandidate],
        *,
        seconds: float,
        n_candidates: int,
        enqueued: bool,
        key: str,
    ) -> None:
        super().__init__(candidates)
        self.seconds = seconds
        self.n_candidates = n_candidates
        self.enqueued = enqueued
        self.key = key


def warm_start_key(space: SearchSpace[Any], *, seed: int, n_candidates: int, top_k: int) -> str:
    """The study system attribute that records a warm start with these settings.

    Example:
        >>> from optuna_nas.search_spaces import create_search_space
        >>> warm_start_key(create_search_space("nasbench201"), seed=0, n_candidates=1000, top_k=10)
        'optuna_nas:warm_start:nasbench201:seed=0:n_candidates=1000:top_k=10'
    """
    name = getattr(space, "name", "") or type(space).__name__
    return f"{WARM_START_KEY_PREFIX}:{name}:seed={seed}:n_candidates={n_candidates}:top_k={top_k}"


def warm_start(
    study: optuna.Study,
    space: SearchSpace[Any],
    score: Callable[[Any], float],
    *,
    n_candidates: int = 1000,
    top_k: int = 10,
    seed: int = 0,
    user_attrs: Mapping[str, Any] | None = None,
) -> WarmStartResult:
    """Score ``n_candidates`` random architectures and enqueue the ``top_k`` best-scored first.

    The warm start of Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021:
    a zero-cost proxy (e.g. synflow, :class:`optuna_nas.estimators.ProxyScorer`) scores many
    untrained cells in the time of a few trainings, and the search begins with the most
    promising ones (on NAS-Bench-201 CIFAR-100 it brought aging evolution to 73.0% with about 30
    trained models instead of about 170).

    ``n_candidates`` distinct architectures (by :meth:`~optuna_nas.search_spaces.SearchSpace.
    to_string`) are drawn with ``space.sample`` from a generator seeded with ``seed``, scored
    with ``score(arch)`` (higher is better; NaN and infinite scores are never enqueued), and the
    ``top_k`` best (ties: the earlier draw) are enqueued, best first, with
    ``study.enqueue_trial(space.to_params(arch), user_attrs=...)``. The enqueued trials fix the
    space's parameters only, so this works with any sampler (Optuna's, or the package's) and
    with the study's other hyperparameters, which the sampler suggests as usual. Their user
    attributes are ``"warm_start:score"``, ``"warm_start:rank"`` (1 = best),
    ``"warm_start:n_candidates"`` and ``"warm_start:seconds"`` (the total scoring time of the
    warm start, the same on each of its trials), plus ``user_attrs``.

    **Idempotent.** The study system attribute :func:`warm_start_key` (space name, seed,
    ``n_candidates``, ``top_k``) records the run: its candidates (strings, parameters, scores,
    ranks, seconds) and the total seconds. Called again on the study (a resumed script), it
    scores and enqueues nothing and returns the recorded candidates (``enqueued=False``).
    Other settings make another warm start. Call it from one process before starting parallel
    workers: two processes calling it at the same moment could both enqueue.

    Example:
        .. code-block:: python

            import optuna
            from optuna_nas.samplers import warm_start
            from optuna_nas.search_spaces import create_search_space

            space = create_search_space("nasbench201")

            def n_convs(cell):  # a stand-in for a zero-cost proxy
                return sum(op.startswith("nor_conv") for op in cell.ops)

            study = optuna.create_study(direction="maximize")
            best = warm_start(study, space, n_convs, n_candidates=100, top_k=5)
            print(best.seconds, [c.score for c in best])  # the first 5 trials run these

    Args:
        study: The study to enqueue into.
        space: The search space (its ``sample``, ``to_params``, ``from_params``, ``to_string``).
        score: ``score(arch) -> float``, higher is better; deterministic for an architecture.
        n_candidates: Number of distinct random architectures to score (fewer if the space has
            fewer).
        top_k: Number of the best-scored to enqueue, at most ``n_candidates``.
        seed: Seed of the random architectures.
        user_attrs: More user attributes for every enqueued trial.

    Returns:
        The enqueued candidates, best first, as a :class:`WarmStartResult` (with the total
        ``seconds``).

    Raises:
        ValueError: An argument is invalid; the message names it.
    """
    check_int("n_candidates", n_candidates, minimum=1)
    check_int("top_k", top_k, minimum=1, maximum=int(n_candidates))
    check_seed(seed, allow_none=False)
    if not callable(score):
        raise ValueError(f"score must be callable, got {score!r}.")
    for method in ("sample", "to_params", "from_params", "to_string"):
        if not callable(getattr(space, method, None)):
            raise ValueError(f"space must be an optuna-nas SearchSpace, got {space!r}.")
    if user_attrs is not None and not isinstance(user_attrs, Mapping):
        raise ValueError(f"user_attrs must be a mapping or None, got {user_attrs!r}.")
    n_candidates, top_k, seed = int(n_candidates), int(top_k), int(seed)

    key = warm_start_key(space, seed=seed, n_candidates=n_candidates, top_k=top_k)
    recorded = study._storage.get_study_system_attrs(study._study_id).get(key)
    if recorded is not None:
        return _read_back(space, recorded, key)

    archs = _distinct_samples(space, n_candidates, seed)
    scored: list[tuple[float, int, float]] = []  # (score, draw index, seconds)
    total = 0.0
    for i, arch in enumerate(archs):
        start = time.perf_counter()
        value = float(score(arch))
        seconds = time.perf_counter() - start
        total += seconds
        if math.isfinite(value):
            scored.append((value, i, seconds))
    scored.sort(key=lambda item: (-item[0], item[1]))

    candidates = [
        WarmStartCandidate(
            arch=archs[i],
            params=space.to_params(archs[i]),
            score=value,
            rank=rank,
            seconds=seconds,
        )
        for rank, (value, i, seconds) in enumerate(scored[:top_k], start=1)
    ]
    # Recorded first: an interrupted enqueue is not repeated (its trials are in the study).
    study._storage.set_study_system_attr(
        study._study_id,
        key,
        {
            "space": getattr(space, "name", ""),
            "seed": seed,
            "n_candidates": len(archs),
            "top_k": top_k,
            "seconds": total,
            "candidates": [
                {
                    "arch": space.to_string(c.arch),
                    "params": c.params,
                    "score": c.score,
                    "rank": c.rank,
                    "seconds": c.seconds,
                }
                for c in candidates
            ],
        },
    )
    for c in candidates:
        attrs = dict(user_attrs or {})
        attrs.update(
            {
                USER_ATTR_SCORE: c.score,
                USER_ATTR_RANK: c.rank,
                USER_ATTR_N_CANDIDATES: len(archs),
                USER_ATTR_SECONDS: total,
            }
        )
        study.enqueue_trial(dict(c.params), user_attrs=attrs)
    return WarmStartResult(
        candidates, seconds=total, n_candidates=len(archs), enqueued=True, key=key
    )


def _distinct_samples(space: SearchSpace[Any], n: int, seed: int) -> list[Any]:
    """Up to ``n`` distinct architectures drawn with ``space.sample``, in draw order."""
    rng = np.random.default_rng(seed)
    limit = getattr(space, "num_architectures", None)
    wanted = min(n, limit) if isinstance(limit, int) and limit > 0 else n
    archs: list[Any] = []
    seen: set[str] = set()
    for _ in range(_DRAWS_PER_CANDIDATE * wanted):
        arch = space.sample(rng)
        text = space.to_string(arch)
        if text not in seen:
            seen.add(text)
            archs.append(arch)
            if len(archs) == wanted:
                break
    return archs


def _read_back(space: SearchSpace[Any], recorded: Mapping[str, Any], key: str) -> WarmStartResult:
    candidates = [
        WarmStartCandidate(
            arch=space.from_params(c["params"]),
            params=dict(c["params"]),
            score=float(c["score"]),
            rank=int(c["rank"]),
            seconds=float(c["seconds"]),
        )
        for c in recorded["candidates"]
    ]
    return WarmStartResult(
        candidates,
        seconds=float(recorded["seconds"]),
        n_candidates=int(recorded["n_candidates"]),
        enqueued=False,
        key=key,
    )
