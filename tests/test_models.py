"""The model registry: tutorial architectures by parameter count, heads, safe save/load, trimming."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from textclass.errors import ParameterError
from textclass.models import MODELS, PREPROCESS_PARAMS, TRAIN_PARAMS, available_models, get_model
from textclass.models.keras import GlorotUniform, trim_padding

KERAS = [name for name, spec in MODELS.items() if spec.kind == "keras"]
SKLEARN = [name for name, spec in MODELS.items() if spec.kind == "sklearn"]
HEADS = {"binary": (1, "sigmoid"), "multiclass": (5, "softmax"), "multilabel": (28, "sigmoid")}


def build(name, *, input_dim=1747, input_length=100, n_outputs=1, activation="sigmoid", **hyper):
    """Build a registry model with its defaults (minus preprocessing/training) overridden by hyper."""
    spec = get_model(name)
    params = {k: v for k, v in spec.defaults.items() if k in spec.model_params}
    params.update(hyper)
    matrix = None
    if "vectors" in spec.defaults:
        matrix = np.random.default_rng(0).normal(size=(input_dim, 50)).astype("float32")
    return spec.build(input_dim=input_dim, input_length=input_length, n_outputs=n_outputs,
                      activation=activation, embedding_matrix=matrix, **params)


def tokens(n=16, input_dim=1747, input_length=100, seed=0):
    """Post-padded token ids of random real lengths 1..min(30, input_length)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, input_length), dtype="int32")
    for row, length in enumerate(rng.integers(1, min(30, input_length) + 1, size=n)):
        x[row, :length] = rng.integers(1, input_dim, size=length)
    return x


@pytest.mark.parametrize(
    "name, input_dim, expected",
    [("bow-dense", 1714, 17_161), ("embed-flatten", 1747, 137_371),
     ("embed-maxpool", 1747, 87_871), ("cnn", 1747, 240_129),
     ("glove-frozen", 1747, 87_871), ("glove-tuned", 1747, 87_871)],
)
def test_tutorial_parameter_counts(name, input_dim, expected):
    assert build(name, input_dim=input_dim).count_params() == expected


def test_tutorial_layer_counts():
    model = build("cnn")
    counts = {layer.name: layer.count_params() for layer in model.layers}
    assert counts == {"tokens": 0, "embedding": 174_700, "conv": 64_128, "max_pool": 0,
                      "dense": 1_290, "output": 11}


@pytest.mark.parametrize("name, trainable", [("glove-frozen", False), ("glove-tuned", True)])
def test_glove_embedding_trainable_and_initialised(name, trainable):
    matrix = np.random.default_rng(1).normal(size=(300, 50)).astype("float32")
    spec = get_model(name)
    model = spec.build(input_dim=300, input_length=100, n_outputs=1, activation="sigmoid",
                       embedding_matrix=matrix, trainable=spec.defaults["trainable"], dense_units=10)
    embedding = model.get_layer("embedding")
    assert embedding.trainable is trainable
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(embedding.embeddings), matrix)
    n_embedding_trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights) - 521
    assert n_embedding_trainable == (300 * 50 if trainable else 0)


@pytest.mark.parametrize("shape", [(1714, 10), (1790, 10), (10, 1), (5, 50, 128), (7,), ()])
def test_glorot_uniform_draws_keras_own_values(shape):
    keras.utils.set_random_seed(0)
    expected = keras.ops.convert_to_numpy(keras.initializers.GlorotUniform()(shape))
    keras.utils.set_random_seed(0)
    assert np.array_equal(GlorotUniform()(shape), expected)
    assert np.array_equal(GlorotUniform(seed=3)(shape), keras.initializers.GlorotUniform(seed=3)(shape))


def test_glorot_uniform_compiles_one_draw_for_nearby_vocabularies(caplog):
    """bow-dense's first kernel changes shape with every fold's vocabulary: one compiled draw."""
    import jax

    def draws(initializer, widths):
        caplog.clear()
        with jax.log_compiles(), caplog.at_level("DEBUG"):
            for width in widths:
                initializer(seed=0)((width, 10))
        return sum("Compiling" in r.getMessage() and "_uniform" in r.getMessage() for r in caplog.records)

    assert draws(keras.initializers.GlorotUniform, (1601, 1603, 1607)) == 3  # widths no other test uses
    assert draws(GlorotUniform, (1609, 1613, 1619)) <= 1


