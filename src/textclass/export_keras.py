"""Keras models as ONNX graphs, written layer by layer from their weights with ``onnx.helper``.

Why by hand rather than a converter (see the README's Export section for the measurements):

- Keras 3's ``model.export(format="onnx")`` on JAX calls ``jax2onnx``, which pulls flax, orbax,
  tensorstore and some twenty other packages, and lowers the LSTM/GRU loops to generic ``Loop``
  bodies; on TensorFlow it needs TensorFlow.
- Under ``KERAS_BACKEND=torch``, Keras' own ONNX path documents no dynamic shapes (every ``None``
  becomes 1), and Keras' torch LSTM is a Python loop that tracing unrolls to a fixed width.
- Every registry model is a chain of a dozen layer types whose ONNX equivalents are exact:
  Embedding = Gather, Conv1D = Conv, Dense = MatMul + Add, GlobalMaxPool = ReduceMax,
  Bidirectional(LSTM|GRU) = the ONNX ``LSTM``/``GRU`` ops with ``sequence_lens`` from the padding
  mask, attention = MatMul/Softmax/LayerNormalization (an Embedding followed by a Conv1D is
  fused into k table look-ups, see ``FUSIONS``). The graphs have a dynamic batch and, where
  the model allows, a dynamic width, so the runtime trims padding as ``TextClassifier`` does.

One converter per layer class in ``LAYERS`` (looked up along the MRO); a layer without one is a
one-line error naming it. The exporter checks the graph against the Keras model before writing
(``textclass.export``), so a converter that drifted would be refused, not shipped.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import onnx
from keras import layers
from onnx import TensorProto, helper, numpy_helper

from textclass.errors import ParameterError
from textclass.models.keras import TokenAndPositionEmbedding, TransformerEncoder

OPSET = 17


@dataclass
class Graph:
    """A growing ONNX graph: nodes, constants, and the state of the layer chain being converted."""

    nodes: list = field(default_factory=list)
    initializers: list = field(default_factory=list)
    tokens: str | None = None  # the int32 token-id input, for masks
    padding: str = "post"  # where the preprocessor pads: "pre" sequences are realigned for RNNs
    ignores_padding: bool = False  # set when every use of the padded tail goes through the mask
    _count: int = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, value: Any, hint: str = "c", dtype: Any = np.float32) -> str:
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def ints(self, *values: int) -> str:
        return self.const(list(values), "shape", np.int64)

    def op(self, op_type: str, *inputs: str, n_out: int = 1, **attrs: Any) -> Any:
        outs = [self.name(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, **attrs))
        return outs[0] if n_out == 1 else outs


def _weights(layer: Any) -> list[np.ndarray]:
    return [np.asarray(w, dtype=np.float32) for w in layer.get_weights()]


def _activation(g: Graph, x: str, name: str) -> str:
    table: dict[str, Callable[[], str]] = {
        "linear": lambda: x,
        "relu": lambda: g.op("Relu", x),
        "sigmoid": lambda: g.op("Sigmoid", x),
        "tanh": lambda: g.op("Tanh", x),
        "softmax": lambda: g.op("Softmax", x, axis=-1),
    }
    if not isinstance(name, str) or name not in table:
        raise ParameterError(f"cannot export activation {name!r}; supported: {', '.join(table)}")
    return table[name]()


# ---- layer converters: (graph, layer, x, mask) -> (x, mask) -------------------------------------

def _input(g: Graph, layer: Any, x: str, mask: str | None):
    return x, mask


def _identity(g: Graph, layer: Any, x: str, mask: str | None):
    return x, mask  # Dropout: the identity at inference


def _embedding(g: Graph, layer: layers.Embedding, x: str, mask: str | None):
    (table,) = _weights(layer)
    out = g.op("Gather", g.const(table, "embedding"), x, axis=0)
    if layer.mask_zero:
        mask = g.op("Not", g.op("Equal", x, g.const(0, "zero", np.int32)))
    return out, mask


def _flatten(g: Graph, layer: Any, x: str, mask: str | None):
    return g.op("Reshape", x, g.ints(0, -1)), None


def _dense(g: Graph, layer: layers.Dense, x: str, mask: str | None):
    w = _weights(layer)
    out = g.op("MatMul", x, g.const(w[0], "kernel"))
    if layer.use_bias:
        out = g.op("Add", out, g.const(w[1], "bias"))
    return _activation(g, out, layer.get_config()["activation"]), mask


def _check_conv1d(layer: layers.Conv1D) -> None:
    cfg = layer.get_config()
    if cfg["padding"] != "valid" or tuple(cfg["strides"]) != (1,) or tuple(cfg["dilation_rate"]) != (1,) \
            or cfg["groups"] != 1 or cfg["data_format"] != "channels_last":
        raise ParameterError(f"cannot export Conv1D {layer.name!r}: only padding='valid', stride 1, "
                             "dilation 1, one group, channels_last are supported")


def _conv1d(g: Graph, layer: layers.Conv1D, x: str, mask: str | None):
    _check_conv1d(layer)
    w = _weights(layer)
    kernel = np.transpose(w[0], (2, 1, 0))  # Keras (k, in, out) -> ONNX (out, in, k)
    inputs = [g.op("Transpose", x, perm=[0, 2, 1]), g.const(kernel, "conv")]
    if layer.use_bias:
        inputs.append(g.const(w[1], "conv_bias"))
    out = g.op("Transpose", g.op("Conv", *inputs), perm=[0, 2, 1])
    return _activation(g, out, layer.get_config()["activation"]), None


def _global_max(g: Graph, layer: Any, x: str, mask: str | None):
    if mask is not None:
        raise ParameterError(f"cannot export {layer.name!r}: GlobalMaxPooling1D after a masking layer")
    return g.op("ReduceMax", x, axes=[1], keepdims=0), None


def _global_average(g: Graph, layer: Any, x: str, mask: str | None):
    if mask is None:
        return g.op("ReduceMean", x, axes=[1], keepdims=0), None
    # Keras: sum of the kept steps / number of kept steps.
    kept = g.op("Unsqueeze", mask, g.ints(2))
    total = g.op("ReduceSum", g.op("Where", kept, x, g.const(0.0)), g.ints(1), keepdims=0)
    count = g.op("ReduceSum", g.op("Cast", kept, to=TensorProto.FLOAT), g.ints(1), keepdims=0)
    return g.op("Div", total, count), None


def _lstm_weights(cell: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    kernel, recurrent, bias = _weights(cell)
    u = recurrent.shape[0]
    order = np.concatenate([np.arange(u) + k * u for k in (0, 3, 1, 2)])  # Keras ifco -> ONNX iofc
    return kernel[:, order].T, recurrent[:, order].T, np.concatenate([bias[order], np.zeros(4 * u, np.float32)])


def _gru_weights(cell: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    kernel, recurrent, bias = _weights(cell)  # gates z, r, h in both Keras and ONNX
    return kernel.T, recurrent.T, bias.reshape(-1)  # reset_after: bias (2, 3u) = [input, recurrent]


_RECURRENT = {layers.LSTM: ("LSTM", _lstm_weights, {}), layers.GRU: ("GRU", _gru_weights, {"linear_before_reset": 1})}


def _bidirectional(g: Graph, layer: layers.Bidirectional, x: str, mask: str | None):
    fwd, bwd = layer.forward_layer, layer.backward_layer
    kind = _RECURRENT.get(type(fwd))
    cfg = fwd.get_config()
    problems = [
        kind is None and f"a {type(fwd).__name__} cell",
        layer.merge_mode != "concat" and f"merge_mode={layer.merge_mode!r}",
        cfg["return_sequences"] and "return_sequences=True",
        cfg.get("activation") != "tanh" and f"activation={cfg.get('activation')!r}",
        cfg.get("recurrent_activation") != "sigmoid" and f"recurrent_activation={cfg.get('recurrent_activation')!r}",
        not cfg.get("use_bias", True) and "use_bias=False",
        cfg.get("reset_after") is False and "reset_after=False",
    ]
    problems = [p for p in problems if p]
    if problems:
        raise ParameterError(f"cannot export Bidirectional {layer.name!r} with {', '.join(problems)}")
    op_type, weights, attrs = kind
    parts = [weights(fwd.cell), weights(bwd.cell)]
    W, R, B = (g.const(np.stack([p[i] for p in parts]), n) for i, n in enumerate(("W", "R", "B")))
    units = fwd.cell.units
    seq, lengths, steps = x, None, []
    if mask is not None:
        lengths = g.op("ReduceSum", g.op("Cast", mask, to=TensorProto.INT32), g.ints(1), keepdims=0)
        steps = [g.op("Max", lengths, g.const([1], "one", np.int32))]  # 0 steps: see below
        if g.padding == "pre":  # ids at the end: reverse the rows, then each real prefix back
            reversed_rows = g.op("Slice", x, g.ints(-1), g.ints(np.iinfo(np.int64).min), g.ints(1), g.ints(-1))
            seq = g.op("ReverseSequence", reversed_rows, g.op("Cast", steps[0], to=TensorProto.INT64),
                       batch_axis=0, time_axis=1)
        g.ignores_padding = True
    seq = g.op("Transpose", seq, perm=[1, 0, 2])  # (time, batch, features)
    _, h = g.op(op_type, seq, W, R, B, *steps, n_out=2, hidden_size=units, direction="bidirectional", **attrs)
    out = g.op("Reshape", g.op("Transpose", h, perm=[1, 0, 2]), g.ints(0, -1))  # [forward, backward]
    if lengths is not None:  # a text with no known word: Keras' state never leaves zero
        nonempty = g.op("Cast", g.op("Greater", lengths, g.const(0, "zero", np.int32)), to=TensorProto.FLOAT)
        out = g.op("Mul", out, g.op("Unsqueeze", nonempty, g.ints(1)))
    return out, None


def _token_and_position(g: Graph, layer: TokenAndPositionEmbedding, x: str, mask: str | None):
    tokens = g.op("Gather", g.const(_weights(layer.token_emb)[0], "token"), x, axis=0)
    width = g.op("Gather", g.op("Shape", x), g.const(1, "one", np.int64), axis=0)
    zero = g.const(0, "zero", np.int64)
    positions = g.op("Range", zero, width, g.const(1, "one", np.int64))
    out = g.op("Add", tokens, g.op("Gather", g.const(_weights(layer.pos_emb)[0], "position"), positions, axis=0))
    real = g.op("Not", g.op("Equal", x, g.const(0, "zero", np.int32)))
    # A row with no known word keeps its first position or all (TokenAndPositionEmbedding.compute_mask).
    any_real = g.op("Cast", g.op("ReduceMax", g.op("Cast", real, to=TensorProto.INT32), axes=[1], keepdims=1),
                    to=TensorProto.BOOL)
    empty = g.op("Not", any_real)
    if layer.empty_rows == "first":
        first = g.op("Equal", positions, zero)
        empty = g.op("And", empty, g.op("Unsqueeze", first, g.ints(0)))
    return out, g.op("Or", real, empty)


def _layer_norm(g: Graph, layer: layers.LayerNormalization, x: str) -> str:
    gamma, beta = _weights(layer)
    return g.op("LayerNormalization", x, g.const(gamma, "gamma"), g.const(beta, "beta"),
                axis=-1, epsilon=float(layer.epsilon))


def _attention(g: Graph, mha: layers.MultiHeadAttention, x: str, mask: str | None) -> str:
    heads, dim = mha.num_heads, mha.key_dim
    if not mha._use_bias or mha._value_dim != dim:
        raise ParameterError(f"cannot export attention {mha.name!r}: expected biases and value_dim == key_dim")

    def project(dense: Any, perm: list[int]) -> str:
        kernel, bias = _weights(dense)
        y = g.op("Add", g.op("MatMul", x, g.const(kernel.reshape(kernel.shape[0], -1))),
                 g.const(bias.reshape(-1)))
        return g.op("Transpose", g.op("Reshape", y, g.ints(0, 0, heads, dim)), perm=perm)

    q = g.op("Mul", project(mha._query_dense, [0, 2, 1, 3]), g.const(1.0 / math.sqrt(dim)))
    k = project(mha._key_dense, [0, 2, 3, 1])
    v = project(mha._value_dense, [0, 2, 1, 3])
    scores = g.op("MatMul", q, k)  # (batch, heads, query, key)
    if mask is not None:  # padded keys get no weight (Keras' masked softmax)
        keep = g.op("Unsqueeze", mask, g.ints(1, 2))
        scores = g.op("Where", keep, scores, g.const(-1e9))
    attended = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
    merged = g.op("Reshape", g.op("Transpose", attended, perm=[0, 2, 1, 3]), g.ints(0, 0, heads * dim))
    kernel, bias = _weights(mha._output_dense)
    return g.op("Add", g.op("MatMul", merged, g.const(kernel.reshape(heads * dim, -1))), g.const(bias))


def _transformer_encoder(g: Graph, layer: TransformerEncoder, x: str, mask: str | None):
    x1 = _layer_norm(g, layer.norm1, g.op("Add", x, _attention(g, layer.attention, x, mask)))
    ff, _ = _dense(g, layer.ffn_in, x1, None)
    ff, _ = _dense(g, layer.ffn_out, ff, None)
    return _layer_norm(g, layer.norm2, g.op("Add", x1, ff)), mask


LAYERS: dict[type, Callable] = {
    layers.InputLayer: _input,
    layers.Dropout: _identity,
    layers.Embedding: _embedding,
    layers.Flatten: _flatten,
    layers.Dense: _dense,
    layers.Conv1D: _conv1d,
    layers.GlobalMaxPooling1D: _global_max,
    layers.GlobalAveragePooling1D: _global_average,
    layers.Bidirectional: _bidirectional,
    TokenAndPositionEmbedding: _token_and_position,
    TransformerEncoder: _transformer_encoder,
}


def _embedding_conv1d(g: Graph, embedding: layers.Embedding, conv: layers.Conv1D, x: str, mask: str | None):
    """Embedding then Conv1D as k table look-ups: window offset j adds row ``ids[t + j]`` of
    ``E @ K[j]`` (vocabulary x filters), so the convolution's multiplications happen once, at
    export, instead of for every text (the CNN predicts several times faster; same function,
    float rounding apart)."""
    _check_conv1d(conv)
    (table,) = _weights(embedding)
    w = _weights(conv)
    k = w[0].shape[0]
    terms = []
    for j in range(k):
        fused = (table.astype(np.float64) @ w[0][j].astype(np.float64)).astype(np.float32)
        end = -(k - 1 - j) if j < k - 1 else np.iinfo(np.int64).max
        window = g.op("Slice", x, g.ints(j), g.ints(end), g.ints(1))  # ids[:, j : T - k + 1 + j]
        terms.append(g.op("Gather", g.const(fused, f"conv_table{j}"), window, axis=0))
    out = g.op("Sum", *terms)
    if conv.use_bias:
        out = g.op("Add", out, g.const(w[1], "conv_bias"))
    return _activation(g, out, conv.get_config()["activation"]), None


#: Adjacent layer pairs written as one cheaper, equivalent computation (if the first has no mask).
FUSIONS: dict[tuple[type, type], Callable] = {(layers.Embedding, layers.Conv1D): _embedding_conv1d}


def _converter(layer: Any) -> Callable:
    for cls in type(layer).__mro__:
        if cls in LAYERS:
            return LAYERS[cls]
    raise ParameterError(f"cannot export layer {layer.name!r} of type {type(layer).__name__}: "
                         f"no ONNX converter for it (supported: {', '.join(t.__name__ for t in LAYERS)})")


def export_model(model: keras.Model, *, task: str, padding: str = "post", name: str = "textclass") -> tuple[onnx.ModelProto, bool]:
    """A single-input chain of layers as an ONNX graph with output ``probabilities`` (batch, classes).

    Returns the graph and whether its output ignores the padded tail entirely (then the runtime
    may cut each batch to its longest text). A binary head's one sigmoid becomes [1 - p, p].
    """
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ParameterError(f"cannot export model {model.name!r}: expected one input and one output")
    spec = model.inputs[0]
    shape = ["batch", *("width" if d is None else int(d) for d in spec.shape[1:])]
    dtype = {"int32": TensorProto.INT32, "float32": TensorProto.FLOAT}.get(str(spec.dtype))
    if dtype is None:
        raise ParameterError(f"cannot export model {model.name!r}: input dtype {spec.dtype} (expected int32 or float32)")
    g = Graph(padding=padding)
    x, mask = "inputs", None
    chain, i = model.layers, 0
    while i < len(chain):
        pair = FUSIONS.get((type(chain[i]), type(chain[i + 1]))) if i + 1 < len(chain) else None
        if pair is not None and not getattr(chain[i], "mask_zero", False):
            x, mask = pair(g, chain[i], chain[i + 1], x, mask)
            i += 2
        else:
            x, mask = _converter(chain[i])(g, chain[i], x, mask)
            i += 1
    if task == "binary":
        x = g.op("Concat", g.op("Sub", g.const(1.0), x), x, axis=1)
    g.nodes.append(helper.make_node("Identity", [x], ["probabilities"]))
    graph = helper.make_graph(
        g.nodes, name, [helper.make_tensor_value_info("inputs", dtype, shape)],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", "classes"])], g.initializers)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="textclass")
    onnx.checker.check_model(onnx_model)
    return onnx_model, g.ignores_padding
