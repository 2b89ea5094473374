"""Packed and length-bucketed training batches for the Keras sequence models.

UCI sentences average ~11 tokens against ``maxlen=100``: a model that ignores the padded tail
(``ModelSpec.trim``: max-pool and CNN models by the trimming rule of ``keras.trim_padding``,
masked recurrent models) can train on batches cut to a few widths and compute the same loss and
gradients on every batch as on the full-width one. Each distinct batch shape costs one JAX
compilation of the train step (1-2 s on 2 cores, as long as a few hundred steps), so the widths
are chosen once per fit: the fewest multiples of ``step`` that pay for their compilation
(``choose_widths``). With one width, batches are exactly those of a plain shuffled ``fit``; with
several, each epoch shuffles, sorts rows by length within chunks of ``CHUNK_BATCHES`` batches,
cuts them into batches and shuffles the batch order (the usual bucketing iterator).

The max-pool models (Embedding → [Conv1D] → GlobalMaxPool1D) go further: ``PackedBatches`` lays a
batch's rows end to end in one sequence, each followed by only the padding its own windows read,
and ``keras.packed_twin`` pools each row's span (``SegmentMaxPool``). On UCI's yelp sentences a
batch of 10 then needs 159 positions on average instead of 400 at its trimmed width, and every
batch is the one a plain shuffled ``fit`` draws, so a seeded fit ends with the padded fit's weights.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import keras
import numpy as np

#: Batches sorted together when several widths are in use: wide enough to group similar lengths,
#: narrow enough that a batch still mixes rows from a random tenth-or-so of a small data set.
CHUNK_BATCHES = 32
#: One extra compilation of the train step costs about as long as training on this many token
#: positions (the CNN of experiment 7 on 2 cores: ~1.5 s of compilation, ~5 us per position).
COMPILE_TOKENS = 300_000
MAX_WIDTHS = 4
#: Packed widths are rounded up to a multiple of this, so that most folds and trials share one width
#: and one compiled train step: experiment 8's 150 cnn fits took 121 s at 32, 119 s at 64 and
#: 101-106 s at 128 (108.5 s on trimmed batches), while experiment 7's yelp fits need 256 at any of them.
PACK_STEP = 128
VALIDATION_BATCH = 512  # evaluation's mean loss does not depend on the batch size: few, big batches


def lengths_of(x: np.ndarray) -> np.ndarray:
    """Real length of each post-padded row: the position of its last non-zero id + 1."""
    nonzero = np.asarray(x) != 0
    return np.where(nonzero.any(axis=1), x.shape[1] - np.argmax(nonzero[:, ::-1], axis=1), 0)


def _round_up(n: np.ndarray | int, step: int) -> np.ndarray:
    return -(-np.asarray(n) // step) * step


def needed_widths(lengths: np.ndarray, extra: int, step: int, maxlen: int) -> np.ndarray:
    """Width each row (or batch, given its longest length) needs: length + ``extra``, rounded up
    to ``step``, at least ``step`` and at most ``maxlen``."""
    return np.minimum(maxlen, np.maximum(step, _round_up(np.asarray(lengths) + extra, step)))


def choose_widths(lengths: np.ndarray, batch_size: int, extra: int, epochs: int, maxlen: int,
                  step: int, *, compile_tokens: int = COMPILE_TOKENS, max_widths: int = MAX_WIDTHS) -> list[int]:
    """The training widths, ascending; the last one fits every row.

    Costs are counted in token positions: ``epochs`` passes over batches of length-sorted rows,
    each cut to the smallest chosen width that fits it, plus ``compile_tokens`` per width.
    Small data sets get one width (their longest row); long runs over skewed lengths get up to
    ``max_widths``.
    """
    top = int(needed_widths(int(lengths.max(initial=0)), extra, step, maxlen))
    order = np.sort(lengths)
    need = needed_widths([b.max() for b in np.array_split(order, max(1, math.ceil(len(order) / batch_size)))],
                         extra, step, maxlen) if len(order) else np.array([top])
    candidates = sorted(set(need.tolist()) - {top})
    best, best_cost = [top], math.inf
    for k in range(min(max_widths, len(candidates) + 1)):
        for extra_widths in itertools.combinations(candidates, k):
            widths = np.array([*extra_widths, top])
            tokens = widths[np.searchsorted(widths, need)].sum() * batch_size * epochs
            cost = tokens + compile_tokens * len(widths)
            if cost < best_cost:
                best, best_cost = widths.tolist(), cost
    return [int(w) for w in best]


class TrimmedBatches(keras.utils.PyDataset):
    """``(x, y)`` batches of post-padded token ids cut to a few widths, for ``model.fit``.

    Parameters
    ----------
    x, y : arrays
        Padded ids ``(n, maxlen)`` and targets; ``class_weight`` is left to ``fit``.
    batch_size : int
    widths : list of int
        Ascending (``choose_widths``); each batch gets the smallest that fits ``its longest row
        + extra``. The last, partial batch (``n % batch_size`` rows, a shape of its own) always
        gets the largest, so it compiles once.
    extra : int
        Padded positions the model needs after the longest real row (``ModelSpec.trim_extra``).
    shuffle : bool
        New order every epoch (training); False keeps rows sorted by length (validation).
    seed : int or None
        Seeds the shuffling: the same seed gives the same batches.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, widths: Sequence[int], extra: int,
                 *, shuffle: bool = True, seed: int | None = None, step: int = 8) -> None:
        super().__init__()
        self.x, self.y = np.asarray(x), np.asarray(y)
        self.batch_size, self.widths, self.extra, self.step = int(batch_size), np.asarray(widths), extra, step
        self.shuffle = shuffle
        self.lengths = lengths_of(self.x)
        self._rng = np.random.default_rng(seed)
        self._plan: list[tuple[np.ndarray, int]] | None = None

    @property
    def num_batches(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def plan(self) -> list[tuple[np.ndarray, int]]:
        """This epoch's ``(row indices, width)`` per batch."""
        if self._plan is None:
            self._plan = self._new_plan()
        return self._plan

    def _new_plan(self) -> list[tuple[np.ndarray, int]]:
        n, bs = len(self.x), self.batch_size
        order = self._rng.permutation(n) if self.shuffle else np.argsort(self.lengths, kind="stable")
        full = n // bs * bs
        body, rest = order[:full], order[full:]
        if self.shuffle and len(self.widths) > 1:
            chunk = CHUNK_BATCHES * bs
            body = np.concatenate([c[np.argsort(self.lengths[c], kind="stable")]
                                   for c in np.split(body, range(chunk, full, chunk))]) if full else body
        batches = list(body.reshape(-1, bs)) if full else []
        if self.shuffle and len(self.widths) > 1:
            batches = [batches[i] for i in self._rng.permutation(len(batches))]
        top = int(self.widths[-1])
        plan = []
        for idx in batches:
            need = needed_widths(int(self.lengths[idx].max()), self.extra, self.step, top)
            plan.append((idx, int(self.widths[np.searchsorted(self.widths, need)])))
        if len(rest):
            plan.append((rest, top))
        return plan

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        idx, width = self.plan()[i]
        return self.x[idx, :width], self.y[idx]

    def on_epoch_end(self) -> None:
        self._plan = None


def training_batches(x: np.ndarray, y: np.ndarray, *, batch_size: int, epochs: int, extra: int,
                     step: int, seed: int | None,
                     validation: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[TrimmedBatches, TrimmedBatches | None]:
    """The training batches (widths from ``choose_widths``) and, for validation, the rows sorted by
    length in batches of ``VALIDATION_BATCH`` cut to their own longest row (one or two shapes)."""
    maxlen = x.shape[1]
    widths = choose_widths(lengths_of(x), batch_size, extra, epochs, maxlen, step)
    train = TrimmedBatches(x, y, batch_size, widths, extra, shuffle=True, seed=seed, step=step)
    if validation is None:
        return train, None
    vx, vy = validation
    vlen = lengths_of(vx)
    top = int(needed_widths(int(vlen.max(initial=0)), extra, step, maxlen))
    return train, TrimmedBatches(vx, vy, min(VALIDATION_BATCH, len(vx)), [top], extra, shuffle=False, step=step)


def packed_width(need: int) -> int:
    """The packed width for ``need`` positions: rounded up to ``PACK_STEP``."""
    return int(max(PACK_STEP, _round_up(need, PACK_STEP)))


def pack(x: np.ndarray, lengths: np.ndarray, extra: int, width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Post-padded rows ``x`` of real ``lengths`` as one packed sequence ``(1, width)`` and their
    ``bounds`` ``(rows, 2)`` for ``keras.SegmentMaxPool``.

    Row i takes ``min(lengths[i] + extra, maxlen)`` positions, its ids then the padding: what its
    trimmed row holds (``trim_padding``). Its windows of ``extra`` positions start at its first
    position up to the last one inside its span; those are its bounds. ``width`` defaults to the
    positions needed, rounded up (``packed_width``).
    """
    x, lengths = np.asarray(x), np.asarray(lengths)
    span = np.minimum(lengths + extra, x.shape[1])
    starts = np.concatenate([[0], np.cumsum(span)[:-1]]).astype(np.int64)
    need = int(span.sum())
    width = packed_width(need) if width is None else width
    if need > width:
        raise ValueError(f"{len(x)} rows need {need} packed positions, more than width {width}")
    tokens = np.zeros((1, width), dtype=x.dtype)
    real = np.arange(x.shape[1]) < lengths[:, None]
    tokens[0, (starts[:, None] + np.arange(x.shape[1]))[real]] = x[real]
    return np.stack([starts, starts + span - extra], axis=1).astype(np.int32), tokens


class PackedBatches(keras.utils.PyDataset):
    """``((bounds, tokens), y)`` batches of packed rows (``pack``) for ``keras.packed_twin``.

    Training batches are those of Keras' own shuffled ``fit`` on the arrays: each epoch's order is
    ``np.random.permutation`` of NumPy's global generator, drawn when the epoch begins, cut in
    batches of ``batch_size`` (the last one partial). One packed width serves the whole fit: the
    widest batch of the next ``epochs + 1`` orders (Keras' first fit draws one more), found on a
    copy of the generator's state, which is then restored; a batch wider than that, because
    something else drew from the generator meanwhile, gets a width of its own (one recompile).
    ``shuffle=False`` (validation) keeps the rows in order.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, extra: int, *,
                 shuffle: bool = True, epochs: int = 1) -> None:
        super().__init__()
        self.x, self.y = np.asarray(x), np.asarray(y)
        self.batch_size, self.extra, self.shuffle = int(batch_size), int(extra), shuffle
        self.lengths = lengths_of(self.x)
        self.width = PACK_STEP
        if len(self.x):
            state = np.random.get_state()
            self.width = max(self._widest(self._new_order()) for _ in range(epochs + 1 if shuffle else 1))
            np.random.set_state(state)
        self._order: np.ndarray | None = None

    def _new_order(self) -> np.ndarray:
        return np.random.permutation(len(self.x)) if self.shuffle else np.arange(len(self.x))

    def _widest(self, order: np.ndarray) -> int:
        span = np.minimum(self.lengths[order] + self.extra, self.x.shape[1])
        return packed_width(int(np.add.reduceat(span, np.arange(0, len(order), self.batch_size)).max()))

    @property
    def num_batches(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, i: int) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
        if self._order is None:
            self._order = self._new_order()
        idx = self._order[i * self.batch_size:(i + 1) * self.batch_size]
        span = int(np.minimum(self.lengths[idx] + self.extra, self.x.shape[1]).sum())
        bounds, tokens = pack(self.x[idx], self.lengths[idx], self.extra, max(self.width, packed_width(span)))
        return (bounds, tokens), self.y[idx]

    def on_epoch_end(self) -> None:
        self._order = None
