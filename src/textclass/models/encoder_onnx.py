"""A frozen sentence encoder run by ONNX Runtime instead of PyTorch, at equal embeddings.

The whole sentence-transformers pipeline (transformer, pooling, normalisation) is exported once
per encoder (by the sha256 of its files) and maximum length, to ``$TEXTCLASS_CACHE/onnx``. Before
the file is kept it must reproduce the PyTorch embeddings of probe texts within ``TOLERANCE``; an
export that fails or differs is reported in one line and the encoder stays on PyTorch. Tokenizing
stays with the encoder's own tokenizer, so the inputs are the same ones PyTorch sees.

Why: a spot check on the 2-core reference machine (one thread, under load) embedded 1.1-1.24x
faster than PyTorch at equal embeddings; ``bench/bench_encoders.py --throughput-only`` measures
both backends side by side.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np

from textclass.files import temp_name

TOLERANCE = 1e-5  # largest |difference| from PyTorch's embeddings allowed on the probe texts
PROBES = ["a short sentence", "An entirely different and rather longer sentence, with punctuation!",
          "ok", "The food was great but the service was slow and the room far too noisy for a quiet dinner."]
_SESSIONS: dict[tuple[str, int], Any] = {}
_LOCK = threading.Lock()


def available() -> bool:
    """onnxruntime and onnx are the ``onnx`` extra; without them encoders run on PyTorch."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


class OnnxEncoder:
    """``encode(texts, batch_size)`` of one exported encoder, batches sorted by length."""

    def __init__(self, model: Any, path: Path, threads: int) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.model = model
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        out: np.ndarray | None = None
        order = np.argsort([len(t) for t in texts], kind="stable")
        for b in range(0, len(texts), batch_size):
            idx = order[b:b + batch_size]
            features = self.model.preprocess([texts[i] for i in idx])
            emb = self.session.run(None, {k: features[k].numpy().astype(np.int64) for k in self.inputs})[0]
            if out is None:
                out = np.empty((len(texts), emb.shape[1]), dtype=np.float32)
            out[idx] = emb
        return out if out is not None else np.empty((0, 0), dtype=np.float32)


def onnx_encoder(model: Any, identity: str, maxlen: int, threads: int, cache_dir: Path) -> OnnxEncoder | None:
    """The ONNX Runtime twin of sentence-transformers ``model`` (exported and verified on first
    use), or None when it cannot be had; the reason is printed once."""
    key = (f"{identity}-{maxlen}", threads)
    with _LOCK:
        if key not in _SESSIONS:
            _SESSIONS[key] = _build(model, identity, maxlen, threads, cache_dir)
        return _SESSIONS[key]


def _build(model: Any, identity: str, maxlen: int, threads: int, cache_dir: Path) -> OnnxEncoder | None:
    path = cache_dir / f"{identity[:24]}-{maxlen}.onnx"
    try:
        if path.is_file():
            encoder = OnnxEncoder(model, path, threads)
            if _difference(encoder, model) <= TOLERANCE:
                return encoder
            path.unlink()  # a stale or damaged file: export again
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache_dir / (temp_name(".export-") + ".onnx")
        try:
            _export(model, tmp)
            encoder = OnnxEncoder(model, tmp, threads)
            diff = _difference(encoder, model)
            if diff > TOLERANCE:
                raise ValueError(f"its embeddings differ from PyTorch's by {diff:.1e} (> {TOLERANCE:g})")
            os.replace(tmp, path)  # the session has the graph in memory: the checked one is kept
            return encoder
        finally:
            tmp.unlink(missing_ok=True)
    except Exception as e:  # any exporter or runtime failure: PyTorch still gives the embeddings
        first = str(e).splitlines()[0] if str(e) else ""
        print(f"textclass: encoder runs on PyTorch, its ONNX export was not usable ({type(e).__name__}: {first})",
              file=sys.stderr)
        return None


def _difference(encoder: OnnxEncoder, model: Any) -> float:
    import torch

    with torch.inference_mode():
        reference = model.encode(PROBES, batch_size=len(PROBES), convert_to_numpy=True)
    return float(np.abs(encoder.encode(PROBES, len(PROBES)) - reference).max())


def _export(model: Any, path: Path) -> None:
    """torch.onnx's TorchScript exporter over the whole pipeline, batch and length dynamic."""
    import warnings

    import torch

    features = model.preprocess(PROBES[:2])
    names = [k for k, v in features.items() if isinstance(v, torch.Tensor) and v.dim() == 2]

    class Pipeline(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return self.model(dict(zip(names, tensors)))["sentence_embedding"]

    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notices
        torch.onnx.export(Pipeline().eval(), tuple(features[n] for n in names), str(path), input_names=names,
                          output_names=["embedding"], dynamo=False, opset_version=17,
                          dynamic_axes={**{n: {0: "batch", 1: "tokens"} for n in names}, "embedding": {0: "batch"}})
