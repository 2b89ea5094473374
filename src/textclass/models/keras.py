"""Keras builders: the tutorial's ladder and a few encoders beyond it.

Every builder takes ``input_dim``, ``input_length``, ``n_outputs``, ``activation`` (the output
head comes from the data: 1 sigmoid, k softmax, or k sigmoid for multi-label) and
``embedding_matrix`` (used by the GloVe models), plus the model's own hyperparameters, and returns
an uncompiled ``keras.Model``. Custom layers are registered under the ``textclass`` package so
``.keras`` files load with ``safe_mode=True``.

Padding trimming (``trim_padding``): for post-padded token ids, models whose output depends on
the padded tail only through a max over positions (Embedding → [Conv1D(valid) →]
GlobalMaxPool1D) give identical outputs when each batch is cut to the longest real length plus
a few padded positions: every window lying wholly in the padding has the same value, so keeping
one of them is enough. The recurrent encoders mask the padding (a masked step keeps the state
as it was), so they need none of it. ``ModelSpec.trim`` says how many to keep (``kernel_size``
for the CNN, 1 for the max-pool models, 0 for the recurrent ones) and is ``None`` where the tail
matters: Flatten, and the transformer (its fixed-width input and position embedding aside, a
text with no known word attends over, and mean-pools, every position, so its output depends on
the width).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import keras
import numpy as np
from keras import layers, ops

from textclass.errors import ParameterError


@keras.saving.register_keras_serializable(package="textclass")
class GlorotUniform(keras.initializers.GlorotUniform):
    """Keras' default kernel initializer, drawn as the first values of a flat draw whose length is
    the next power of two.

    JAX compiles its uniform draw once per shape (0.3-0.5 s on 2 cores, more than bow-dense's
    training step), and bow-dense's first kernel has a new shape for every fold's vocabulary.
    JAX's counter-based generator gives element i the same value in any longer draw, so the
    weights equal ``keras.initializers.GlorotUniform``'s to the bit, for the same seed.
    """

    def __call__(self, shape: tuple[int, ...], dtype: Any = None) -> np.ndarray:
        receptive = math.prod(shape[:-2]) if len(shape) > 2 else 1  # Keras' fans (compute_fans)
        fan_in = shape[-2] * receptive if len(shape) > 1 else (shape[0] if shape else 1)
        fan_out = shape[-1] * receptive if shape else 1
        limit = math.sqrt(3.0 * self.scale / max(1.0, (fan_in + fan_out) / 2.0))
        n = math.prod(shape)
        flat = keras.random.uniform((1 << max(0, n - 1).bit_length(),), minval=-limit, maxval=limit,
                                    dtype=dtype, seed=self.seed)
        return ops.convert_to_numpy(flat)[:n].reshape(shape)


def _dense(units: int, **kwargs: Any) -> layers.Dense:
    return layers.Dense(units, kernel_initializer=GlorotUniform(), **kwargs)


def _output(x: Any, n_outputs: int, activation: str) -> Any:
    return _dense(n_outputs, activation=activation, name="output")(x)


def _embedding(
    input_dim: int,
    embedding_dim: int,
    embedding_matrix: np.ndarray | None = None,
    trainable: bool = True,
    mask_zero: bool = False,
) -> layers.Embedding:
    if embedding_matrix is None:
        return layers.Embedding(input_dim, embedding_dim, mask_zero=mask_zero, name="embedding")
    matrix = np.asarray(embedding_matrix, dtype="float32")
    if matrix.ndim != 2 or matrix.shape[0] != input_dim:
        raise ParameterError(
            f"embedding_matrix has shape {matrix.shape}; expected ({input_dim}, dim): one row per "
            f"token id of the tokenizer (vocab_size = {input_dim})"
        )
    return layers.Embedding(
        input_dim, matrix.shape[1], weights=[matrix], trainable=trainable,
        mask_zero=mask_zero, name="embedding",
    )


def build_bow_dense(
    *, input_dim: int, input_length: int | None = None, n_outputs: int, activation: str,
    embedding_matrix: np.ndarray | None = None, dense_units: int = 10,
) -> keras.Model:
    """Experiment 2: a bag-of-words count vector → Dense(10, relu) → output."""
    inputs = keras.Input(shape=(input_dim,), dtype="float32", name="bow")
    x = _dense(dense_units, activation="relu", name="dense")(inputs)
    return keras.Model(inputs, _output(x, n_outputs, activation), name="bow_dense")


def build_embed_flatten(
    *, input_dim: int, input_length: int, n_outputs: int, activation: str,
    embedding_matrix: np.ndarray | None = None, embedding_dim: int = 50, dense_units: int = 10,
) -> keras.Model:
    """Experiment 3: Embedding → Flatten → Dense(10, relu) → output (fixed input length)."""
    inputs = keras.Input(shape=(input_length,), dtype="int32", name="tokens")
    x = _embedding(input_dim, embedding_dim, embedding_matrix)(inputs)
    x = layers.Flatten(name="flatten")(x)
    x = _dense(dense_units, activation="relu", name="dense")(x)
    return keras.Model(inputs, _output(x, n_outputs, activation), name="embed_flatten")


def build_embed_maxpool(
    *, input_dim: int, input_length: int | None = None, n_outputs: int, activation: str,
    embedding_matrix: np.ndarray | None = None, embedding_dim: int = 50, dense_units: int = 10,
    trainable: bool = True,
) -> keras.Model:
    """Experiment 4: Embedding → GlobalMaxPool1D → Dense(10, relu) → output.

    Takes sequences of any length (trimmed batches); with ``embedding_matrix`` the embedding
    starts from those vectors and its width is the matrix's.
    """
    inputs = keras.Input(shape=(None,), dtype="int32", name="tokens")
    x = _embedding(input_dim, embedding_dim, embedding_matrix, trainable)(inputs)
    x = layers.GlobalMaxPooling1D(name="max_pool")(x)
    x = _dense(dense_units, activation="relu", name="dense")(x)
    return keras.Model(inputs, _output(x, n_outputs, activation), name="embed_maxpool")


def build_glove(
    *, input_dim: int, input_length: int | None = None, n_outputs: int, activation: str,
    embedding_matrix: np.ndarray | None = None, trainable: bool = False, dense_units: int = 10,
    vectors: str = "glove-6b-50d",
) -> keras.Model:
    """Experiments 5 and 6: embed-maxpool with a pretrained embedding, frozen or fine-tuned.

    ``vectors`` names the word vectors; the caller (the estimator) turns it into
    ``embedding_matrix`` with ``textclass.embeddings.build_embedding_matrix``.
    """
    if embedding_matrix is None:
        raise ParameterError(
            f"the GloVe models need embedding_matrix (built from vectors={vectors!r} with "
            "textclass.embeddings.build_embedding_matrix(vectors, tokenizer.word_index))"
        )
    return build_embed_maxpool(
        input_dim=input_dim, input_length=input_length, n_outputs=n_outputs,
        activation=activation, embedding_matrix=embedding_matrix, dense_units=dense_units,
        trainable=trainable,
    )


def build_cnn(
    *, input_dim: int, input_length: int | None = None, n_outputs: int, activation: str,
    embedding_matrix: np.ndarray | None = None, embedding_dim: int = 100,
    num_filters: int = 128, kernel_size: int = 5, dense_units: int = 10,
) -> keras.Model:
    """Experiment 7: Embedding → Conv1D(relu, valid) → GlobalMaxPool1D → Dense(10, relu) → output."""
    inputs = keras.Input(shape=(None,), dtype="int32", name="tokens")
    x = _embedding(input_dim, embedding_dim, embedding_matrix)(inputs)
    x = layers.Conv1D(num_filters, kernel_size, activation="relu", kernel_initializer=GlorotUniform(), name="conv")(x)
    x = layers.GlobalMaxPooling1D(name="max_pool")(x)
    x = _dense(dense_units, activation="relu", name="dense")(x)
    return keras.Model(inputs, _output(x, n_outputs, activation), name="cnn")


def _build_recurrent(cell: type[layers.Layer], name: str, *, input_dim: int, n_outputs: int,
                     activation: str, embedding_matrix: np.ndarray | None, embedding_dim: int,
                     units: int, dropout: float) -> keras.Model:
    inputs = keras.Input(shape=(None,), dtype="int32", name="tokens")
    # mask_zero: the padded tail is skipped, not read as 80 steps of the padding vector.
    x = _embedding(input_dim, embedding_dim, embedding_matrix, mask_zero=True)(inputs)
    x = layers.Bidirectional(cell(units), name="encoder")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(inputs, _output(x, n_outputs, activation), name=name)


def build_bilstm(
    *, input_dim: int, input_length: int | None = None, n_outputs: int, activation: str,
    embedding_matrix: np.ndarray | None = None, embedding_dim: int = 64, units: int = 32,
    dropout: float = 0.2,
) -> keras.Model:
    """Embedding (padding masked) → Bidirectional(LSTM) → Dropout → output."""
    return _build_recurrent(
        layers.LSTM, "bilstm", input_dim=input_dim, n_outputs=n_outputs, activation=activation,
        embedding_matrix=embedding_matrix, embedding_dim=embedding_dim, units=units,
        dropout=dropout,
    )


def build_gru(
    *, input_dim: int, input_length: int | None = None, n_outputs: int, activation: str,
    embedding_matrix: np.ndarray | None = None, embedding_dim: int = 64, units: int = 32,
    dropout: float = 0.2,
) -> keras.Model:
    """Embedding (padding masked) → Bidirectional(GRU) → Dropout → output."""
    return _build_recurrent(
        layers.GRU, "gru", input_dim=input_dim, n_outputs=n_outputs, activation=activation,
        embedding_matrix=embedding_matrix, embedding_dim=embedding_dim, units=units,
        dropout=dropout,
    )


@keras.saving.register_keras_serializable(package="textclass")
class TokenAndPositionEmbedding(layers.Layer):
    """Token embedding plus a learned position embedding; id 0 (padding) is masked.

    A text with no known word would mask every position and the mean pool would divide by zero
    (NaN), so such a row keeps some positions: its first (``empty_rows="first"``, what
    ``build_transformer`` builds), so that no output depends on how much padding follows the
    longest text and batches can be trimmed (``ModelSpec.trim``), or all of them (``"all"``: the
    rule of models saved before, whose files hold these mask ops in their graph and whose config
    lacks the key; they are never trimmed, ``ignores_padded_tail``).
    """

    def __init__(self, maxlen: int, vocab_size: int, embed_dim: int, empty_rows: str = "all", **kwargs: Any):
        super().__init__(**kwargs)
        if empty_rows not in ("first", "all"):
            raise ParameterError(f"empty_rows must be 'first' or 'all', got {empty_rows!r}")
        self.maxlen, self.vocab_size, self.embed_dim, self.empty_rows = maxlen, vocab_size, embed_dim, empty_rows
        self.token_emb = layers.Embedding(vocab_size, embed_dim, name="token")
        self.pos_emb = layers.Embedding(maxlen, embed_dim, name="position")

    def build(self, input_shape: tuple) -> None:
        self.token_emb.build(input_shape)
        self.pos_emb.build((input_shape[-1],))

    def call(self, inputs: Any) -> Any:
        positions = ops.arange(ops.shape(inputs)[-1])
        return self.token_emb(inputs) + self.pos_emb(positions)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        real = ops.not_equal(inputs, 0)
        empty = ops.logical_not(ops.any(real, axis=-1, keepdims=True))
        if self.empty_rows == "first":
            # cumsum, not arange: the functional graph records these ops at the Input's full width
            empty = ops.logical_and(empty, ops.equal(ops.cumsum(ops.ones_like(inputs), axis=-1), 1))
        return ops.logical_or(real, empty)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (*input_shape, self.embed_dim)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "maxlen": self.maxlen, "vocab_size": self.vocab_size,
                "embed_dim": self.embed_dim, "empty_rows": self.empty_rows}


def ignores_padded_tail(model: keras.Model) -> bool:
    """False for a transformer saved before ``empty_rows="first"``: its output for a text with no
    known word depends on the padded width, so its batches are never trimmed."""
    return all(layer.empty_rows == "first" for layer in model.layers
               if isinstance(layer, TokenAndPositionEmbedding))


@keras.saving.register_keras_serializable(package="textclass")
class TransformerEncoder(layers.Layer):
    """One post-norm encoder block: self-attention over non-padding tokens, then a feed-forward net."""

    def __init__(self, embed_dim: int, num_heads: int, ff_dim: int, dropout: float = 0.1,
                 **kwargs: Any):
        super().__init__(**kwargs)
        self.embed_dim, self.num_heads, self.ff_dim, self.dropout = embed_dim, num_heads, ff_dim, dropout
        self.supports_masking = True
        self.attention = layers.MultiHeadAttention(num_heads, embed_dim // num_heads, name="attention")
        self.ffn_in = layers.Dense(ff_dim, activation="relu", name="ffn_in")
        self.ffn_out = layers.Dense(embed_dim, name="ffn_out")
        self.norm1 = layers.LayerNormalization(epsilon=1e-6, name="norm1")
        self.norm2 = layers.LayerNormalization(epsilon=1e-6, name="norm2")
        self.drop1 = layers.Dropout(dropout)
        self.drop2 = layers.Dropout(dropout)

    def build(self, input_shape: tuple) -> None:
        self.attention.build(input_shape, input_shape)
        self.norm1.build(input_shape)
        self.ffn_in.build(input_shape)
        self.ffn_out.build((*input_shape[:-1], self.ff_dim))
        self.norm2.build(input_shape)

    def call(self, inputs: Any, mask: Any = None, training: bool | None = None) -> Any:
        attention_mask = None if mask is None else ops.expand_dims(mask, axis=1)
        attended = self.attention(inputs, inputs, attention_mask=attention_mask, training=training)
        x = self.norm1(inputs + self.drop1(attended, training=training))
        ff = self.ffn_out(self.ffn_in(x))
        return self.norm2(x + self.drop2(ff, training=training))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "embed_dim": self.embed_dim, "num_heads": self.num_heads,
                "ff_dim": self.ff_dim, "dropout": self.dropout}


def build_transformer(
    *, input_dim: int, input_length: int, n_outputs: int, activation: str,
    embedding_matrix: np.ndarray | None = None, embedding_dim: int = 32, num_heads: int = 2,
    ff_dim: int = 64, dropout: float = 0.1,
) -> keras.Model:
    """Token + position embedding → one Transformer encoder block → masked mean pool → output."""
    if embedding_dim % num_heads:
        raise ParameterError(
            f"embedding_dim={embedding_dim} must be a multiple of num_heads={num_heads}"
        )
    inputs = keras.Input(shape=(None,), dtype="int32", name="tokens")
    x = TokenAndPositionEmbedding(input_length, input_dim, embedding_dim, empty_rows="first", name="embedding")(inputs)
    x = TransformerEncoder(embedding_dim, num_heads, ff_dim, dropout, name="encoder")(x)
    x = layers.GlobalAveragePooling1D(name="mean_pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(inputs, _output(x, n_outputs, activation), name="transformer")


@keras.saving.register_keras_serializable(package="textclass")
class SegmentMaxPool(layers.Layer):
    """GlobalMaxPool1D over packed rows: one sequence ``(1, positions, features)`` holding a batch's
    rows one after another, and ``bounds`` ``(rows, 2)``, each row's first and last window start
    (``models.batches.pack``). Row ``i`` gets the max over positions ``bounds[i, 0] ..
    bounds[i, 1]``; positions between rows (windows that straddle two rows) count for none.

    Its output has one row per text, so Keras' loss, metrics and their per-batch weights (the
    first input's leading size: ``bounds`` comes first) are those of the padded model's batch.
    """

    def call(self, bounds: Any, h: Any) -> Any:
        positions = ops.arange(ops.shape(h)[1], dtype=bounds.dtype)
        row = ops.sum(ops.cast(positions[None, :] >= bounds[:, :1], "int32"), axis=0) - 1
        inside = positions <= ops.take(bounds[:, 1], row)
        values = ops.where(inside[:, None], h[0], ops.cast(-np.inf, h.dtype))
        return ops.segment_max(values, row, num_segments=ops.shape(bounds)[0], sorted=True)

    def compute_output_shape(self, bounds_shape: tuple, h_shape: tuple) -> tuple:
        return (bounds_shape[0], h_shape[-1])


def packed_twin(model: keras.Model) -> keras.Model | None:
    """A training view of a max-pool model (Embedding → [Conv1D] → GlobalMaxPool1D → head) that
    reads packed batches: inputs ``(bounds, tokens)`` as ``models.batches.PackedBatches`` yields
    them, the same layers (so the same weights: training the twin trains ``model``), with the max
    pool replaced by ``SegmentMaxPool``. A batch's loss and gradients are the padded batch's
    (tests: 1e-5), on the row lengths plus a few positions each instead of the longest row's
    width times the rows. None for a model that is not such a chain.
    """
    chain = model.layers[1:]
    pools = [i for i, layer in enumerate(chain) if isinstance(layer, layers.GlobalMaxPooling1D)]
    if len(model.inputs) != 1 or len(pools) != 1 or any(
            layer.input is not before.output for before, layer in zip(model.layers, chain)):
        return None
    bounds = keras.Input(shape=(2,), dtype="int32", name="bounds")
    tokens = keras.Input(shape=(None,), batch_size=1, dtype="int32", name="packed_tokens")
    x = tokens
    for i, layer in enumerate(chain):
        x = SegmentMaxPool(name="segment_max_pool")(bounds, x) if i == pools[0] else layer(x)
    return keras.Model([bounds, tokens], x, name=f"{model.name}_packed")


class ShownModel(keras.callbacks.Callback):
    """Callbacks for a packed fit, shown ``model`` instead of the packed twin Keras trains (they
    may predict with it, which needs the model's own inputs); one that sets
    ``model.stop_training`` stops the twin's fit. Batch-end hooks stay asynchronous unless one of
    the callbacks implements them, as Keras decides for the callbacks themselves.
    """

    def __init__(self, callbacks: list, model: keras.Model) -> None:
        super().__init__()
        self.shown = model
        model.stop_training = False  # a flag left from an earlier fit would stop this one
        self.inner = keras.callbacks.CallbackList(callbacks, model=model)
        batch_ends = ("on_batch_end", "on_train_batch_end", "on_test_batch_end")
        self.async_safe = all(getattr(cb, "async_safe", False) or all(
            getattr(type(cb), hook) is getattr(keras.callbacks.Callback, hook) for hook in batch_ends)
            for cb in callbacks)

    def set_params(self, params: dict) -> None:
        super().set_params(params)
        self.inner.set_params(params)

    def _forward(self, hook: str, *args: Any, **kwargs: Any) -> None:
        getattr(self.inner, hook)(*args, **kwargs)
        if self.shown.stop_training:
            self.model.stop_training = True


for _hook in ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
              "on_train_batch_end", "on_test_begin", "on_test_end", "on_test_batch_begin", "on_test_batch_end"):
    setattr(ShownModel, _hook, functools.partialmethod(ShownModel._forward, _hook))
del _hook


def trim_padding(x: np.ndarray, extra: int, multiple: int = 8) -> np.ndarray:
    """Cut post-padded token ids to the longest real length + ``extra`` padded positions.

    The kept length is rounded up to a ``multiple`` (fewer distinct shapes, fewer JAX
    recompilations) and never exceeds the input's. Only for models whose ``ModelSpec.trim`` is
    not None, with ``extra = spec.trim_extra(params)``; for those the predictions are identical.
    Sort rows by length before batching to gain the most.
    """
    x = np.asarray(x)
    nonzero = x != 0
    # Real length = position of the last non-zero id + 1 (0 for an all-padding row).
    lengths = np.where(nonzero.any(axis=1), x.shape[1] - np.argmax(nonzero[:, ::-1], axis=1), 0)
    longest = int(lengths.max(initial=0))
    keep = min(x.shape[1], max(multiple, math.ceil((longest + extra) / multiple) * multiple))
    return x[:, :keep]


MAX_FOLDED_FLOATS = 1 << 26  # 256 MB of float32 tables at most; a larger CNN predicts through Keras


FOLDED_UNROLL = 4  # window positions per loop iteration of the folded pass (measured: 4 > 2 > 1)


@functools.cache
def _folded_forward() -> Any:
    """The folded CNN's forward pass, jitted once per process: the weights are arguments, not
    constants, so every fitted model of one shape (CV folds, search trials) shares one program.

    A loop over window positions keeps a running max of shape (batch, filters): the (batch,
    positions, filters) activations never exist, which on XLA CPU is 3x faster at 16 tokens and
    over 20x at 40 and more (they fall out of cache; bench/README.md). Max is exact, so the output
    is the same to the bit.
    """
    import jax
    import jax.numpy as jnp

    @functools.partial(jax.jit, static_argnames="activations")
    def forward(tables, bias, weights, x, activations):
        act, *head = activations
        k = tables.shape[0]

        def window(running, t):
            ids = jax.lax.dynamic_slice_in_dim(x, t, k, axis=1)
            z = sum(tables[j].at[ids[:, j]].get(mode="promise_in_bounds") for j in range(k))
            return jnp.maximum(running, act(z + bias)), None

        start = jnp.full((x.shape[0], tables.shape[2]), -jnp.inf, dtype=tables.dtype)
        h, _ = jax.lax.scan(window, start, jnp.arange(x.shape[1] - k + 1), unroll=FOLDED_UNROLL)
        for activation, (w, b) in zip(head, weights):
            h = activation(h @ w + b)
        return h

    return forward


def cnn_predictor(model: keras.Model) -> Any:
    """``build_cnn``'s forward pass with the embedding folded into the convolution, or None.

    A window's pre-activation is ``b + sum_j E[token_{t+j}] @ W_j``, and ``E @ W_j`` can be
    computed once: prediction then gathers and adds rows of ``kernel_size`` tables of shape
    (vocabulary, filters) instead of multiplying ``kernel_size * embedding_dim`` numbers into every
    filter at every position. The same outputs up to float32 rounding (tests: 1e-5); 2.5x
    ``predict_on_batch`` on UCI batches (bench/bench_train.py). Returns a function from a batch of
    token ids to an (asynchronous) JAX array, or to None for a batch narrower than the kernel;
    None where the model is not such a CNN on JAX. It holds no reference to the model.
    """
    if keras.backend.backend() != "jax" or model.name != "cnn":
        return None
    conv = model.get_layer("conv")
    embeddings = model.get_layer("embedding").embeddings.numpy()
    kernel, bias = (v.numpy() for v in conv.weights)
    k = kernel.shape[0]
    if (conv.padding != "valid" or tuple(conv.strides) != (1,) or tuple(conv.dilation_rate) != (1,)
            or k * embeddings.shape[0] * kernel.shape[2] > MAX_FOLDED_FLOATS):
        return None
    import jax.numpy as jnp

    tables = jnp.asarray(np.einsum("vd,jdf->jvf", embeddings, kernel))
    bias = jnp.asarray(bias)
    head = (model.get_layer("dense"), model.get_layer("output"))
    weights = tuple(tuple(jnp.asarray(v.numpy()) for v in layer.weights) for layer in head)
    activations = (conv.activation, *(layer.activation for layer in head))
    forward = _folded_forward()

    def predict(x: np.ndarray) -> Any:  # a batch narrower than a window: Keras' own conv decides
        return forward(tables, bias, weights, x, activations) if x.shape[1] >= k else None

    return predict
