"""``textclass serve``: any trained model behind an HTTP API and a small web page.

FastAPI + uvicorn (the ``serve`` extra). ``create_app`` builds the service around a loaded
predictor (see ``textclass.predict.load_predictor``); ``serve`` checks the port, loads the model,
compiles its input shapes and runs uvicorn on 127.0.0.1 by default.

Endpoints: ``POST /predict``, ``POST /explain`` (each word's contribution, ``textclass.explain``),
``GET /model``, ``GET /health``, ``/openapi.json``, ``/docs`` and the page at ``/``. Every error is
JSON ``{"error": kind, "detail": one line, "limit": name or null}``: 413 for a body over the size
limit (checked while the body is read, before it is parsed), 422 for too many or too long texts
(limits the OpenAPI schema states as maxItems / maxLength) and for wrong fields or types, 400 for a
body that is not UTF-8 JSON, 401 without the API key.

Model calls run in one worker thread, off the event loop. For Keras models the ``MicroBatcher``
joins the texts of concurrent requests into one forward pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import json
import os
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from textclass.errors import MissingExtraError, ParameterError
from textclass.explain import explain as explain_texts

try:
    import uvicorn
    from fastapi import Depends, FastAPI, Request, Security
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, Response
    from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
    from fastapi.staticfiles import StaticFiles
    from pydantic import BaseModel, ConfigDict, Field, ValidationError
    from starlette.exceptions import HTTPException
    from starlette.requests import ClientDisconnect
except ImportError as e:  # the optional extra is not installed
    raise MissingExtraError(f"textclass serve needs the 'serve' extra ({e.name} is missing): "
                            "pip install 'textclass[serve]'") from None

STATIC = Path(__file__).with_name("static")
MAX_TEXTS = 256
MAX_CHARS = 10_000
MAX_BODY_BYTES = 1 << 20
MAX_BATCH = 64
BATCH_WAIT_MS = 2.0


# ---- request and response bodies (what /openapi.json documents) ----

class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    texts: list[str] = Field(min_length=1, description="Texts to classify (limits: see GET /model).")


class ExplainRequest(PredictRequest):
    label: str | int | None = Field(None, description="Class or tag to explain; default: the predicted one.")


class Prediction(BaseModel):
    label: Any = Field(description="The predicted label; for a multi-label model, the list of tags.")
    probabilities: dict[str, float] = Field(description="Probability of every class (or tag).")


class PredictResponse(BaseModel):
    predictions: list[Prediction]


class ExplainResponse(BaseModel):
    explanations: list[dict[str, Any]]


class ModelInfo(BaseModel):
    name: str
    textclass_version: str
    task: str
    labels: list[Any]
    threshold: float
    hyperparameters: dict[str, Any]
    metrics: dict[str, Any] | None = Field(description="The run's held-out metrics (metrics.json), if served from a run.")
    explain: bool
    batching: bool
    limits: dict[str, int]


class Health(BaseModel):
    status: str
    model: str


class ErrorBody(BaseModel):
    error: str = Field(description="Kind: invalid_json, invalid_request, too_many_texts, text_too_long, "
                                   "body_too_large, unauthorized, not_found, ...")
    detail: str = Field(description="One line saying what was wrong and what is expected.")
    limit: str | None = Field(None, description="The limit that was exceeded (its flag without dashes).")


class ApiError(Exception):
    """A request the service refuses, with its status and a one-line reason."""

    def __init__(self, status: int, error: str, detail: str, *, limit: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail, self.limit, self.headers = status, error, detail, limit, headers


def _error_response(status: int, error: str, detail: str, limit: str | None = None,
                    headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail, "limit": limit}, status_code=status, headers=headers)


_ERRORS = {code: {"model": ErrorBody} for code in (400, 401, 413, 422)}


# ---- micro-batching ----

class MicroBatcher:
    """Run the texts of concurrent requests as one call of ``fn`` in the model's worker thread.

    A batch starts with the oldest waiting request and takes the next ones while they fit in
    ``max_batch`` texts (a larger request runs alone). When the batch is not full it waits at
    most ``max_wait`` seconds for more; requests that arrive while a batch runs form the next
    one, so under load batches fill up without waiting. ``fn`` maps a list of texts to one
    result per text.
    """

    def __init__(self, fn: Callable[[list[str]], Sequence[Any]], executor: ThreadPoolExecutor, *,
                 max_batch: int = MAX_BATCH, max_wait: float = BATCH_WAIT_MS / 1000) -> None:
        self.fn, self.executor, self.max_batch, self.max_wait = fn, executor, max_batch, max_wait
        self._pending: deque[tuple[list[str], asyncio.Future]] = deque()
        self._rows = 0
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.batches = 0  # forward passes run so far (read by tests and the bench)

    async def __aenter__(self) -> MicroBatcher:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def submit(self, texts: list[str]) -> Sequence[Any]:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((texts, future))
        self._rows += len(texts)
        self._wake.set()
        if self._rows >= self.max_batch:
            self._full.set()
        return await future

    def _take(self) -> list[tuple[list[str], asyncio.Future]]:
        batch, rows = [], 0
        while self._pending and (not batch or rows + len(self._pending[0][0]) <= self.max_batch):
            texts, future = self._pending.popleft()
            self._rows -= len(texts)
            if not future.done():  # a client that went away is not computed for
                batch.append((texts, future))
                rows += len(texts)
        if not self._pending:
            self._wake.clear()
        if self._rows < self.max_batch:
            self._full.clear()
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            if self._rows < self.max_batch and self.max_wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self.max_wait)
            batch = self._take()
            if not batch:
                continue
            texts = [t for item, _ in batch for t in item]
            try:
                results = await loop.run_in_executor(self.executor, self.fn, texts)
            except Exception as e:  # the requests of this batch fail; the service goes on
                for _, future in batch:
                    if not future.done():
                        future.set_exception(e)
                continue
            self.batches += 1
            start = 0
            for item, future in batch:
                if not future.done():
                    future.set_result(results[start:start + len(item)])
                start += len(item)


def warm_up(model: Any, max_rows: int, progress: Callable[[str], None] | None = None) -> int:
    """Compile every input shape a request of up to ``max_rows`` texts can make; returns the count.

    Keras models are jitted per input shape: rows are padded to powers of two and sequence widths
    to multiples of ``WIDTH_STEP`` (see ``TextClassifier._forward_keras``), so one text per width
    step, repeated for each row count, reaches every shape. Other models run once. ``progress``
    gets a line per row count.
    """
    from textclass.estimator import PREDICT_BATCH, WIDTH_STEP

    pre = getattr(model, "preprocessor_", None)
    if pre is None:
        model.predict_proba(["warm up"])
        return 1
    texts = ["warm up"]
    if pre.kind == "sequences" and pre.tokenizer.word_index:
        index = pre.tokenizer.word_index
        word = min(index, key=index.get)  # the most frequent word: always kept by num_words
        texts = [" ".join([word] * n) for n in sorted({*range(1, pre.maxlen + 1, WIDTH_STEP), pre.maxlen})]
    rows, top, calls = 1, min(PREDICT_BATCH, max_rows), 0
    while True:
        for text in texts:
            model.predict_proba([text] * rows)
            calls += 1
        if progress is not None:
            progress(f"compiled {len(texts)} input width(s) for batches of {rows} text(s)")
        if rows >= top:
            return calls
        rows *= 2


# ---- the app ----

def create_app(model: Any, *, max_texts: int = MAX_TEXTS, max_chars: int = MAX_CHARS,
               max_body_bytes: int = MAX_BODY_BYTES, api_key: str | None = None, batching: bool = True,
               max_batch: int = MAX_BATCH, batch_wait_ms: float = BATCH_WAIT_MS,
               metrics: dict | None = None, compile_shapes: bool = True,
               progress: Callable[[str], None] | None = None) -> FastAPI:
    """The HTTP service around a loaded predictor (``TextClassifier`` or anything with its protocol).

    ``api_key`` set: /predict, /explain and /model need ``Authorization: Bearer KEY`` or
    ``X-API-Key: KEY``. ``batching`` joins concurrent requests into one model call (up to
    ``max_batch`` texts, waiting at most ``batch_wait_ms``). ``metrics`` is shown by /model.
    ``compile_shapes`` compiles a Keras model's input shapes now, not on the first requests
    (``progress`` gets a line per row count).
    """
    import textclass
    from textclass.labels import plain

    for name, value in (("max_texts", max_texts), ("max_chars", max_chars), ("max_body_bytes", max_body_bytes),
                        ("max_batch", max_batch)):
        if not isinstance(value, int) or value < 1:
            raise ParameterError(f"--{name.replace('_', '-')} must be an integer >= 1, got {value!r}")
    if batch_wait_ms < 0:
        raise ParameterError(f"--batch-wait-ms must be >= 0, got {batch_wait_ms!r}")
    if api_key is not None and not api_key:
        raise ParameterError("the API key is empty")

    classes = [str(plain(c)) for c in model.classes_]
    multilabel = model.task_ == "multilabel"
    limits = {"max_texts": max_texts, "max_chars": max_chars, "max_body_bytes": max_body_bytes}
    info = _json_bytes({
        "name": model.model, "textclass_version": textclass.__version__, "task": model.task_,
        "labels": [plain(c) for c in model.classes_], "threshold": float(model.threshold_),
        "hyperparameters": model.hyperparameters_, "metrics": metrics, "explain": True,
        "batching": batching, "limits": limits,
    })

    def predict_rows(texts: list[str]) -> list[dict]:
        proba = np.asarray(model.predict_proba(texts))
        labels = model.labels_from_proba(proba)
        return [{"label": list(label) if multilabel else plain(label), "probabilities": dict(zip(classes, row))}
                for label, row in zip(labels, proba.round(6).tolist())]

    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="textclass-model")
    batcher = MicroBatcher(predict_rows, executor, max_batch=max_batch, max_wait=batch_wait_ms / 1000) \
        if batching else None
    if compile_shapes:
        warm_up(model, max(max_batch, max_texts) if batching else max_texts, progress)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        try:
            if batcher is None:
                yield
            else:
                async with batcher:
                    yield
        finally:
            executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title=f"textclass: {model.model}", version=textclass.__version__, lifespan=lifespan,
                  description=f"A {model.task_} text classifier ({model.model}) served by textclass.")
    app.state.batcher = batcher
    _add_error_handlers(app)
    guard = [Depends(_api_key_check(api_key))] if api_key is not None else []

    async def read_texts(request: Request, schema: type[PredictRequest]) -> PredictRequest:
        body = await _read_body(request, max_body_bytes)
        try:
            parsed = schema.model_validate_json(body)
        except ValidationError as e:
            raise _invalid(e) from None
        if len(parsed.texts) > max_texts:
            raise ApiError(422, "too_many_texts", f"texts: {len(parsed.texts)} texts in one request; the limit "
                           f"is {max_texts} (--max-texts)", limit="max_texts")
        for i, text in enumerate(parsed.texts):
            if len(text) > max_chars:
                raise ApiError(422, "text_too_long", f"texts[{i}]: {len(text)} characters; the limit is "
                               f"{max_chars} per text (--max-chars)", limit="max_chars")
        return parsed

    def documented(schema: type[PredictRequest]) -> dict:
        """The request body as /openapi.json shows it: the model's JSON schema with this app's limits."""
        body = schema.model_json_schema()
        body["properties"]["texts"].update(maxItems=max_texts)
        body["properties"]["texts"]["items"].update(maxLength=max_chars)
        if "label" in body["properties"]:  # the model's own labels, as JSON values or as strings
            choices = list(dict.fromkeys([plain(c) for c in model.classes_] + classes))
            body["properties"]["label"] = {"anyOf": [{"enum": choices}, {"type": "null"}], "default": None,
                                           "description": body["properties"]["label"].get("description", "")}
        return {"requestBody": {"required": True, "content": {"application/json": {"schema": body}}}}

    @app.post("/predict", response_model=PredictResponse, responses=_ERRORS, dependencies=guard,
              openapi_extra=documented(PredictRequest), summary="Predict the label and class probabilities of each text")
    async def predict(request: Request) -> Response:
        texts = (await read_texts(request, PredictRequest)).texts
        if batcher is not None:
            rows = await batcher.submit(texts)
        else:
            rows = await asyncio.get_running_loop().run_in_executor(executor, predict_rows, texts)
        return Response(_json_bytes({"predictions": rows}), media_type="application/json")

    @app.post("/explain", response_model=ExplainResponse, responses=_ERRORS, dependencies=guard,
              openapi_extra=documented(ExplainRequest), summary="Each word's contribution to the label of each text")
    async def explain(request: Request) -> Response:
        parsed = await read_texts(request, ExplainRequest)
        try:
            found = await asyncio.get_running_loop().run_in_executor(
                executor, lambda: explain_texts(model, parsed.texts, label=parsed.label))
        except ParameterError as e:  # a label the model does not have
            raise ApiError(422, "invalid_request", f"label: {e}") from None
        return Response(_json_bytes({"explanations": [e.to_dict() for e in found]}), media_type="application/json")

    @app.get("/model", response_model=ModelInfo, responses={401: {"model": ErrorBody}}, dependencies=guard,
             summary="The model: name, labels, hyperparameters, the run's metrics, the limits")
    async def model_info() -> Response:
        return Response(info, media_type="application/json")

    @app.get("/health", response_model=Health, summary="Liveness: the service is up and its model loaded")
    async def health() -> Response:
        return Response(_json_bytes({"status": "ok", "model": model.model}), media_type="application/json")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed ``limit`` bytes (declared or read)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, "invalid_request", f"Content-Length: {declared!r} is not a number of bytes")
        if int(declared) > limit:
            raise ApiError(413, "body_too_large", f"body: {int(declared)} bytes; the limit is {limit} "
                           "(--max-body-bytes)", limit="max_body_bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "body_too_large", f"body: more than {limit} bytes; the limit is {limit} "
                           "(--max-body-bytes)", limit="max_body_bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _invalid(error: ValidationError) -> ApiError:
    """A pydantic error as one line naming the field: 400 for a body that is not JSON, else 422."""
    first = error.errors(include_url=False)[0]
    if first["type"] == "json_invalid":
        reason = first.get("ctx", {}).get("error", first["msg"])
        return ApiError(400, "invalid_json", f"body is not valid UTF-8 JSON ({reason}); expected "
                        '{"texts": ["a text", ...]}')
    where = ".".join(str(p) for p in first["loc"]) or "body"
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return ApiError(422, "invalid_request", f"{where}: {first['msg']}{more}; expected "
                    '{"texts": ["a text", ...]}')


def _add_error_handlers(app: FastAPI) -> None:
    """Every refusal, FastAPI's and Starlette's own included, in the one JSON shape of ``ErrorBody``."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError) -> JSONResponse:
        return _error_response(e.status, e.error, e.detail, e.limit, e.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException) -> JSONResponse:
        kind = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "http_error")
        return _error_response(e.status_code, kind, f"{request.method} {request.url.path}: {e.detail}",
                               headers=getattr(e, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "request"
        return _error_response(422, "invalid_request", f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(ClientDisconnect)
    async def disconnected(request: Request, e: ClientDisconnect) -> JSONResponse:
        return _error_response(400, "client_disconnected", "the client closed the connection mid-request")


def _api_key_check(expected: str) -> Callable:
    """A dependency accepting ``Authorization: Bearer KEY`` or ``X-API-Key: KEY`` (constant-time compare)."""
    key = expected.encode()
    bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer KEY")
    header = APIKeyHeader(name="X-API-Key", auto_error=False, description="X-API-Key: KEY")

    async def check(credentials: HTTPAuthorizationCredentials | None = Security(bearer),
                    api_key: str | None = Security(header)) -> None:
        given = credentials.credentials if credentials is not None else api_key
        if given is None or not hmac.compare_digest(given.encode(), key):
            raise ApiError(401, "unauthorized", "missing or wrong API key: send 'Authorization: Bearer KEY' "
                           "or 'X-API-Key: KEY'", headers={"WWW-Authenticate": "Bearer"})

    return check


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, default=_json_default, separators=(",", ":")).encode()


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray | tuple | set | frozenset):
        return list(value)
    return str(value)


# ---- running it ----

def run_metrics(path: str | Path) -> dict | None:
    """The held-out metrics of the run a served path belongs to (its metrics.json), if any."""
    path = Path(path)
    for folder in (path, path.parent if path.name == "model" else None):
        if folder is not None and (folder / "metrics.json").is_file():
            try:
                metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return None
            return metrics if isinstance(metrics, dict) else None
    return None


def api_key_from_env(name: str) -> str:
    """The API key held by environment variable ``name``, which must be set and not empty."""
    key = os.environ.get(name, "")
    if not key.strip():
        raise ParameterError(f"--api-key-env {name}: the environment variable is not set or empty; "
                             f"set it to the key clients must send (export {name}=...)")
    return key.strip()


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; a port out of range or in use is a ParameterError.

    Connections that arrive while the model loads wait in the backlog and are answered once it is ready.
    """
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise ParameterError(f"--port {port}: expected a port number from 1 to 65535")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as e:
        raise ParameterError(f"--host {host!r}: cannot resolve it ({e.strerror})") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free; one in use is not
    try:
        sock.bind(address)
        sock.listen(2048)  # at once: a second service on the port fails now, not after its model loaded
    except OSError as e:
        sock.close()
        raise ParameterError(f"--port {port}: cannot listen on {host}:{port} ({e.strerror}); "
                             "is another service using it? choose another --port") from None
    sock.set_inheritable(True)
    return sock


def serve(path: str | Path, *, host: str = "127.0.0.1", port: int = 8000, api_key_env: str | None = None,
          access_log: bool = False, **options: Any) -> None:
    """Serve the model at ``path`` (a run or model directory) until interrupted.

    The key, the port and the model are checked in that order, each failing with a one-line
    error before a request is answered. ``options`` go to ``create_app`` (limits, batching).
    """
    from textclass.predict import load_predictor

    api_key = api_key_from_env(api_key_env) if api_key_env else None
    sock = bind(host, port)
    try:
        model = load_predictor(path)
        started = time.perf_counter()
        print(f"textclass serve: loaded {model.model} from {path}; warming it up...",
              file=sys.stderr, flush=True)
        app = create_app(model, api_key=api_key, metrics=run_metrics(path), **options,
                         progress=lambda line: print(f"textclass serve: {line}", file=sys.stderr, flush=True))
        shown = f"[{host}]" if ":" in host else host
        print(f"textclass serve: {model.model} ready in {time.perf_counter() - started:.1f} s at "
              f"http://{shown}:{port}/ (API docs: /docs; Ctrl+C stops)", file=sys.stderr, flush=True)
        # Everything loaded so far (Keras, JAX, scikit-learn, the model) lives as long as the process:
        # moved out of the collector's reach, full collections stop pausing requests for 100s of ms.
        gc.collect()
        gc.freeze()
        config = uvicorn.Config(app, log_level="warning", access_log=access_log, timeout_graceful_shutdown=5)
        try:
            uvicorn.Server(config).run(sockets=[sock])
        except KeyboardInterrupt:  # uvicorn re-raises Ctrl+C once it has shut down cleanly
            print("textclass serve: stopped", file=sys.stderr, flush=True)
    finally:
        sock.close()
