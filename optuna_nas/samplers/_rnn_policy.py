"""The LSTM policy behind :class:`~optuna_nas.samplers.RNNControllerSampler` (torch only).

Kept free of Optuna so its determinism contract is easy to read: the parameters are a pure
function of the seed and of the ordered sequence of ``(decisions, reward)`` pairs given to
:meth:`ControllerPolicy.apply`.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from collections.abc import Sequence
import contextlib
from dataclasses import dataclass
from dataclasses import field
import math

import numpy as np
import torch
from torch import nn

from optuna_nas.samplers._randomness import derive_seed


# Uniform init range of every controller weight, as in ENAS (Zoph & Le use 0.08).
_INIT_RANGE = 0.1
# Bound on the gradient norm of one update; with normalized advantages typical norms are ~1,
# so this only catches outliers (e.g. a cell far below the baseline).
_MAX_GRAD_NORM = 5.0
# Normalized advantages are clipped to this magnitude so that one outlier reward (a cell that
# does not train at all) cannot dominate an update.
_MAX_ADVANTAGE = 5.0


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch ops on one intra-op thread for the duration of the block.

    The controller's tensors are tiny: thread-pool hand-offs cost far more than the math, and the
    number of threads changes float summation order, hence reproducibility. With OpenMP, torch's
    thread count is per calling thread, so other threads running torch at the same time are not
    affected.
    """
    previous = torch.get_num_threads()
    if previous == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass(frozen=True)
class Step:
    """One categorical decision of a trial: head ``key`` with ``size`` choices, chose ``index``."""

    key: str
    size: int
    index: int


class SequenceTrie:
    """A prefix tree of decision sequences: ``decision`` is the ``(key, size)`` asked at this
    node (None if no sequence continues from it), ``children`` maps a choice to the subtree."""

    __slots__ = ("children", "decision")

    def __init__(self) -> None:
        self.decision: tuple[str, int] | None = None
        self.children: dict[int, SequenceTrie] = {}

    def add(self, steps: Sequence[Step]) -> None:
        node = self
        for step in steps:
            # The latest sequence through a node decides what is asked there (define-by-run
            # spaces ask a function of the earlier choices, so all sequences agree).
            node.decision = (step.key, step.size)
            child = node.children.get(step.index)
            if child is None:
                child = node.children[step.index] = SequenceTrie()
            node = child


@dataclass(frozen=True)
class PolicySettings:
    """The hyperparameters of a :class:`ControllerPolicy`.

    Their meaning and the papers' values are documented in
    :class:`~optuna_nas.samplers.RNNControllerSampler`, which takes them as arguments.
    """

    seed: int
    hidden_size: int
    num_layers: int
    learning_rate: float
    temperature: float
    tanh_constant: float | None
    entropy_weight: float
    baseline_decay: float
    batch_size: int
    imitation_top_k: int = 0
    imitation_weight: float = 0.0


@dataclass
class Cursor:
    """The LSTM state of one in-flight trial (the decisions made so far)."""

    hidden: tuple[torch.Tensor, torch.Tensor] | None
    next_input: torch.Tensor
    log_prob: float = 0.0
    # Output of the last :meth:`ControllerPolicy.probabilities` call, consumed by ``commit``.
    _pending: tuple[str, tuple[torch.Tensor, torch.Tensor], np.ndarray] | None = field(
        default=None, repr=False
    )


class _Head:
    """Softmax head and choice embedding of one decision, made on first use."""

    def __init__(self, size: int, hidden_size: int, generator: torch.Generator) -> None:
        def uniform(*shape: int) -> nn.Parameter:
            data = torch.empty(*shape).uniform_(-_INIT_RANGE, _INIT_RANGE, generator=generator)
            return nn.Parameter(data)

        self.weight = uniform(size, hidden_size)
        self.bias = nn.Parameter(torch.zeros(size))
        self.embedding = uniform(size, hidden_size)

    def parameters(self) -> list[nn.Parameter]:
        return [self.weight, self.bias, self.embedding]