def test_glove_without_matrix_is_a_parameter_error():
    with pytest.raises(ParameterError, match="embedding_matrix"):
        get_model("glove-frozen").build(input_dim=10, input_length=5, n_outputs=1,
                                        activation="sigmoid")


@pytest.mark.parametrize("name", KERAS)
def test_keras_output_heads(name):
    for n_outputs, activation in HEADS.values():
        model = build(name, input_dim=200, input_length=20, n_outputs=n_outputs, activation=activation)
        assert tuple(model.output.shape) == (None, n_outputs)
        assert model.get_layer("output").activation.__name__ == activation


@pytest.mark.parametrize("name", KERAS)
def test_keras_safe_round_trip(name, tmp_path):
    # Multi-label head (28 sigmoids): the widest output, through a .keras file in safe mode.
    model = build(name, input_dim=200, input_length=20, n_outputs=28)
    x = (np.random.default_rng(0).poisson(1.0, size=(4, 200)).astype("float32")
         if get_model(name).inputs == "bow" else tokens(4, 200, 20))
    before = model.predict(x, verbose=0)
    assert before.shape == (4, 28)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), before, atol=1e-6)


def test_softmax_head_gives_distributions():
    model = build("cnn", input_dim=200, input_length=20, n_outputs=5, activation="softmax")
    np.testing.assert_allclose(model.predict(tokens(4, 200, 20), verbose=0).sum(axis=1), 1.0, atol=1e-5)


def tiny_texts():
    good = ["great food and lovely staff", "really good, would come again", "loved it!",
            "excellent value, great service", "wonderful place, so good", "the best pizza ever"]
    bad = ["terrible food and rude staff", "really bad, never again", "hated it!",
           "awful value, slow service", "horrible place, so bad", "the worst pizza ever"]
    meh = ["it was okay I guess", "average food, nothing special", "fine, not great not bad",
           "an ordinary lunch", "so-so service, ok food", "middling, it was alright"]
    return good, bad, meh


@pytest.mark.parametrize("name", SKLEARN)
def test_sklearn_single_label_probabilities(name):
    good, bad, meh = tiny_texts()
    texts, y = good + bad + meh, ["pos"] * 6 + ["neg"] * 6 + ["meh"] * 6
    for X, labels in [(good + bad, y[:12]), (texts, y)]:
        clf = get_model(name).build(multilabel=False, random_state=0).fit(X, labels)
        proba = clf.predict_proba(["great staff", "bad food"])
        assert proba.shape == (2, len(set(labels)))
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert list(clf.predict(["great food, lovely", "terrible and rude"])) == ["pos", "neg"]


@pytest.mark.parametrize("name", SKLEARN)
def test_sklearn_multilabel_per_tag_probabilities(name):
    good, bad, meh = tiny_texts()
    texts = good + bad + meh
    # Tags: positive, negative, mentions food. Each value of each tag occurs >= 5 times.
    y = np.array([[t in good, t in bad, "food" in t or "pizza" in t or "lunch" in t] for t in texts])
    y[:5, 2] = 1
    y[12:17, 2] = 0
    clf = get_model(name).build(multilabel=True, random_state=0).fit(texts, y.astype(int))
    proba = clf.predict_proba(["great food", "awful service"])
    assert proba.shape == (2, 3)
    assert ((proba >= 0) & (proba <= 1)).all()
    assert not np.allclose(proba.sum(axis=1), 1.0)  # independent tags, not a distribution


def test_nbsvm_beats_chance_on_a_held_out_sentence():
    good, bad, _ = tiny_texts()
    clf = get_model("nbsvm").build(multilabel=False, random_state=0).fit(good + bad, [1] * 6 + [0] * 6)
    assert clf.predict_proba(["so good, loved the staff"])[0, 1] > 0.5
    assert clf.named_steps["classifier"].ratios_.shape[0] == 1  # binary: one ratio vector


def test_unknown_model_suggests_the_closest_name():
    with pytest.raises(ParameterError, match="'cnn'"):
        get_model("cnnn")


