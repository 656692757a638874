"""``ragls/models``: the server hands the same scan ``ragls models scan`` prints to the editor."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FAST_SETTINGS, lsp, request
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