class ControllerPolicy:
    """An autoregressive LSTM policy over a growing set of categorical decisions.

    Each decision ``key`` lazily gets a softmax head and an embedding of its choices; the
    embedding of a step's choice is the next step's input (a learned start vector for the
    first step). Heads are initialized from ``(seed, key)``, never from a shared random
    stream, so the order in which heads are created (which differs between a live run and a
    replay) cannot change any weight. Training is REINFORCE with an exponential-moving-average
    baseline, advantages normalized by a moving standard deviation, and an entropy bonus, plus
    (when ``imitation_top_k > 0``) a likelihood term on the best rewarded sequences so far.
    """

    def __init__(self, settings: PolicySettings) -> None:
        self._settings = settings
        # Self-imitation is off when either its buffer size or its weight is zero.
        self._imitation_top_k = settings.imitation_top_k if settings.imitation_weight > 0.0 else 0

        hidden_size = settings.hidden_size
        generator = torch.Generator().manual_seed(derive_seed(settings.seed, "lstm"))
        # nn.LSTM's own init draws from the global generator: keep the user's stream intact.
        with torch.random.fork_rng(devices=[]):
            self._lstm = nn.LSTM(hidden_size, hidden_size, settings.num_layers, batch_first=True)
        with torch.no_grad():
            for param in self._lstm.parameters():
                param.uniform_(-_INIT_RANGE, _INIT_RANGE, generator=generator)
        start = torch.empty(hidden_size).uniform_(-_INIT_RANGE, _INIT_RANGE, generator=generator)
        self._start = nn.Parameter(start)
        self._shared: list[nn.Parameter] = [*self._lstm.parameters(), self._start]
        self._heads: dict[str, _Head] = {}
        # fused Adam (on CPU since torch 2.4): one kernel per parameter group instead of ~10 ops
        # per tensor; all heads share the second group (appended to it) so the cost does not
        # grow with their number. The updates, hence the suggestions, depend on this choice.
        self._optimizer = torch.optim.Adam(self._shared, lr=settings.learning_rate, fused=True)

        self.baseline: float | None = None
        self._variance = 0.0
        self._pending: list[tuple[list[Step], float]] = []
        # The best rewarded sequences: (-reward, arrival number, steps), best first; ties go to
        # the earlier trial, so the list is a pure function of the applied history.
        self._elite: list[tuple[float, int, list[Step]]] = []
        self.num_rewards = 0
        self.num_updates = 0
        self.num_skipped_updates = 0

    # ------------------------------------------------------------------ heads
    def _head(self, key: str, size: int) -> _Head:
        head = self._heads.get(key)
        if head is None:
            seed = derive_seed(self._settings.seed, "head", key)
            head = _Head(size, self._settings.hidden_size, torch.Generator().manual_seed(seed))
            self._heads[key] = head
            if len(self._optimizer.param_groups) == 1:
                self._optimizer.add_param_group({"params": head.parameters()})
            else:
                self._optimizer.param_groups[1]["params"].extend(head.parameters())
        elif head.weight.shape[0] != size:
            raise ValueError(f"Decision {key!r} changed its number of choices to {size}.")
        return head

    def _transform(self, logits: torch.Tensor) -> torch.Tensor:
        # ENAS order: divide by the temperature, then squash with tanh_constant * tanh.
        logits = logits / self._settings.temperature
        tanh_constant = self._settings.tanh_constant
        if tanh_constant is not None:
            logits = tanh_constant * torch.tanh(logits)
        return logits

    # ------------------------------------------------------------------ sampling
    def new_cursor(self) -> Cursor:
        return Cursor(hidden=None, next_input=self._start.detach())

    @torch.no_grad()
    def probabilities(self, cursor: Cursor, key: str, size: int) -> np.ndarray:
        """The policy's distribution over the ``size`` choices of decision ``key``."""
        head = self._head(key, size)
        output, hidden = self._lstm(cursor.next_input.view(1, 1, -1), cursor.hidden)
        logits = self._transform(output.view(-1) @ head.weight.T + head.bias)
        probs = torch.softmax(logits.double(), dim=0).numpy()
        cursor._pending = (key, hidden, probs)
        return probs

    @torch.no_grad()
    def commit(self, cursor: Cursor, key: str, index: int) -> float:
        """Feed choice ``index`` of decision ``key`` (after :meth:`probabilities`)."""
        assert cursor._pending is not None and cursor._pending[0] == key
        _, hidden, probs = cursor._pending
        cursor._pending = None
        cursor.hidden = hidden
        cursor.next_input = self._heads[key].embedding[index].detach()
        log_prob = math.log(max(float(probs[index]), 1e-300))
        cursor.log_prob += log_prob
        return log_prob

    @torch.no_grad()
    def draw_unseen(
        self, seen: SequenceTrie, uniforms: np.ndarray
    ) -> list[tuple[str, int]] | None:
        """Sample a decision prefix that no sequence in ``seen`` starts with.

        Row ``n`` of ``uniforms`` (values in ``[0, 1)``, one column per step) drives candidate
        ``n``: it walks down ``seen`` from the root, at each node sampling that node's decision
        by inverse CDF, exactly as one-by-one sampling with the same numbers would. It is
        accepted as soon as it leaves the trie (a prefix nobody took, so every completion of it
        is new) and rejected when it reaches the end of a seen sequence. All candidates go
        through the LSTM together, so this costs about as much as one sequence. Returns the
        first accepted candidate's decisions (rejection sampling: the policy restricted to new
        sequences), or None when all are rejected or ``uniforms`` has too few columns.
        """
        n = uniforms.shape[0]
        nodes: list[SequenceTrie | None] = [seen] * n  # None: decided
        accepted = [False] * n
        paths: list[list[tuple[str, int]]] = [[] for _ in range(n)]
        x = self._start.detach().expand(n, 1, -1).contiguous()
        hidden = None
        for t in range(uniforms.shape[1]):
            rows_by_key: dict[tuple[str, int], list[int]] = {}
            for row, node in enumerate(nodes):
                if node is None:
                    continue
                if node.decision is None:  # the end of a seen sequence: a duplicate
                    nodes[row] = None
                else:
                    rows_by_key.setdefault(node.decision, []).append(row)
            if not rows_by_key:
                break
            output, hidden = self._lstm(x, hidden)
            x = x.clone()
            for (key, size), rows in rows_by_key.items():
                head = self._head(key, size)
                # One key for all rows (a fixed space) needs no gather.
                index_rows = slice(None) if len(rows) == n else torch.tensor(rows)
                logits = self._transform(output[index_rows, 0] @ head.weight.T + head.bias)
                cumulative = np.cumsum(torch.softmax(logits.double(), dim=-1).numpy(), axis=1)
                targets = uniforms[rows, t : t + 1] * cumulative[:, -1:]
                chosen = np.minimum((cumulative <= targets).sum(axis=1), size - 1)
                x[index_rows, 0] = head.embedding.detach()[torch.from_numpy(chosen)]
                for row, index in zip(rows, chosen.tolist()):
                    paths[row].append((key, index))
                    child = nodes[row].children.get(index)  # type: ignore[union-attr]
                    nodes[row] = child
                    accepted[row] = child is None
        for row in range(n):
            if accepted[row]:
                return paths[row]
        return None

    # ------------------------------------------------------------------ learning
    def log_probs(self, sequences: Sequence[Sequence[Step]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability and entropy (summed over steps) of each sequence, with autograd.

        All sequences go through the LSTM in one padded batch; padding sits after each
        sequence's end, so (the LSTM being causal) it never changes a real step.
        """
        keys: dict[str, int] = {}  # key -> offset of its rows, in order of first appearance
        heads: list[_Head] = []
        offset = 0
        for sequence in sequences:
            for step in sequence:
                if step.key not in keys:
                    keys[step.key] = offset
                    heads.append(self._head(step.key, step.size))
                    offset += step.size
        batch, length = len(sequences), max(len(s) for s in sequences)
        width = max(step.size for s in sequences for step in s)
        # Index arrays are built in NumPy: per-element torch indexing costs ~5 us per call.
        rows = np.zeros((batch, length, width), dtype=np.int64)
        valid = np.zeros((batch, length, width), dtype=bool)
        valid[:, :, 0] = True  # padded steps get one dummy choice: log-softmax 0, not NaN
        chosen = np.zeros((batch, length, 1), dtype=np.int64)
        steps = np.zeros((batch, length), dtype=np.float32)
        inputs = np.zeros((batch, max(length - 1, 1)), dtype=np.int64)
        for b, sequence in enumerate(sequences):
            for t, step in enumerate(sequence):
                first = keys[step.key]
                rows[b, t, : step.size] = np.arange(first, first + step.size)
                valid[b, t, : step.size] = True
                chosen[b, t, 0] = step.index
                steps[b, t] = 1.0
                if t + 1 < len(sequence):
                    inputs[b, t] = first + step.index
        weight = torch.cat([h.weight for h in heads])
        bias = torch.cat([h.bias for h in heads])
        embedding = torch.cat([h.embedding for h in heads])
        x = self._start.expand(batch, 1, -1)
        if length > 1:
            x = torch.cat([x, embedding[torch.from_numpy(inputs[:, : length - 1])]], dim=1)
        output, _ = self._lstm(x)
        # All heads of the batch in one matmul, then each step picks its head's columns.
        all_logits = (output @ weight.T + bias).unsqueeze(2).expand(-1, -1, width, -1)
        logits = all_logits.gather(-1, torch.from_numpy(rows).unsqueeze(-1)).squeeze(-1)
        logits = self._transform(logits)
        invalid = None if valid.all() else torch.from_numpy(~valid)
        if invalid is not None:  # skipped when every step has ``width`` choices
            logits = logits.masked_fill(invalid, -math.inf)
        log_softmax = torch.log_softmax(logits, dim=-1)
        if invalid is not None:
            log_softmax = log_softmax.masked_fill(invalid, 0.0)
        chosen_log_softmax = log_softmax.gather(-1, torch.from_numpy(chosen)).squeeze(-1)
        if steps.all():
            log_prob = chosen_log_softmax.sum(-1)
        else:
            log_prob = (chosen_log_softmax * torch.from_numpy(steps)).sum(-1)
        entropy = -(log_softmax.exp() * log_softmax).sum((-1, -2))
        return log_prob, entropy

    def _advantage(self, reward: float) -> float:
        """Normalized advantage of ``reward``; updates the moving mean and variance."""
        if self.baseline is None:
            self.baseline = reward
            return 0.0
        delta = reward - self.baseline
        decay = self._settings.baseline_decay
        # Scaled by the moving standard deviation (exponentially weighted, same decay).
        scale = math.sqrt(self._variance) if self._variance > 0.0 else abs(delta)
        advantage = delta / scale if scale > 0.0 else 0.0
        self._variance = decay * (self._variance + (1.0 - decay) * delta * delta)
        self.baseline += (1.0 - decay) * delta
        if not (math.isfinite(self.baseline) and math.isfinite(self._variance)):
            # An absurd reward overflowed the statistics: restart them from this reward.
            self.baseline, self._variance = reward, 0.0
            return 0.0
        return max(-_MAX_ADVANTAGE, min(_MAX_ADVANTAGE, advantage))

    def apply(self, steps: Sequence[Step], reward: float) -> None:
        """Learn from one finished trial; an update runs once ``batch_size`` are pending."""
        if not steps or not math.isfinite(reward):
            return
        self.num_rewards += 1
        advantage = self._advantage(reward)
        self._pending.append((list(steps), advantage))
        if self._imitation_top_k:
            bisect.insort(self._elite, (-reward, self.num_rewards, list(steps)))
            del self._elite[self._imitation_top_k :]
        if len(self._pending) >= self._settings.batch_size:
            self._update()

    def _update(self) -> None:
        sequences = [s for s, _ in self._pending]
        advantages = torch.tensor([a for _, a in self._pending])
        self._pending = []
        n_sampled = len(sequences)
        # Self-imitation (priority-queue training, Abolafia et al. 2018): raise the likelihood
        # of the best sequences found so far. REINFORCE alone forgets a rare good sample after
        # one small step; this keeps pulling the policy toward the study's top-k, which is what
        # makes it competitive within a few hundred evaluations. Same forward pass, one batch.
        sequences += [steps for _, _, steps in self._elite]
        log_prob, entropy = self.log_probs(sequences)
        loss = -(
            advantages * log_prob[:n_sampled] + self._settings.entropy_weight * entropy[:n_sampled]
        ).mean()
        if len(sequences) > n_sampled:
            loss = loss - self._settings.imitation_weight * log_prob[n_sampled:].mean()
        self._optimizer.zero_grad(set_to_none=True)
        loss.backward()
        # A fixed order (shared weights, then heads in order of use) keeps the norm's float
        # summation, hence the update, identical between a live run and a replay.
        used = list(self._shared)
        for key in dict.fromkeys(step.key for s in sequences for step in s):
            used.extend(self._heads[key].parameters())
        norm = torch.nn.utils.clip_grad_norm_(used, _MAX_GRAD_NORM)
        if not torch.isfinite(norm):
            self._optimizer.zero_grad(set_to_none=True)
            self.num_skipped_updates += 1
            return
        self._optimizer.step()
        self.num_updates += 1