def test_registry_is_complete_and_consistent():
    from textclass.space import _TRAINING_BY_KIND

    assert [s.name for s in available_models()] == list(MODELS)
    assert set(MODELS) >= {"bow-logreg", "bow-dense", "embed-flatten", "embed-maxpool",
                           "glove-frozen", "glove-tuned", "cnn", "tfidf-linear", "nbsvm",
                           "bilstm", "gru", "transformer"}
    cnn = get_model("cnn").defaults
    assert (cnn["embedding_dim"], cnn["num_filters"], cnn["kernel_size"], cnn["epochs"],
            cnn["batch_size"], cnn["maxlen"], cnn["num_words"], cnn["padding"]) == (
        100, 128, 5, 10, 10, 100, 5000, "post")
    for spec in available_models():
        assert "\n" not in spec.summary and spec.summary
        assert PREPROCESS_PARAMS[spec.inputs] <= set(spec.defaults), spec.name
        assert (TRAIN_PARAMS <= set(spec.defaults)) == (spec.kind in ("keras", "torch")), spec.name
        # A search space names the model's hyperparameters or training options its kind takes.
        assert set(spec.space) <= set(spec.defaults) | _TRAINING_BY_KIND[spec.kind], spec.name


def test_cli_lists_every_model(capsys):
    from textclass.cli import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in MODELS:
        assert name in out


@pytest.mark.parametrize("name, hyper", [("cnn", {}), ("cnn", {"kernel_size": 7}),
                                         ("embed-maxpool", {}), ("glove-tuned", {}), ("transformer", {})])
def test_trimmed_padding_gives_identical_predictions(name, hyper):
    spec = get_model(name)
    extra = spec.trim_extra(hyper)
    assert extra == hyper.get("kernel_size", {"cnn": 5, "transformer": 0}.get(name, 1))
    model = build(name, **hyper)
    x = tokens(32)
    x[5] = 0  # a text with no known word
    trimmed = trim_padding(x, extra, multiple=1)
    assert trimmed.shape[1] < x.shape[1] // 2
    np.testing.assert_allclose(model.predict(trimmed, verbose=0), model.predict(x, verbose=0),
                               atol=1e-6)


def test_trim_padding_keeps_longest_plus_extra_and_never_grows():
    x = np.zeros((3, 12), dtype="int32")
    x[0, :4] = 7
    x[1, :2] = 3
    assert trim_padding(x, 2, multiple=1).shape == (3, 6)
    assert trim_padding(x, 2, multiple=8).shape == (3, 8)
    assert trim_padding(x, 20).shape == (3, 12)
    assert trim_padding(np.zeros((2, 5), dtype="int32"), 1, multiple=1).shape == (2, 1)
    assert get_model("embed-flatten").trim_extra() is None
    assert [get_model(n).trim_extra() for n in ("bilstm", "gru", "transformer")] == [0, 0, 0]
    assert get_model("transformer").trim_extra({"padding": "pre"}) is None  # positions would move


def _as_saved_before(model):
    """The same transformer as textclass built it before ``empty_rows``: a saved file holds the mask
    ops of the graph it was built with, and its config, lacking the key, loads as "all"."""
    from textclass.models.keras import TokenAndPositionEmbedding

    assert TokenAndPositionEmbedding(40, 10, 8).empty_rows == "all"
    x = inputs = keras.Input(shape=model.input_shape[1:], dtype="int32", name="tokens")
    for layer in model.layers[1:]:
        config = layer.get_config()
        if isinstance(layer, TokenAndPositionEmbedding):
            config.pop("empty_rows")
        x = type(layer).from_config(config)(x)
    old = keras.Model(inputs, x)
    old.set_weights(model.get_weights())
    return old


