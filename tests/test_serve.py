"""``textclass serve`` against real uvicorn servers on 127.0.0.1, and ``predict --stream`` over a pipe."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from _serve_support import TINY_CNN, running, train_bow_run, yelp
from conftest import real_dataset

httpx = pytest.importorskip("httpx", reason="httpx is not installed: pip install -e '.[test]'")

from textclass.cli import main  # noqa: E402
from textclass.estimator import TextClassifier  # noqa: E402
from textclass.predict import load_predictor  # noqa: E402
from textclass.serve import MicroBatcher, create_app, run_metrics  # noqa: E402

SENTENCES = ["The food was great", "Never again, awful service", "ok", "Loved the staff and the wine list!"]


@pytest.fixture(scope="module")
def bow_run(tmp_path_factory):
    return train_bow_run(tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="module")
def bow(bow_run):
    return load_predictor(bow_run)


@pytest.fixture(scope="module")
def bow_url(bow, bow_run):
    with running(create_app(bow, metrics=run_metrics(bow_run))) as url:
        yield url


@pytest.fixture(scope="module")
def cnn():
    df = yelp()
    return TextClassifier("cnn", random_state=0, **TINY_CNN).fit(df.text, df.label)


@pytest.fixture(scope="module")
def cnn_app(cnn):
    # A long batch wait, so that concurrent test requests surely meet in one batch.
    return create_app(cnn, max_texts=32, max_batch=16, batch_wait_ms=40)


@pytest.fixture(scope="module")
def cnn_url(cnn_app):
    with running(cnn_app) as url:
        yield url


@pytest.fixture
def client(bow_url):
    with httpx.Client(base_url=bow_url, timeout=30) as c:
        yield c


def _error(response, status, kind):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == kind and isinstance(body["detail"], str) and "\n" not in body["detail"]
    return body


# ---- predictions ----

def test_predict_answers_every_text_with_the_models_own_probabilities(client, bow):
    r = client.post("/predict", json={"texts": SENTENCES})
    assert r.status_code == 200
    predictions = r.json()["predictions"]
    proba = bow.predict_proba(SENTENCES)
    assert [p["label"] for p in predictions] == bow.predict(SENTENCES).tolist()
    for p, row in zip(predictions, proba):
        assert list(p["probabilities"]) == ["0", "1"]
        assert np.allclose(list(p["probabilities"].values()), row, atol=1e-6)
    assert predictions[0]["label"] == 1 and predictions[1]["label"] == 0


def test_multilabel_answers_the_tags(tmp_path):
    df = real_dataset("goemotions").head(400)
    clf = TextClassifier("bow-logreg").fit(df.text, df.label)
    texts = ["thank you so much, I love it", "this is awful"]
    with running(create_app(clf, batching=False)) as url:
        predictions = httpx.post(f"{url}/predict", json={"texts": texts}).json()["predictions"]
    expected = clf.predict(texts)
    proba = clf.predict_proba(texts)
    for p, tags, row in zip(predictions, expected, proba):
        assert isinstance(p["label"], list) and p["label"] == list(tags)
        assert list(p["probabilities"]) == [str(t) for t in clf.classes_]
        assert np.allclose(list(p["probabilities"].values()), row, atol=1e-6)
    assert "gratitude" in predictions[0]["label"]


def test_concurrent_cnn_requests_share_forward_passes_and_match_single_calls(cnn, cnn_app, cnn_url):
    words = list(cnn.preprocessor_.tokenizer.word_index)[:200]
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(words, size=int(rng.integers(1, 30)))) for _ in range(24)]

    async def send_all():
        async with httpx.AsyncClient(base_url=cnn_url, timeout=30) as c:
            return await asyncio.gather(*(c.post("/predict", json={"texts": [t]}) for t in texts))

    before = cnn_app.state.batcher.batches
    responses = asyncio.run(send_all())
    batches = cnn_app.state.batcher.batches - before
    assert all(r.status_code == 200 for r in responses)
    assert batches < len(texts) / 2  # 24 requests in a few shared forward passes
    served = np.array([list(r.json()["predictions"][0]["probabilities"].values()) for r in responses])
    alone = np.vstack([cnn.predict_proba([t]) for t in texts])
    assert np.allclose(served, alone, atol=1e-5)


def test_keras_shapes_are_compiled_at_start_up(cnn, cnn_url):
    jax_monitoring = pytest.importorskip("jax.monitoring")
    compiles = []
    jax_monitoring.register_event_duration_secs_listener(
        lambda event, duration, **kw: compiles.append(event) if event.endswith("backend_compile_duration") else None)
    words = list(cnn.preprocessor_.tokenizer.word_index)[:300]
    rng = np.random.default_rng(1)
    with httpx.Client(base_url=cnn_url, timeout=30) as c:
        for n in (1, 2, 3, 7, 16, 32):  # every row bucket, texts from 1 word to past maxlen
            texts = [" ".join(rng.choice(words, size=int(rng.integers(1, 40)))) for _ in range(n)]
            assert c.post("/predict", json={"texts": texts}).status_code == 200
    assert compiles == []


def test_micro_batcher_splits_fills_and_survives_a_failure():
    from concurrent.futures import ThreadPoolExecutor

    calls = []

    def fn(texts):
        calls.append(list(texts))
        if "boom" in texts:
            raise RuntimeError("model failed")
        return [t.upper() for t in texts]

    async def scenario():
        async with MicroBatcher(fn, executor, max_batch=4, max_wait=0.05) as batcher:
            requests = [["a"], ["b", "c"], ["d"], ["e"], ["f", "g", "h", "i", "j"], ["k"]]
            results = await asyncio.gather(*(batcher.submit(r) for r in requests))
            failed = await asyncio.gather(batcher.submit(["boom"]), return_exceptions=True)
            after = await batcher.submit(["z"])
            return results, failed, after

    with ThreadPoolExecutor(1) as executor:
        results, failed, after = asyncio.run(scenario())
    assert results == [["A"], ["B", "C"], ["D"], ["E"], ["F", "G", "H", "I", "J"], ["K"]]
    # In arrival order, whole requests while they fit in 4 texts; the 5-text request runs alone.
    assert calls == [["a", "b", "c", "d"], ["e"], ["f", "g", "h", "i", "j"], ["k"], ["boom"], ["z"]]
    assert isinstance(failed[0], RuntimeError) and after == ["Z"]


# ---- model, health, page ----

def test_model_health_and_docs(client, bow, bow_run):
    info = client.get("/model").json()
    metrics = json.loads((bow_run / "metrics.json").read_text())
    assert info["name"] == "bow-logreg" and info["task"] == "binary" and info["labels"] == [0, 1]
    assert info["threshold"] == 0.5 and info["hyperparameters"] == {"C": 1.0, "n_jobs": None}
    assert info["metrics"]["accuracy"] == metrics["accuracy"] and info["metrics"]["n"] == 150
    assert info["limits"] == {"max_texts": 256, "max_chars": 10000, "max_body_bytes": 1 << 20}
    assert info["explain"] is True
    assert client.get("/health").json() == {"status": "ok", "model": "bow-logreg"}
    spec = client.get("/openapi.json").json()
    assert {"/predict", "/explain", "/model", "/health"} <= set(spec["paths"])
    texts = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]["texts"]
    assert texts["maxItems"] == 256 and texts["items"]["maxLength"] == 10000
    assert client.get("/docs").status_code == 200


def test_explain_gives_each_words_contribution_through_http(client, bow):
    texts = ["The food was great", "Awful, the worst service"]
    r = client.post("/explain", json={"texts": texts})
    assert r.status_code == 200, r.text
    found = r.json()["explanations"]
    assert [e["text"] for e in found] == texts and [e["label"] for e in found] == [1, 0]
    for e, direct in zip(found, bow.explain(texts)):
        assert e["method"] == "exact" and e["score"] == pytest.approx(direct.score, abs=1e-9)
        assert e["base"] + sum(w["weight"] for w in e["words"]) == pytest.approx(e["score"], abs=1e-6)
        assert all(e["text"][w["start"]:w["end"]] == w["word"] for w in e["words"])
    weights = {w["word"]: w["weight"] for w in found[0]["words"]}
    assert weights["great"] > 0 and max(weights, key=weights.get) == "great"
    other = client.post("/explain", json={"texts": texts[:1], "label": 0}).json()["explanations"][0]
    assert other["label"] == 0 and other["score"] == pytest.approx(-found[0]["score"])
    body = _error(client.post("/explain", json={"texts": texts, "label": "maybe"}), 422, "invalid_request")
    assert "maybe" in body["detail"]
    _error(client.post("/explain", json={"texts": []}), 422, "invalid_request")


def test_an_onnx_export_serves_the_same_predictions(bow_run, bow, tmp_path):
    from textclass.export import export

    exported = load_predictor(export(bow_run, tmp_path / "onnx"))
    assert type(exported).__module__ == "textclass.runtime"
    with running(create_app(exported, batching=False)) as url:
        info = httpx.get(f"{url}/model").json()
        predictions = httpx.post(f"{url}/predict", json={"texts": SENTENCES}).json()["predictions"]
        explained = httpx.post(f"{url}/explain", json={"texts": SENTENCES[:1]}).json()["explanations"][0]
    assert info["name"] == "bow-logreg" and info["labels"] == [0, 1]
    for p, row in zip(predictions, bow.predict_proba(SENTENCES)):
        assert np.allclose(list(p["probabilities"].values()), row, atol=1e-5)
    assert [p["label"] for p in predictions] == bow.predict(SENTENCES).tolist()
    weights = {w["word"]: w["weight"] for w in explained["words"]}
    assert explained["method"] == "occlusion" and max(weights, key=weights.get) == "great"


def test_the_page_and_its_assets_come_from_the_service(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "http://" not in page.text and "https://" not in page.text  # no CDN: works offline
    for asset, kind in (("/static/app.js", "javascript"), ("/static/app.css", "text/css")):
        r = client.get(asset)
        assert r.status_code == 200 and kind in r.headers["content-type"]
        assert "https://" not in r.text
    assert "/static/app.js" in page.text and "/static/app.css" in page.text


def test_load_predictor_takes_a_run_or_its_model_directory(bow_run, tmp_path):
    from textclass.errors import ModelFileError

    for path in (bow_run, bow_run / "model"):
        assert load_predictor(path).predict(["great food"]).tolist() == [1]
    assert run_metrics(bow_run)["accuracy"] == run_metrics(bow_run / "model")["accuracy"]
    assert run_metrics(tmp_path) is None
    with pytest.raises(ModelFileError, match="not a textclass model directory"):
        load_predictor(tmp_path)


# ---- limits and bad requests ----

def test_limits_name_the_limit(bow):
    with running(create_app(bow, max_texts=3, max_chars=20, max_body_bytes=200)) as url, \
            httpx.Client(base_url=url, timeout=30) as c:
        assert c.post("/predict", json={"texts": ["a"] * 3}).status_code == 200
        assert _error(c.post("/predict", json={"texts": ["a"] * 4}), 422, "too_many_texts")["limit"] == "max_texts"
        assert c.post("/predict", json={"texts": ["x" * 20]}).status_code == 200
        body = _error(c.post("/predict", json={"texts": ["ok", "x" * 21]}), 422, "text_too_long")
        assert body["limit"] == "max_chars" and "texts[1]" in body["detail"]
        big = json.dumps({"texts": ["word " * 50]}).encode()
        assert _error(c.post("/predict", content=big), 413, "body_too_large")["limit"] == "max_body_bytes"

        def chunked():  # no Content-Length: the limit holds while the body is read
            yield b'{"texts": ['
            for _ in range(40):
                yield b'"abcdefgh",'
            yield b'"x"]}'

        r = c.post("/predict", content=chunked())
        assert r.request.headers.get("transfer-encoding") == "chunked"
        assert _error(r, 413, "body_too_large")["limit"] == "max_body_bytes"
        assert c.get("/health").status_code == 200  # and the service goes on


def test_one_mib_body_limit_by_default(client):
    r = client.post("/predict", content=b'{"texts": ["' + b"a" * (1 << 20) + b'"]}')
    _error(r, 413, "body_too_large")


@pytest.mark.parametrize("body, status, kind, where", [
    (b"{not json", 400, "invalid_json", "not valid UTF-8 JSON"),
    (b'{"texts": ["caf\xe9"]}', 400, "invalid_json", "UTF-8"),  # Latin-1, not UTF-8
    (b"\xff\xfe\x00{", 400, "invalid_json", "JSON"),
    (b"", 400, "invalid_json", "JSON"),
    (b'{"texts": []}', 422, "invalid_request", "texts: List should have at least 1 item"),
    (b'{"texts": "one text"}', 422, "invalid_request", "texts: Input should be a valid array"),
    (b'{"texts": ["ok", 3]}', 422, "invalid_request", "texts.1: Input should be a valid string"),
    (b'{"texts": [null]}', 422, "invalid_request", "texts.0"),
    (b'{"text": ["typo"]}', 422, "invalid_request", "texts: Field required"),
    (b'["a"]', 422, "invalid_request", "body: Input should be an object"),
])
def test_bad_requests_get_a_json_4xx(client, body, status, kind, where):
    r = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert where in _error(r, status, kind)["detail"]


def test_wrong_method_and_path_get_json_errors(client):
    _error(client.get("/predict"), 405, "method_not_allowed")
    _error(client.post("/nowhere", json={}), 404, "not_found")


# ---- API key ----

def test_api_key_is_required_where_it_matters(bow):
    with running(create_app(bow, api_key="s3cret-key")) as url, httpx.Client(base_url=url, timeout=30) as c:
        body = {"texts": ["great"]}
        r = _error(c.post("/predict", json=body), 401, "unauthorized")
        assert "Bearer" in r["detail"]
        assert c.post("/predict", json=body).headers["www-authenticate"] == "Bearer"
        _error(c.post("/predict", json=body, headers={"X-API-Key": "s3cret"}), 401, "unauthorized")
        _error(c.post("/predict", json=body, headers={"Authorization": "Basic s3cret-key"}), 401, "unauthorized")
        _error(c.get("/model"), 401, "unauthorized")
        assert c.post("/predict", json=body, headers={"Authorization": "Bearer s3cret-key"}).status_code == 200
        assert c.post("/predict", json=body, headers={"X-API-Key": "s3cret-key"}).status_code == 200
        assert c.get("/model", headers={"X-API-Key": "s3cret-key"}).status_code == 200
        assert c.get("/health").status_code == 200 and c.get("/").status_code == 200


# ---- the command line ----

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_serve_runs_a_real_service_and_stops_on_ctrl_c(bow_run):
    port = _free_port()
    env = {**os.environ, "SERVE_KEY": "k-123"}
    proc = subprocess.Popen([sys.executable, "-m", "textclass.cli", "serve", str(bow_run), "--port", str(port),
                             "--api-key-env", "SERVE_KEY", "--max-texts", "2"],
                            env=env, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:  # the socket listens from the start; answers come once the model is loaded
            try:
                if httpx.get(f"{url}/health", timeout=30).status_code == 200:
                    break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
                time.sleep(0.2)
        key = {"Authorization": "Bearer k-123"}
        assert httpx.post(f"{url}/predict", json={"texts": ["great food"]}).status_code == 401
        r = httpx.post(f"{url}/predict", json={"texts": ["great food"]}, headers=key)
        assert r.json()["predictions"][0]["label"] == 1
        assert httpx.post(f"{url}/predict", json={"texts": ["a", "b", "c"]}, headers=key).status_code == 422
        assert httpx.get(f"{url}/model", headers=key).json()["metrics"]["n"] == 150
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    assert f"http://127.0.0.1:{port}/" in proc.stderr.read()


def test_cli_serve_refuses_bad_ports_keys_models_and_a_missing_extra(bow_run, tmp_path, capsys, monkeypatch):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        # The port is checked before the model is read: a missing run still reports the port.
        assert main(["serve", str(tmp_path / "missing"), "--port", str(port)]) == 2
        assert f"--port {port}: cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    for bad in ("0", "65536"):
        assert main(["serve", str(bow_run), "--port", bad]) == 2
        assert "expected a port number from 1 to 65535" in capsys.readouterr().err
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    assert main(["serve", str(bow_run), "--api-key-env", "NO_SUCH_KEY"]) == 2
    assert "NO_SUCH_KEY: the environment variable is not set or empty" in capsys.readouterr().err
    assert main(["serve", str(tmp_path), "--port", str(_free_port())]) == 2
    assert "not a textclass model directory" in capsys.readouterr().err
    assert main(["serve", str(bow_run), "--port", str(_free_port()), "--max-texts", "0"]) == 2
    assert "--max-texts must be an integer >= 1" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "fastapi", None)  # as if the serve extra were not installed
    monkeypatch.delitem(sys.modules, "textclass.serve")
    assert main(["serve", str(bow_run)]) == 2
    err = capsys.readouterr().err
    assert "pip install 'textclass[serve]'" in err and len(err.strip().splitlines()) == 1


def test_cli_serve_refuses_a_tampered_model(bow_run, tmp_path, capsys):
    import shutil

    run = shutil.copytree(bow_run, tmp_path / "run")
    with open(run / "model" / "model.skops", "ab") as f:
        f.write(b"x")
    assert main(["serve", str(run), "--port", str(_free_port())]) == 2
    assert "sha256 does not match" in capsys.readouterr().err


def test_predict_stream_answers_each_line_before_the_next_is_written(bow_run):
    proc = subprocess.Popen([sys.executable, "-m", "textclass.cli", "predict", str(bow_run), "--stream"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def answer(line: bytes) -> dict:
        proc.stdin.write(line)
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], 90)
        assert ready, "no answer within 90 s: the line was held back"
        return json.loads(proc.stdout.readline())

    try:
        first = answer(b"The food was great\n")
        assert first["text"] == "The food was great" and first["label"] == 1 and set(first) == {"text", "label", "p_0", "p_1"}
        assert answer("Never again, awful caf\u00e9\r\n".encode())["label"] == 0
        proc.stdin.write(b"\nloved it\nhated it")  # a blank line is skipped; the last lacks its newline
        proc.stdin.close()
        rest = [json.loads(line) for line in proc.stdout.read().splitlines()]
        assert [r["text"] for r in rest] == ["loved it", "hated it"]
        assert proc.wait(30) == 0
    finally:
        proc.kill()


def test_predict_stream_takes_no_other_input(bow_run, capsys):
    assert main(["predict", str(bow_run), "--stream", "a text"]) == 2
    assert "--stream reads stdin" in capsys.readouterr().err


# ---- property-based: schemathesis over the service's own OpenAPI ----

@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_openapi_cases_never_get_a_server_error(bow_url, mode):
    schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed: pip install -e '.[test]'")
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_url(f"{bow_url}/openapi.json")

    @given(case=schema.as_strategy(generation_mode=schemathesis.GenerationMode(mode)))
    @settings(max_examples=60, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def check(case):
        # Every built-in check: no 5xx, documented statuses, content types and response schemas,
        # invalid data refused (negative mode), valid data accepted (positive mode).
        case.call_and_validate()

    check()
