"""The dependency tier on real installed packages: a virtual environment made by ``python -m venv``
in the test, with real distributions copied in as pip laid them out (platformdirs: pure Python;
ujson: an extension module with a PEP 561 stub package), and a workspace that imports them.
Nothing is downloaded."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from ragls_testing import copy_distribution, missing, venv_with

from ragls.config import load
from ragls.indexer.deps import lookup, python_env
from ragls.indexer.deps.build import build, deps_store
from ragls.indexer.deps.selection import Selection
from ragls.indexer.deps.surface import PUBLIC_DUNDERS, is_surface_file, python_surface
from ragls.indexer.engine import Index
from ragls.recipes.citations import Verifier, parse
from ragls.recipes.completion import clear_sticky_context, complete
from ragls.recipes.context import render_one
from ragls.recipes.dependencies import library_snippets

REPO = Path(__file__).resolve().parents[1]
APP = """\
import platformdirs
import ujson
from platformdirs import PlatformDirs


def cache() -> str:
    dirs = PlatformDirs("app", "me")
    return platformdirs.user_cache_dir(
"""


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A workspace with a real virtual environment holding real copies of two packages."""
    root = tmp_path_factory.mktemp("ws")
    versions = venv_with(root, ("platformdirs", "ujson"))
    (root / "app.py").write_text(APP)
    return root, versions


@pytest.fixture
def built(index: Index) -> Selection:
    """The workspace's dependency tier, built into this test's own shared store."""
    with deps_store() as store:
        return build(index, store)


@pytest.fixture
def index(venv, isolated_env) -> Index:
    root, _ = venv
    ix = Index.open(root, load(root))
    ix.update()
    yield ix
    ix.close()


def test_the_workspace_environment_and_what_it_imports_are_found(venv, isolated_env, index) -> None:
    root, versions = venv
    with deps_store() as store:
        sel = build(index, store)
    assert sel.environment == str(root / ".venv")
    assert sel.imports == {
        "platformdirs": f"platformdirs=={versions['platformdirs']}",
        "ujson": f"ujson=={versions['ujson']}",
    }
    status = index.status()["dependencies"]
    assert status["packages"] == 2 and status["chunks"] == sel.chunks > 0 and status["bytes"] > 0


def test_the_surface_holds_public_signatures_and_docstrings_not_bodies(
    venv, isolated_env, index, built
) -> None:
    hits = {c.symbol: c for c, _ in lookup.search(index, "user cache dir", 50)}
    chunk = hits["platformdirs.user_cache_dir"]
    assert chunk.text.startswith("def user_cache_dir(") and '"""' in chunk.text
    assert chunk.text.rstrip().endswith("...")  # the body is left out
    source = (Path(index.root) / ".venv").glob(f"lib/python3*/site-packages/{chunk.path}")
    lines = next(source).read_text().splitlines()[chunk.start_line - 1 : chunk.end_line]
    assert lines[0] == chunk.text.splitlines()[0]  # the span is the installed file's
    assert all(c.name in PUBLIC_DUNDERS or not c.name.startswith("_") for c in hits.values())
    assert (
        "def _is_android_app("
        in (Path(index.root) / ".venv")
        .glob("lib/*/site-packages/platformdirs/__init__.py")
        .__next__()
        .read_text()
    )
    assert lookup.view(index).store.definitions("_is_android_app", lookup.view(index).ids) == []


def test_a_compiled_package_is_indexed_from_its_stubs_and_said_so(venv, isolated_env, index) -> None:
    _, versions = venv
    with deps_store() as store:
        sel = build(index, store)
        row = store.packages([sel.packages[f"ujson=={versions['ujson']}"]])[0]
    assert row.note and "1 extension modules without source" in row.note
    found = lookup.definitions_at(index, "ujson.dumps(", "import ujson\n")
    assert found and found[0].symbol == "ujson.dumps" and found[0].path == "ujson-stubs/__init__.pyi"


def test_two_workspaces_on_the_same_version_share_it(venv, isolated_env, index, tmp_path) -> None:
    root, _ = venv
    other = tmp_path / "other"
    other.mkdir()
    (other / "main.py").write_text("import platformdirs\n")
    os.symlink(root / ".venv", other / ".venv")
    with deps_store() as store:
        first = build(index, store)
        with Index.open(other, load(other)) as second_index:
            second_index.update()
            second = build(second_index, store)
        count = store.db.execute("SELECT COUNT(*) FROM packages WHERE name = 'platformdirs'").fetchone()[0]
    key = next(k for k in first.packages if k.startswith("platformdirs=="))
    assert second.packages == {key: first.packages[key]} and count == 1


def test_completion_context_holds_the_called_symbol_at_its_installed_version(
    venv, isolated_env, index, built
) -> None:
    _, versions = venv
    clear_sticky_context()
    line = APP.count("\n")
    col = len(APP.splitlines()[-1]) + 1
    result = complete(index, None, "app.py", line, col, context_only=True, budget_tokens=400)
    deps = [s for s in result.context if s.source == "dependency"]
    assert deps and deps[0].path == f"platformdirs=={versions['platformdirs']}:platformdirs/__init__.py"
    assert "def user_cache_dir(" in deps[0].text
    assert sum(len(render_one(s)) for s in result.context) // 4 <= 400  # approx_tokens: 4 chars a token
    clear_sticky_context()
    small = complete(index, None, "app.py", line, col, context_only=True, budget_tokens=10)
    assert small.context == []  # nothing fits 10 tokens: the budget is the same budget


def test_names_are_resolved_through_imports_and_assignments() -> None:
    text = "import numpy as np\nfrom requests import Session\ns = Session()\nwith Session() as t:\n    pass\n"
    bound = lookup.imports(text)
    assert bound == {"np": "numpy", "Session": "requests.Session"}
    assert lookup._resolve("s", bound, text) == "requests.Session"
    assert lookup._resolve("t", bound, text) == "requests.Session"
    assert lookup.cursor_chains("x = np.einsum(a, b.") == ["b.", "np.einsum", "a", "x"]


def test_search_scopes_from_the_command_line(venv, isolated_env, index, capsys) -> None:
    from ragls.cli import main

    root, versions = venv
    index.close()
    assert main(["deps", str(root), "--json"]) == 0
    done = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert done["packages"] == 2
    assert main(["search", "user cache dir", "--root", str(root), "--scope", "dependencies", "--json"]) == 0
    paths = [r["path"] for r in json.loads(capsys.readouterr().out)]
    assert paths and all(p.startswith(("platformdirs==", "ujson==")) for p in paths)
    assert main(["search", "user cache dir", "--root", str(root), "--json"]) == 0
    assert all("==" not in r["path"] for r in json.loads(capsys.readouterr().out))


# -- bad input -----------------------------------------------------------------------------------


def test_a_broken_environment_symlink_is_reported(tmp_path, isolated_env) -> None:
    os.symlink(tmp_path / "gone", tmp_path / ".venv")
    env = python_env.find_environment(tmp_path)
    assert env.prefix is None and env.notes == [f".venv is a broken symlink (to {tmp_path / 'gone'})"]


def test_a_pth_file_pointing_elsewhere_adds_its_folder(venv, tmp_path) -> None:
    root, _ = venv
    elsewhere = tmp_path / "elsewhere"
    copy_distribution("snowballstemmer", elsewhere)
    ws = tmp_path / "ws"
    shutil.copytree(root / ".venv", ws / ".venv", symlinks=True)
    site = next((ws / ".venv").glob("lib/python3*/site-packages"))
    (site / "extra.pth").write_text(f"{elsewhere}\n{tmp_path / 'missing'}\nimport sys\n")
    env = python_env.find_environment(ws)
    assert elsewhere in env.site_packages
    assert env.notes == [f"extra.pth points at {tmp_path / 'missing'}, which does not exist"]
    assert "snowballstemmer" in {d.metadata["Name"] for d in python_env.distributions(env)}


def test_huge_files_and_a_stale_lock_file_are_reported(venv, isolated_env, tmp_path) -> None:
    root, versions = venv
    ws = tmp_path / "ws"
    shutil.copytree(root, ws, symlinks=True)
    site = next((ws / ".venv").glob("lib/python3*/site-packages"))
    (site / "platformdirs" / "generated_table.py").write_text("X = 1\n" * 800_000)
    record = next(site.glob("platformdirs-*.dist-info")) / "RECORD"
    record.write_text(record.read_text() + "platformdirs/generated_table.py,,\n")  # as if installed
    (ws / "uv.lock").write_text('[[package]]\nname = "platformdirs"\nversion = "0.0.1"\n')
    with Index.open(ws, load(ws)) as ix:
        ix.update()
        with deps_store() as store:
            sel = build(ix, store)
    key = f"platformdirs=={versions['platformdirs']}"
    assert sel.skipped == {
        f"{key}:platformdirs/generated_table.py": "4800000 bytes, over deps.max_file_bytes (generated?)"
    }
    installed = versions["platformdirs"]
    assert sel.notes == [
        f"the lock file says platformdirs==0.0.1, but {installed} is installed: indexed {installed}"
    ]
    assert key in sel.packages


def test_caps_on_packages_are_reported(venv, isolated_env, tmp_path) -> None:
    root, _ = venv
    (root / ".ragls").mkdir(exist_ok=True)
    try:
        (root / ".ragls" / "config.toml").write_text("[deps]\nmax_packages = 1\n")
        with Index.open(root, load(root)) as ix:
            ix.update()
            with deps_store() as store:
                sel = build(ix, store)
    finally:
        shutil.rmtree(root / ".ragls")
    assert len(sel.packages) == 1
    assert list(sel.skipped.values()) == ["over deps.max_packages (1)"]


def test_an_editable_install_of_the_workspace_is_the_workspace() -> None:
    """This repository's own environment holds ragls as an editable install (pip install -e .)."""
    env = python_env.find_environment(REPO)
    if env.prefix is None:
        pytest.skip("this checkout has no .venv of its own")
    ragls = next(d for d in python_env.distributions(env) if d.metadata["Name"] == "ragls")
    assert python_env.editable_root(ragls).resolve() == REPO


def test_surface_leaves_out_private_names_tests_and_bad_syntax() -> None:
    text = (
        'def _hidden(): pass\nclass A:\n    """Doc."""\n    def _x(self): ...\n'
        "    def y(self, z: int) -> int:\n        return z\n"
    )
    symbols = [c.symbol for c in python_surface("pkg/mod.py", text)]
    assert symbols == ["pkg.mod", "pkg.mod.A", "pkg.mod.A.y"]
    assert python_surface("pkg/broken.py", "def f(:\n  )))\0") is not None  # never raises
    assert not is_surface_file("pkg/tests/test_mod.py") and not is_surface_file("pkg/conftest.py")
    assert is_surface_file("numpy/testing/__init__.py")  # helpers for the user's tests are an API
    assert is_surface_file("pkg/mod.pyi")


def test_re_exports_are_followed_to_the_module_they_come_from() -> None:
    exports = python_surface(
        "pkg/__init__.py", "from ._core import (a, b as c)\nfrom .x import *\nif T:\n    from .y import e\n"
    )
    assert [(c.symbol, c.kind, c.text) for c in exports] == [
        ("pkg.a", "export", "pkg._core.a"),
        ("pkg.c", "export", "pkg._core.b"),
        ("pkg.e", "export", "pkg.y.e"),
    ]


# -- npm ----------------------------------------------------------------------------------------

NPM_FIXTURE = Path(__file__).parent / "fixtures" / "npm-deps"


@pytest.fixture
def npm_workspace(tmp_path: Path, isolated_env) -> Path:
    """The fixture's package.json and package-lock.json installed by ``npm ci`` from npm's cache."""
    if shutil.which("npm") is None:
        missing("npm is missing (make install-test needs it for the editor clients)")
    root = tmp_path / "web"
    shutil.copytree(NPM_FIXTURE, root)
    subprocess.run(
        ["npm", "ci", "--offline", "--no-audit", "--no-fund"], cwd=root, check=True, capture_output=True
    )
    return root


def test_node_modules_declarations_are_the_surface(npm_workspace: Path) -> None:
    with Index.open(npm_workspace, load(npm_workspace)) as ix, deps_store() as store:
        ix.update()
        sel = build(ix, store)
        assert (
            list(sel.packages) == ["vscode-jsonrpc==10.0.0"]
            and sel.imports["vscode-jsonrpc"] == "vscode-jsonrpc==10.0.0"
        )
        text = (npm_workspace / "app.ts").read_text()
        lines = text.splitlines()
        result = complete(
            ix, None, "app.ts", len(lines), len(lines[-1]) + 1, context_only=True, budget_tokens=600
        )
    deps = [s for s in result.context if s.source == "dependency"]
    assert deps and deps[0].path == "vscode-jsonrpc==10.0.0:lib/common/messages.d.ts"
    assert "export declare class ResponseError" in deps[0].text


def test_node_modules_cycles_missing_packages_and_a_stale_lock(npm_workspace: Path) -> None:
    package = npm_workspace / "node_modules" / "vscode-jsonrpc"
    (package / "node_modules").mkdir()
    os.symlink(npm_workspace / "node_modules", package / "node_modules" / "loop")  # a cycle
    os.symlink(npm_workspace / "node_modules" / "ghost-target", npm_workspace / "node_modules" / "ghost")
    manifest = json.loads((npm_workspace / "package.json").read_text())
    manifest["dependencies"]["ghost"] = "^1.0.0"
    (npm_workspace / "package.json").write_text(json.dumps(manifest))
    lock = json.loads((npm_workspace / "package-lock.json").read_text())
    lock["packages"]["node_modules/vscode-jsonrpc"]["version"] = "9.0.0"
    (npm_workspace / "package-lock.json").write_text(json.dumps(lock))
    (npm_workspace / "app.ts").write_text("import * as rpc from 'vscode-jsonrpc';\nimport g from 'ghost';\n")
    with Index.open(npm_workspace, load(npm_workspace)) as ix, deps_store() as store:
        ix.update()
        sel = build(ix, store)
    assert list(sel.packages) == ["vscode-jsonrpc==10.0.0"]
    assert sel.skipped["ghost"].startswith("unreadable link")
    assert sel.notes == ["the lock file says vscode-jsonrpc==9.0.0, but 10.0.0 is installed: indexed 10.0.0"]


def test_questions_about_a_library_are_answered_from_it_and_cited_by_version(
    venv, isolated_env, index, built
) -> None:
    _, versions = venv
    found = library_snippets(index, "how does platformdirs pick the user cache dir?")
    key = f"platformdirs=={versions['platformdirs']}"
    assert found and all(s.path.startswith(f"{key}:") and s.source == "dependency" for s in found)
    assert library_snippets(index, "how does the user cache dir get picked?") == []  # no package named
    top = found[0]
    cited = f"{top.path}:{top.start_line}-{top.end_line}"
    answer = f"It is {cited}; see also platformdirs==0.0.1:platformdirs/api.py:1-5."
    checked = Verifier(index).check(parse(answer))
    assert [c.label for c in checked.valid] == [cited]
    assert [why for _, why in checked.dropped] == ["not an indexed file of an installed dependency version"]
