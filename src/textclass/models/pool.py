"""Compiled Keras models, reused across the many fits of one architecture.

Cross-validation, search and ``reproduce`` fit the same architecture again and again, and JAX
traces, lowers and compiles every fresh Keras model anew: on 2 cores that costs about as much as
the CNN's whole training on 700 sentences (experiment 8 is 150 such fits). Only the starting
weights differ between those models, and with a fixed seed not even they do. So, inside
``reusing_models()``, a fitted model whose estimator is gone goes back to a pool; the next fit with
the same build signature and seed takes it, restores every variable (weights, seed-generator
states, optimizer slots) to the values it had when it was built, and trains with the programs
already compiled: the same arithmetic as a model built fresh from that seed.

Only the engines (``compare``, ``reproduce``, ``search``) open that scope: they hand the user no
model whose estimator they dropped. Outside it every fit builds its own model, as before.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

IDLE_MAX = 12  # idle models kept per process (a few MB each for the tutorial's models)

_depth = 0
_idle: OrderedDict[Hashable, list[_Entry]] = OrderedDict()
_leases: dict[int, weakref.finalize] = {}  # id(model) -> the finalizer that returns it to the pool


@dataclass
class _Entry:
    key: Hashable
    model: Any
    initial: list[np.ndarray]  # model.variables, then optimizer.variables, as built


def vocabulary_rows(input_dim: int) -> int:
    """Embedding rows for ``input_dim`` token ids: the next power of two (at least 64), so that
    folds and sources whose vocabularies differ by a few hundred words share one shape and one
    compiled program (experiment 8: UCI's folds span 1,400-1,800 ids, one size instead of four).
    The extra rows are never looked up and get zero gradients: they cost parameters (at most 2x
    the table) and, measured, no train-step time (a dense 32k-row table's Adam update is 3% of a
    step beside a 20k-row one's)."""
    return max(64, 1 << (input_dim - 1).bit_length())


@contextmanager
def reusing_models() -> Iterator[None]:
    """Within this scope, Keras fits of ``TextClassifier`` reuse pooled models (see module doc).
    Nests; leaving the outermost scope stops returning still-living estimators' models."""
    global _depth
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if not _depth:
            for lease in list(_leases.values()):
                lease.detach()
            _leases.clear()


def take(owner: object, key: Hashable | None, build: Callable[[], Any]) -> tuple[Any, bool]:
    """A compiled model for ``owner`` (an estimator) and whether it was reused: a pooled one with
    this ``key``, restored to its built state, or ``build()``'s. It returns to the pool when
    ``owner`` is collected or calls ``give_back``; ``key=None`` or no open scope means no pooling."""
    if key is None or not _depth:
        return _built(key, build).model, False
    entries = _idle.get(key)
    reused = bool(entries)
    if entries:
        entry = entries.pop()
        if not entries:
            del _idle[key]
        _restore(entry)
    else:
        entry = _built(key, build)
    _leases[id(entry.model)] = weakref.finalize(owner, _return, entry)
    return entry.model, reused


def give_back(model: Any) -> None:
    """Return ``model`` to the pool now (its estimator is fitting anew); no-op if not pooled."""
    lease = _leases.get(id(model))
    if lease is not None:
        lease()


def _built(key: Hashable | None, build: Callable[[], Any]) -> _Entry:
    model = build()
    model.optimizer.build(model.trainable_variables)  # its slots exist now, so they can be restored
    return _Entry(key, model, [np.array(v.numpy()) for v in _state(model)])


def _state(model: Any) -> list[Any]:
    return [*model.variables, *model.optimizer.variables]


def _restore(entry: _Entry) -> None:
    for var, value in zip(_state(entry.model), entry.initial):
        var.assign(value)


def _return(entry: _Entry) -> None:
    _leases.pop(id(entry.model), None)
    if not _depth:
        return
    _idle.setdefault(entry.key, []).append(entry)
    _idle.move_to_end(entry.key)
    while sum(len(v) for v in _idle.values()) > IDLE_MAX:
        oldest = next(iter(_idle))
        _idle[oldest].pop(0)
        if not _idle[oldest]:
            del _idle[oldest]
