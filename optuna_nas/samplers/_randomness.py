"""Randomness keyed by ``(seed, trial number, purpose)`` instead of a process's history.

Both NAS samplers draw every random number of a trial from a generator seeded by the sampler's
seed, the trial's number and what the draw is for (a parameter name, the evolution's plan, ...).
Trial numbers are unique within a study, so several workers given the same seed on one storage
still draw differently, and a study resumed with a new sampler object draws exactly what an
uninterrupted run would have drawn: neither depends on how many numbers a process drew before.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution

from optuna_nas._optuna_compat import SearchSpaceTransform


__all__ = [
    "derive_seed",
    "entropy_seed",
    "sample_uniform",
    "trial_generator",
    "trial_random_state",
]


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from ``parts``, identical in every process (unlike ``hash``)."""
    digest = hashlib.sha256(repr(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def entropy_seed() -> int:
    """A seed in ``[0, 2**32)`` from OS entropy: what an unseeded sampler uses."""
    return secrets.randbits(32)


def trial_random_state(seed: int, trial_number: int, purpose: object) -> np.random.RandomState:
    """A fresh ``RandomState`` for one purpose of one trial.

    A string ``purpose`` (a parameter name) gives the stream that ``RandomSampler(seed=...)``
    seeded with ``derive_seed(seed, trial_number, name) % 2**32`` would use; other purposes
    should be tuples, which can never equal a parameter name.
    """
    return np.random.RandomState(derive_seed(seed, trial_number, purpose) % 2**32)


def trial_generator(seed: int, trial_number: int) -> np.random.Generator:
    """A fresh ``Generator`` for a trial (the RNN controller's decisions)."""
    return np.random.Generator(np.random.PCG64([seed, trial_number]))


def sample_uniform(distribution: BaseDistribution, rng: np.random.RandomState) -> Any:
    """One value of ``distribution`` drawn as :class:`~optuna.samplers.RandomSampler` draws it.

    Uniform in the transformed box (log scale and steps included; a categorical takes the
    argmax of uniform scores), so with the same ``RandomState`` the value equals
    ``RandomSampler``'s.
    """
    transform = SearchSpaceTransform({"x": distribution})
    bounds = transform.bounds
    return transform.untransform(rng.uniform(bounds[:, 0], bounds[:, 1]))["x"]