def test_transformer_empty_rows_keep_one_position_and_older_files_keep_every_one():
    from textclass.estimator import TextClassifier
    from textclass.models.keras import TokenAndPositionEmbedding, ignores_padded_tail

    model = build("transformer", input_length=40)
    old = _as_saved_before(model)
    assert old.get_layer("embedding").empty_rows == "all" and ignores_padded_tail(model)
    assert not ignores_padded_tail(old)
    empty = np.zeros((1, 40), dtype="int32")
    # The new rule: a row with no known word reads position 0 only, at any width.
    np.testing.assert_allclose(model.predict(empty[:, :8], verbose=0), model.predict(empty, verbose=0), atol=1e-6)
    # The old one attends over every position: its output depends on the width, so it is never trimmed.
    assert np.abs(old.predict(empty[:, :8], verbose=0) - old.predict(empty, verbose=0)).max() > 1e-4
    with pytest.raises(ParameterError, match="empty_rows must be 'first' or 'all'"):
        TokenAndPositionEmbedding(40, 10, 8, empty_rows="none")

    texts = ["good food", "bad service", "great place", "awful taste"] * 5
    clf = TextClassifier("transformer", embedding_dim=8, ff_dim=8, maxlen=40, epochs=1, random_state=0)
    clf.fit(texts, [1, 0, 1, 0] * 5)
    assert clf._trim() == 0
    clf.model_ = _as_saved_before(clf.model_)
    assert clf._trim() is None
    full = clf.model_.predict(clf.preprocessor_.transform(["zzqx", "good place"]), verbose=0)
    np.testing.assert_allclose(clf.predict_proba(["zzqx", "good place"])[:, 1], full[:, 0], atol=1e-6)


def _loss_and_grads(model, x, y):
    """Binary cross-entropy of a training-mode forward pass and its gradient for every weight."""
    import jax

    trainable = [v.value for v in model.trainable_variables]
    frozen = [v.value for v in model.non_trainable_variables]

    def loss(weights):
        pred, _ = model.stateless_call(weights, frozen, x, training=True)
        return keras.losses.binary_crossentropy(y[:, None], pred).mean()

    return jax.value_and_grad(loss)(trainable)


@pytest.mark.parametrize("name, hyper", [("cnn", {}), ("cnn", {"kernel_size": 7}), ("embed-maxpool", {}),
                                         ("glove-tuned", {}), ("bilstm", {"dropout": 0.0}),
                                         ("gru", {"dropout": 0.0}), ("transformer", {"dropout": 0.0})])
def test_trimmed_training_batch_has_the_padded_loss_and_gradients(name, hyper):
    from textclass.models.batches import needed_widths

    spec = get_model(name)
    extra = spec.trim_extra(hyper)
    model = build(name, **hyper)
    x = tokens(10)
    x[3] = 0  # a text with no known word
    y = np.random.default_rng(1).integers(0, 2, size=10).astype("float32")
    width = int(needed_widths(int((x != 0).sum(axis=1).max()), extra, 8, 100))
    assert width < 50
    loss_full, grads_full = _loss_and_grads(model, x, y)
    loss_trim, grads_trim = _loss_and_grads(model, x[:, :width], y)
    np.testing.assert_allclose(loss_trim, loss_full, atol=1e-5)
    for g_trim, g_full in zip(grads_trim, grads_full):
        np.testing.assert_allclose(g_trim, g_full, atol=1e-5)


@pytest.mark.parametrize("name, hyper", [("cnn", {}), ("cnn", {"kernel_size": 7}), ("embed-maxpool", {}),
                                         ("glove-tuned", {})])
def test_packed_training_batch_has_the_padded_loss_and_gradients(name, hyper):
    from textclass.models.batches import lengths_of, pack
    from textclass.models.keras import packed_twin

    extra = get_model(name).trim_extra(hyper)
    model = build(name, input_length=40, **hyper)
    x = tokens(10, input_length=40)
    x[3] = 0  # a text with no known word
    x[5] = np.arange(1, 41)  # one truncated at maxlen: no padded window of its own
    y = np.random.default_rng(1).integers(0, 2, size=10).astype("float32")
    twin = packed_twin(model)
    assert twin.trainable_variables == model.trainable_variables  # shared layers, one set of weights
    bounds, packed = pack(x, lengths_of(x), extra)
    assert packed.shape[1] < 0.8 * x.size
    loss_full, grads_full = _loss_and_grads(model, x, y)
    loss_packed, grads_packed = _loss_and_grads(twin, (bounds, packed), y)
    np.testing.assert_allclose(loss_packed, loss_full, atol=1e-5)
    for g_packed, g_full in zip(grads_packed, grads_full):
        np.testing.assert_allclose(g_packed, g_full, atol=1e-5)


