"""The dependency tier through the real server: built after the workspace by a ``ragls deps``
child, shown by ``ragls/indexStatus``, searched with ``ragls/search``'s ``scope``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from lsp_support import indexed, lsp, request, wait_until
from pygls.exceptions import JsonRpcInvalidParams
from ragls_testing import venv_with


async def test_dependencies_are_indexed_after_the_workspace_and_searched_by_scope(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "app.py").write_text(
        "import platformdirs\n\n\ndef where() -> str:\n    return platformdirs.user_cache_dir('x')\n"
    )
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / ".gitignore").write_text(".venv/\n")
    version = venv_with(root, ("platformdirs",))["platformdirs"]
    async with lsp(root) as (client, _):
        await indexed(client)

        async def built() -> dict | None:
            status = (await request(client, "ragls/indexStatus", {}))["workspaces"][0]["dependencies"]
            return status if status["packages"] and not status["building"] else None

        deps = await wait_until(built, 180, "the dependency tier")
        query = {"query": "user cache dir", "scope": "dependencies"}
        theirs = (await request(client, "ragls/search", query))["results"]
        own = (await request(client, "ragls/search", {"query": "user cache dir"}))["results"]
        both = (await request(client, "ragls/search", {**query, "scope": "all"}))["results"]
        with pytest.raises(JsonRpcInvalidParams):
            await request(client, "ragls/search", {**query, "scope": "everything"})
    assert deps["environment"] == str(root / ".venv") and deps["packages"] == 1 and deps["chunks"] > 0
    top = theirs[0]
    assert (
        top["path"].startswith(f"platformdirs=={version}:platformdirs/")
        and top["dependency"] == f"platformdirs=={version}"
    )
    installed = Path(top["uri"].removeprefix("file://"))
    assert installed.is_file() and installed.is_relative_to(root / ".venv")
    assert [r["path"] for r in own] == ["app.py"]
    assert {r["path"].split("==")[0] for r in both} == {"app.py", "platformdirs"}
