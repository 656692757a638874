"""The contextual model on ONNX Runtime: exported once on this machine from the local
sentence-transformers model, then run without PyTorch.

Eager PyTorch spends much of a small model's time in per-operator overhead; ONNX Runtime fuses
the graph and (optionally) runs int8 weights. The export uses torch once (``torch.onnx.export``
from the model directory; nothing is downloaded) and is cached and hash-checked like every
derived model (:mod:`model_cache`). Pooling follows the model's own sentence-transformers
config, so the vectors are those of the PyTorch path (int8: close to them).
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from ragls.indexer import model_cache

ONNX_FORMAT = 1
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class UnsupportedModel(RuntimeError):
    """The model's pooling or layout is not one this exporter reproduces (use the torch backend)."""


def pooling_mode(source: str) -> str:
    """'mean' or 'cls', from the model's sentence-transformers pooling config."""
    config_files = sorted(Path(source).glob("*_Pooling/config.json"))
    if not config_files:
        raise UnsupportedModel(f"{source}: no sentence-transformers pooling config")
    config = json.loads(config_files[0].read_text(encoding="utf-8"))
    if config.get("pooling_mode_mean_tokens"):
        return "mean"
    if config.get("pooling_mode_cls_token"):
        return "cls"
    raise UnsupportedModel(f"{source}: pooling {config} is neither mean nor CLS")


def _export(source: str, folder: Path) -> None:
    """Trace the transformer to ONNX (last hidden state; pooling is done in numpy)."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(source).eval()
    names = [n for n in INPUTS if n in inspect.signature(model.forward).parameters]

    class Hidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(names, args, strict=True))).last_hidden_state

    sample = tuple(torch.ones(2, 8, dtype=torch.long) for _ in names)
    axes = {n: {0: "batch", 1: "tokens"} for n in [*names, "hidden"]}
    with torch.inference_mode():
        torch.onnx.export(
            Hidden(),
            sample,
            str(folder / "model.onnx"),
            input_names=names,
            output_names=["hidden"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    shutil.copy(Path(source) / "tokenizer.json", folder / "tokenizer.json")


def _quantize(fp32: Path, folder: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Per-channel scales: per-tensor int8 moved MiniLM's vectors to a mean cosine of 0.947 with the
    # fp32 ones on sample code, per-channel keeps 0.993.
    logging.disable(logging.WARNING)  # the library's pre-processing advice is for image models
    try:
        quantize_dynamic(
            str(fp32 / "model.onnx"),
            str(folder / "model.onnx"),
            weight_type=QuantType.QInt8,
            per_channel=True,
        )
    finally:
        logging.disable(logging.NOTSET)
    shutil.copy(fp32 / "tokenizer.json", folder / "tokenizer.json")


def obtain(source: str, int8: bool, notices: list[str]) -> model_cache.Derived:
    """The (cached) fp32 export of ``source``, or its int8 quantisation."""
    recipe = {"format": ONNX_FORMAT, "source": model_cache.fingerprint(source), "int8": False}
    fp32 = model_cache.obtain("onnx", recipe, lambda folder: _export(source, folder), notices)
    if not int8:
        return fp32
    return model_cache.obtain(
        "onnx",
        {**recipe, "int8": "per-channel", "from": fp32.version},
        lambda f: _quantize(fp32.path, f),
        notices,
    )


def cpu_budget() -> int:
    """Cores this process's indexing work may use: OMP_NUM_THREADS when set (the language server
    gives its indexing child half the cores, so that typing stays fast), else every core."""
    return int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)


class OnnxModel:
    """One ONNX Runtime session and its tokenizer: ``encode`` gives the model's sentence embedding,
    L2-normalised like every vector the index stores."""

    def __init__(self, folder: Path, source: str, max_tokens: int, threads: int) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.pooling = pooling_mode(source)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or cpu_budget()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_tokens)
        self.tokenizer.no_padding()

    def encode(self, texts: list[str]) -> np.ndarray:
        """One batch: padded to its longest text (callers sort by length so little is padding)."""
        encodings = self.tokenizer.encode_batch(texts)
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, e in enumerate(encodings):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self.session.run(None, {name: feed[name] for name in self.inputs})[0]
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return (pooled / norms).astype(np.float32)  # unit length: faiss inner product = cosine