def test_pack_lays_rows_end_to_end_with_the_padding_each_reads():
    from textclass.models.batches import PACK_STEP, pack

    x = np.array([[7, 8, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6]], dtype="int32")
    bounds, packed = pack(x, np.array([2, 0, 6]), extra=3)
    # 2 ids + 3 padded, 0 + 3 padded, 6 ids and no room for padding (maxlen 6); windows of 3
    np.testing.assert_array_equal(packed[0, :14], [7, 8, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6])
    assert packed.shape == (1, PACK_STEP) and not packed[0, 14:].any()
    np.testing.assert_array_equal(bounds, [[0, 2], [5, 5], [8, 11]])
    with pytest.raises(ValueError, match="need 14 packed positions, more than width 8"):
        pack(x, np.array([2, 0, 6]), extra=3, width=8)


def test_packed_batches_are_keras_own_shuffled_batches_at_one_width():
    from textclass.models.batches import PACK_STEP, PackedBatches, lengths_of, pack

    x = tokens(203, seed=5)
    y = np.arange(len(x))
    np.random.seed(0)
    data = PackedBatches(x, y, 10, 5, epochs=3)
    expected = [np.random.permutation(len(x)) for _ in range(4)]  # the draws Keras' own fit would make
    np.random.seed(0)
    data = PackedBatches(x, y, 10, 5, epochs=3)  # finding the width leaves the generator as it was
    widths = set()
    for order in expected:
        for i in range(data.num_batches):
            (bounds, packed), yb = data[i]
            np.testing.assert_array_equal(yb, order[i * 10:(i + 1) * 10])
            widths.add(packed.shape[1])
            want_bounds, want = pack(x[yb], lengths_of(x[yb]), 5, packed.shape[1])
            np.testing.assert_array_equal(packed, want)
            np.testing.assert_array_equal(bounds, want_bounds)
        data.on_epoch_end()
    assert widths == {data.width} and data.width % PACK_STEP == 0
    assert data.width < 10 * 40  # below the trimmed batches' positions: 30 words + 5, rounded up to 8
    np.random.permutation(len(x))  # something else draws: a batch may need more, and gets it
    (_, packed), yb = data[0]
    assert packed.shape[1] >= int(np.minimum(lengths_of(x[yb]) + 5, 100).sum())


def test_packed_twin_only_for_max_pool_chains():
    from textclass.models.keras import packed_twin

    for name in ("bilstm", "transformer", "embed-flatten"):
        assert packed_twin(build(name)) is None
    twin = packed_twin(build("cnn"))
    assert [layer.name for layer in twin.layers][-4:] == ["conv", "segment_max_pool", "dense", "output"]
    assert [get_model(n).packed is not None for n in ("cnn", "embed-maxpool", "glove-frozen", "gru")] == [
        True, True, True, False]


def test_trimmed_batches_cover_every_row_in_few_widths():
    from textclass.models.batches import TrimmedBatches, choose_widths, lengths_of

    x = tokens(2000, seed=3)
    x[:20, :] = 0
    x[20:40, :95] = 5  # a long tail: near-maxlen rows
    y = np.arange(len(x))
    lengths = lengths_of(x)
    widths = choose_widths(lengths, 32, 5, epochs=20, maxlen=100, step=8)
    assert 1 < len(widths) <= 4 and widths[-1] == 100 and all(w % 4 == 0 for w in widths)
    assert choose_widths(lengths[:200], 32, 5, epochs=2, maxlen=100, step=8) == [100]  # little data: one
    data = TrimmedBatches(x, y, 32, widths, 5, seed=0)
    shapes, orders = set(), []
    for _ in range(3):
        rows = []
        for i in range(data.num_batches):
            xb, yb = data[i]
            assert xb.shape[1] in widths and xb.shape[1] >= min(100, lengths[yb].max() + 5)
            np.testing.assert_array_equal(xb, x[yb, :xb.shape[1]])
            shapes.add(xb.shape)
            rows.extend(yb.tolist())
        assert sorted(rows) == list(range(len(x)))
        orders.append(rows)
        data.on_epoch_end()
    assert orders[0] != orders[1]  # reshuffled every epoch
    assert len(shapes) <= len(widths) + 1  # the partial last batch: one shape more
    again = TrimmedBatches(x, y, 32, widths, 5, seed=0)
    assert [again[i][1].tolist() for i in range(again.num_batches)] == [orders[0][i:i + 32] for i in range(0, len(x), 32)]


