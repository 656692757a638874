"""``python -m benchmarks.gpu``: the contextual tier on a CUDA GPU against the CPU, same run.

For a machine with an NVIDIA GPU (``benchmarks/gpu.sh`` sets one up). Measures texts/s of the
contextual model on the GPU (PyTorch fp16, large batches) and on the CPU (ONNX Runtime), and the
time to index the 10,000-file repository completely (keyword, static and contextual tiers) with
``--device cuda``; faiss searches on the GPU when faiss-gpu is installed. Prints a table and
writes it to ``benchmarks/results/gpu.md``. On a machine without a GPU it says so and stops.
"""

from __future__ import annotations

import dataclasses
import sys
import time

from benchmarks import ours
from benchmarks.corpora import speed_repo, stride_sample
from benchmarks.report import Table, ratio, seconds
from benchmarks.run import RESULTS, begin, finish

SAMPLE = 2048
LARGE = 10_000


def _rate(encoder, texts: list[str]) -> float:
    encoder.encode(texts[:64])  # load, warm up (and export the ONNX model on first use)
    started = time.perf_counter()
    encoder.encode(texts)
    return len(texts) / (time.perf_counter() - started)


def main() -> int:
    from ragls.indexer.embeddings import ContextualEncoder, cuda_available
    from ragls.indexer.vectors import gpu_count

    session = begin()
    console = session.console
    if not cuda_available():
        console.print(
            "No CUDA GPU visible to torch here: nothing to measure (run benchmarks/gpu.sh on a GPU)."
        )
        return 1
    repo = speed_repo(LARGE, console.log)
    index = ours.open_index(repo, "gpu", fresh=True)
    started = time.perf_counter()
    index.update()
    keyword_s = time.perf_counter() - started
    ids = [row[0] for row in index.store.db.execute("SELECT id FROM chunks ORDER BY id")]
    texts = list(index.store.embed_inputs(stride_sample(ids, SAMPLE)).values())
    cfg = index.cfg.models.embedding
    cuda = ContextualEncoder(dataclasses.replace(cfg, device="cuda"))
    cpu = ContextualEncoder(dataclasses.replace(cfg, device="cpu"))
    rates = {"cuda": _rate(cuda, texts), "cpu": _rate(cpu, texts)}
    index.close()

    index = ours.open_index(repo, "gpu", fresh=True)  # device auto: the GPU
    started = time.perf_counter()
    index.update()
    index.embed_pending(tiers=["static"])
    static_s = time.perf_counter() - started
    index.embed_pending(tiers=["contextual"])
    full_s = time.perf_counter() - started
    chunks = index.store.chunk_count()
    index.close()

    table = Table(
        f"Contextual tier on a GPU ({cuda.device}, {cuda.backend}, batch {cuda.batch_size}) vs the CPU "
        f"({cpu.backend}), {len(texts)} chunk texts",
        ["measure", "CPU", "GPU", "GPU / CPU"],
    )
    table.add(
        "contextual texts/s",
        f"{rates['cpu']:.1f}",
        f"{rates['cuda']:.1f}",
        ratio(rates["cuda"], rates["cpu"]),
    )
    table.add(f"keyword layer ready, {LARGE:,} files", "", seconds(keyword_s), "")
    table.add(f"static tier ready, {LARGE:,} files", "", seconds(static_s), "")
    table.add(f"fully contextual, {LARGE:,} files ({chunks:,} chunks)", "", seconds(full_s), "")
    table.notes.append(
        f"faiss GPUs in use: {gpu_count()} (faiss-gpu installed: {'yes' if gpu_count() else 'no'})."
    )
    finish(session, [table], RESULTS / "gpu.md", "ragls on a GPU", "`bash benchmarks/gpu.sh`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
