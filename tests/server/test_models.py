"""``ragls/models``: the server hands the same scan ``ragls models scan`` prints to the editor."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsp_support import FAST_SETTINGS, indexed, lsp, request
from pygls.exceptions import JsonRpcException

from ragls.llm.gguf import bundled_model_path

HEADER_BYTES = 1_769_507  # the bundled file's metadata: a real header without the weights


async def test_models_request_lists_files_and_says_what_it_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no usual places: only the search path
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home" / ".cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "home" / ".local" / "share"))
    folder = tmp_path / "gguf"
    folder.mkdir()
    with bundled_model_path().open("rb") as src:
        header = src.read(HEADER_BYTES)
    (folder / "smol.gguf").write_bytes(header)
    (folder / "cut.gguf").write_bytes(header[:500])
    settings = {**FAST_SETTINGS, "models": {**FAST_SETTINGS["models"], "search_paths": [str(folder)],
                                            "scan_ports": []}}
    async with lsp(None, settings=settings) as (client, _):
        found = await request(client, "ragls/models", {})
        with pytest.raises(JsonRpcException, match="'servers' must be true or false"):
            await request(client, "ragls/models", {"servers": "yes"})
    (model,) = found["models"]
    assert model["name"] == "smol" and model["source"] == "search-path"
    assert (model["family"], model["quantisation"], model["context_length"], model["license"]) == (
        "llama", "Q4_1", 8192, "apache-2.0")
    assert model["path"] == str(folder / "smol.gguf") and model["base_url"] is None
    (skipped,) = found["skipped"]
    assert "cut.gguf: truncated or corrupt GGUF header" in skipped


async def test_use_model_writes_the_user_config_and_the_server_applies_it(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = tmp_path / "user.toml"
    user.write_text("# my settings\n[search]\ntop_k = 7  # seven\n")
    monkeypatch.setenv("RAGLS_CONFIG", str(user))
    weightless = tmp_path / "weightless.gguf"  # a real header without its weights: cannot load
    with bundled_model_path().open("rb") as src:
        weightless.write_bytes(src.read(HEADER_BYTES))
    async with lsp(repo) as (client, recorder):
        await indexed(client)
        with pytest.raises(JsonRpcException, match="no model named 'nothing-like-it'"):
            await request(client, "ragls/useModel", {"name": "nothing-like-it", "role": "chat"})
        with pytest.raises(JsonRpcException, match="'role' must be"):
            await request(client, "ragls/useModel", {"name": str(weightless), "role": "everything"})
        used = await request(client, "ragls/useModel", {"name": str(weightless), "role": "chat"})
        started = await request(client, "ragls/chat", {"question": "How are orders stored?"})
        final = await recorder.final(started["chatId"])
    assert used["role"] == "chat" and used["config"] == str(user)
    assert used["model"]["path"] == str(weightless) and used["model"]["family"] == "llama"
    text = user.read_text()
    assert text.startswith("# my settings\n[search]\ntop_k = 7  # seven\n")
    assert f'path = "{weightless}"' in text and 'provider = "llama_cpp"' in text
    assert "weightless.gguf" in final["error"]  # the next question went to the model just chosen