def test_training_on_trimmed_batches_gives_the_full_width_weights():
    from textclass.models.batches import TrimmedBatches

    x, y = tokens(40, seed=4), np.arange(40) % 2
    weights = []
    for widths in ([100], [40]):  # the same seed, the same batches: cut to 30 tokens + 5 + rounding, or not
        keras.utils.set_random_seed(0)
        model = build("cnn", embedding_dim=8, num_filters=4)
        model.compile(optimizer="adam", loss="binary_crossentropy")
        model.fit(TrimmedBatches(x, y, 8, widths, 5, seed=0), epochs=2, verbose=0, shuffle=False)
        weights.append(model.get_weights())
    for trimmed, full in zip(*weights):
        np.testing.assert_allclose(trimmed, full, atol=1e-5)


@pytest.mark.parametrize("name, params", [("cnn", {"num_filters": 4}), ("cnn", {"num_filters": 4, "class_weight": "balanced"}),
                                          ("embed-maxpool", {}), ("gru", {"units": 4, "dropout": 0.0})])
def test_seeded_fit_trains_as_the_padded_fit_does(monkeypatch, name, params):
    """The max-pool models train on packed rows, the others (little data: one width) on the
    trimmed rows that Keras shuffles itself; either way a seeded fit (validation split and early
    stopping included) sees the padded fit's batches and ends with its weights, so CV figures
    stay what they were."""
    from textclass.estimator import TextClassifier
    from textclass.models import ModelSpec
    from textclass.models.batches import PackedBatches

    rng = np.random.default_rng(0)
    words = ["good", "great", "bad", "awful", "movie", "food", "the", "was", "very", "not"]
    texts = [" ".join(rng.choice(words, size=rng.integers(2, 12))) for _ in range(60)]
    labels = [int(("good" in t or "great" in t) and "not" not in t) for t in texts]
    fed, real_fit = [], keras.Model.fit

    def spy(model, x=None, *args, **kwargs):
        fed.append(x)
        return real_fit(model, x, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", spy)
    params = dict(random_state=0, epochs=3, batch_size=8, embedding_dim=8, validation_split=0.2,
                  early_stopping=True, patience=1, **params)
    fast = TextClassifier(name, **params).fit(texts, labels)
    monkeypatch.setattr(ModelSpec, "trim_extra", lambda self, params=None: None)  # the padded fit
    padded = TextClassifier(name, **params).fit(texts, labels)
    if name == "gru":
        assert [x.shape[1] for x in fed] == [16, 100]  # 11 words, rounded up to 8; then maxlen
    else:  # 8 rows of at most 11 words + 5 (or 1) padded positions each, then the padded fit
        assert isinstance(fed[0], PackedBatches) and fed[0].width <= 128 and fed[1].shape[1] == 100
    for a, b in zip(fast.model_.get_weights(), padded.model_.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert fast.history_["loss"] == pytest.approx(padded.history_["loss"], abs=1e-5)
    assert fast.history_["val_loss"] == pytest.approx(padded.history_["val_loss"], abs=1e-5)
    assert fast.history_["accuracy"] == pytest.approx(padded.history_["accuracy"], abs=1e-6)


def test_callbacks_of_a_packed_fit_see_the_model_and_can_stop_it():
    """Keras trains the packed twin; a callback still predicts with the model itself (padded ids,
    as reproduce's learning curves do) and stops the fit by the model's ``stop_training``."""
    from textclass.estimator import TextClassifier

    texts = ["good food", "bad service", "great place here", "awful taste and rude"] * 10
    seen = []

    class Curve(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append((self.model.name, self.model.predict_on_batch(np.ones((2, 20), dtype="int32")).shape))
            self.model.stop_training = epoch == 1

    clf = TextClassifier("cnn", embedding_dim=8, num_filters=4, maxlen=20, epochs=5, random_state=0)
    clf.fit(texts, [1, 0, 1, 0] * 10, callbacks=[Curve()])
    assert seen == [("cnn", (2, 1))] * 2 and len(clf.history_["loss"]) == 2
