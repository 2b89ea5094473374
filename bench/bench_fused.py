"""Would fusing the train steps into one XLA loop speed up the small Keras models? (No.)

Keras 3's JAX trainer calls its jitted ``train_step`` from Python once per batch, even with
``steps_per_execution``. The alternative measured here replaces the train function of the
compiled model with one that stacks the batches of a call and runs Keras' own ``train_step`` over
them in a ``lax.fori_loop`` inside one program (the same steps in the same order: the final
losses are printed to show they agree).

Part 1, JAX alone: the cnn of experiment 7's convolution (batch 10, width 40, 100 dims, 128
filters, kernel 5) forward and backward with a plain SGD update, 64 steps called one by one from
Python against the same 64 steps in ``lax.scan``, as XLA's convolution and as one matrix product
over stacked windows (im2col).

Part 2, ``TextClassifier.fit`` on the yelp split (750 sentences, batch 10, compile cache off,
one untimed fit per side first), as shipped and with the fused train function (for the cnn with
Conv1D computed as im2col, since XLA's convolution is slow inside a loop), sides alternating per
seed.

    python bench/bench_fused.py
"""

from __future__ import annotations

import itertools
import os
import statistics
import time

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ["TEXTCLASS_COMPILE_CACHE"] = "off"
STEPS = 64


def per_step_ms(fn, *args, repeat=5):
    import jax

    jax.block_until_ready(fn(*args))
    best = min(_timed(fn, *args) for _ in range(repeat))
    return best / STEPS * 1e3


def _timed(fn, *args):
    import jax

    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - start


def jax_part():
    import jax
    import jax.numpy as jnp

    kernel = jax.random.normal(jax.random.key(0), (5, 100, 128)) * 0.05
    h = jax.random.normal(jax.random.key(1), (STEPS, 10, 40, 100))

    def conv(k, x):
        return jax.lax.conv_general_dilated(x, k, (1,), "VALID", dimension_numbers=("NWC", "WIO", "NWC"))

    def im2col(k, x):
        length = x.shape[1] - k.shape[0] + 1
        windows = jnp.concatenate([x[:, j:j + length] for j in range(k.shape[0])], axis=-1)
        return windows @ k.reshape(-1, k.shape[-1])

    print("Part 1: experiment 7's convolution, forward + backward + SGD, ms per step (best of 5)")
    print("| convolution as | 64 jitted calls | lax.scan of 64 | scan / calls |\n|---|---|---|---|")
    for name, op in (("XLA convolution", conv), ("im2col matmul", im2col)):
        def step(k, x, op=op):
            return k - 0.01 * jax.grad(lambda k: jnp.max(jax.nn.relu(op(k, x)), axis=1).sum())(k)

        jitted = jax.jit(step)

        def calls(k, xs):
            for i in range(STEPS):
                k = jitted(k, xs[i])
            return k

        scanned = jax.jit(lambda k, xs: jax.lax.scan(lambda k, x: (step(k, x), None), k, xs)[0])
        a, b = per_step_ms(calls, kernel, h), per_step_ms(scanned, kernel, h)
        print(f"| {name} | {a:.3f} | {b:.3f} | {b / a:.2f}x |", flush=True)


class FusedTrainFunction:
    """Keras' train-function contract, ``(state, batch iterator) -> (logs, state)``, with the
    consecutive batches of one shape run as one jitted ``fori_loop`` over ``train_step``."""

    def __init__(self, train_step, slots):
        import jax

        self.slots = slots
        self._run = jax.jit(lambda state, stacked, n: _run_steps(train_step, state, stacked, n), donate_argnums=0)

    def __call__(self, state, iterator):
        logs, run, key = None, [], None
        for data in itertools.islice(iterator, self.slots):
            data_key = _signature(data)
            if run and data_key != key:
                logs, state = self._call(state, run)
                run = []
            run.append(data)
            key = data_key
        if not run and logs is None:
            raise StopIteration
        if run:
            logs, state = self._call(state, run)
        return logs, state

    def _call(self, state, run):
        import jax

        def stack(*arrays):
            out = np.zeros((self.slots, *np.shape(arrays[0])), dtype=np.asarray(arrays[0]).dtype)
            out[:len(arrays)] = arrays
            return out

        return self._run(state, jax.tree.map(stack, *run), np.int32(len(run)))


def _signature(data):
    import jax

    leaves, treedef = jax.tree.flatten(data)
    return treedef, tuple((np.shape(a), np.asarray(a).dtype) for a in leaves)


def _run_steps(train_step, state, stacked, n):
    import jax
    import jax.numpy as jnp

    def row(i):
        return jax.tree.map(lambda a: a[i], stacked)

    shapes = jax.eval_shape(train_step, state, row(0))[0]
    logs = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

    def body(i, carry):
        logs, state = train_step(carry[0], row(i))
        return state, logs

    state, logs = jax.lax.fori_loop(0, n, body, (state, logs))
    return logs, state


def im2col_call(self, inputs):
    """Conv1D (valid, stride 1) as one matrix product over stacked windows."""
    from keras import ops

    k = self.kernel.shape[0]
    length = inputs.shape[1] - k + 1
    windows = ops.concatenate([inputs[:, j:j + length] for j in range(k)], axis=-1)
    out = ops.matmul(windows, ops.reshape(self.kernel, (-1, self.filters))) + self.bias
    return self.activation(out)


def keras_part(seeds):
    import keras
    from bench_train import yelp_split

    from textclass.estimator import TextClassifier

    X, y, X_test, y_test = yelp_split()
    compile_ = keras.Model.compile
    conv_call = keras.layers.Conv1D.call

    def fused_compile(self, *args, **kwargs):
        compile_(self, *args, **kwargs)
        self.train_function = FusedTrainFunction(self.train_step, self.steps_per_execution)

    def side(fused, im2col):
        keras.Model.compile = fused_compile if fused else compile_
        keras.layers.Conv1D.call = im2col_call if im2col else conv_call

    print("\nPart 2: TextClassifier.fit on the yelp split, s (median over seeds "
          f"{' '.join(map(str, seeds))}), compile cache off")
    print("| model | epochs | as shipped | fused | shipped / fused | final loss equal |\n|---|---|---|---|---|---|")
    for model, epochs in (("cnn", 10), ("embed-maxpool", 50), ("bow-dense", 100)):
        sides = {"shipped": (False, False), "fused": (True, model == "cnn")}
        for fused, im2col in sides.values():  # untimed: JAX's one-off compilations of eager ops
            side(fused, im2col)
            TextClassifier(model, random_state=0, epochs=1, batch_size=10).fit(X, y)
        walls, losses = {k: [] for k in sides}, {k: [] for k in sides}
        for seed in seeds:
            for name, (fused, im2col) in sides.items():
                side(fused, im2col)
                start = time.perf_counter()
                clf = TextClassifier(model, random_state=seed, epochs=epochs, batch_size=10).fit(X, y)
                walls[name].append(time.perf_counter() - start)
                losses[name].append(clf.history_["loss"][-1])
                print(f"  {model} seed {seed} {name}: {walls[name][-1]:.2f} s, final loss "
                      f"{losses[name][-1]:.6g}, test accuracy {clf.score(X_test, y_test):.4f}", flush=True)
        a, b = statistics.median(walls["shipped"]), statistics.median(walls["fused"])
        equal = np.allclose(losses["shipped"], losses["fused"], rtol=1e-3)
        print(f"| {model} | {epochs} | {a:.2f} | {b:.2f} | {a / b:.2f}x | {'yes' if equal else 'no'} |", flush=True)
    side(False, False)


def main():
    load = os.getloadavg()
    jax_part()
    keras_part([1000, 1, 2])
    print(f"\nload average (1 min) before {load[0]:.2f}, after {os.getloadavg()[0]:.2f} (2 cores)")


if __name__ == "__main__":
    main()
