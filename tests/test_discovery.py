import os
import socket
import stat
import subprocess
from pathlib import Path

import pytest
from ragls_testing import write_tree

from ragls.indexer.discovery import (
    LINK_DANGLING,
    LINK_LEAVES,
    LINK_LOOP,
    LINK_SPECIAL,
    SCRATCH_REASON,
    Rules,
    discover,
)

FILES: dict[str, str | bytes] = {
    "src/app.py": "def main():\n    return 1\n",
    "src/util.js": "export function f() { return 2 }\n",
    "README.md": "# Title\n",
    "build/out.py": "generated = True\n",
    "notes.log": "log line\n",
    "vendor/lib.py": "x = 1\n",
    ".env": "API_KEY=abc\n",
    ".env.production": "API_KEY=abc\n",
    "config/server.pem": "-----BEGIN PRIVATE KEY-----\n",
    "deploy/id_rsa": "key\n",
    "deploy/id_rsa.pub": "ssh-rsa AAA\n",
    "aws/credentials": "[default]\n",
    "secrets.json": "{}\n",
    "img/logo.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    "static/app.min.js": "var a=1;",
    "static/bundle.js": "var a=1;" * 2000,
    "big.py": "x = 1\n" * 400,
    "package-lock.json": "{}\n",
    "node_modules/dep/index.js": "module.exports = 1\n",
}


def make(tmp_path: Path, git: bool) -> Path:
    root = write_tree(tmp_path / "ws", FILES)
    (root / ".gitignore").write_text("build/\n*.log\n")
    (root / ".raglsignore").write_text("vendor/\n")
    if git:
        subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


@pytest.mark.parametrize("git", [True, False])
def test_discovery_rules(tmp_path: Path, git: bool) -> None:
    root = make(tmp_path, git)
    found = discover(Rules(root, max_file_bytes=2000))
    assert found.files == [".gitignore", ".raglsignore", "README.md", "src/app.py", "src/util.js"]
    reasons = {s.path: s.reason for s in found.skipped}
    for secret in (
        ".env",
        ".env.production",
        "config/server.pem",
        "deploy/id_rsa",
        "deploy/id_rsa.pub",
        "aws/credentials",
        "secrets.json",
    ):
        assert reasons[secret] == "secret-bearing file (never indexed)", secret
    assert reasons["img/logo.png"] == "binary"
    assert reasons["static/app.min.js"] == "generated"
    assert reasons["package-lock.json"] == "generated"
    assert reasons["static/bundle.js"].startswith("larger than index.max_file_bytes")
    assert reasons["big.py"] == "larger than index.max_file_bytes (2400 > 2000)"
    assert reasons["vendor/lib.py"] == "ignored"
    # .gitignore'd files are not even candidates
    assert "build/out.py" not in reasons and "notes.log" not in reasons


def test_minified_detection(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {"dist/app.js": "a" * 5000 + "\n", "ok.js": "let a = 1;\n" * 500})
    found = discover(Rules(root, max_file_bytes=1_000_000))
    assert found.files == ["ok.js"]
    assert found.skipped[0].reason == "minified or single-line data"


def test_exclude_patterns_from_config(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {"a.py": "x\n", "gen/b.py": "y\n"})
    assert discover(Rules(root, 1000, exclude=["gen/"])).files == ["a.py"]


def test_nested_gitignore_without_git(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path, {"pkg/.gitignore": "*.tmp\n", "pkg/a.py": "x\n", "pkg/b.tmp": "y\n", "c.tmp": "z\n"}
    )
    assert discover(Rules(root, 1000)).files == ["c.tmp", "pkg/.gitignore", "pkg/a.py"]


def test_folder_ignored_by_enclosing_repo_is_walked(tmp_path: Path) -> None:
    outer = tmp_path / "outer"
    write_tree(outer, {".gitignore": "corpus/\n", "corpus/lib/a.py": "x\n"})
    subprocess.run(["git", "init", "-q", str(outer)], check=True)
    assert discover(Rules(outer / "corpus", 1000)).files == ["lib/a.py"]


@pytest.mark.parametrize("git", [True, False])
def test_symlink_loops_and_escapes(tmp_path: Path, git: bool) -> None:
    root = write_tree(tmp_path / "ws", {"a.py": "x = 1\n", "deep/er/b.py": "y = 2\n"})
    write_tree(tmp_path, {"outside/key.txt": "-----BEGIN OPENSSH PRIVATE KEY-----\n", "outside/c.py": "z\n"})
    os.symlink("loop2", root / "loop1")
    os.symlink("loop1", root / "loop2")
    os.symlink(".", root / "self")  # a folder loop
    os.symlink("../..", root / "deep" / "er" / "up")  # a link to a folder that holds it
    os.symlink(tmp_path / "outside" / "key.txt", root / "notes.txt")  # a key file under a harmless name
    os.symlink("../outside", root / "vendor")  # a folder outside
    os.symlink("missing.py", root / "dangling.py")
    if git:
        subprocess.run(["git", "init", "-q", str(root)], check=True)
    found = discover(Rules(root, 1000))
    assert found.files == ["a.py", "deep/er/b.py"]
    reasons = {s.path: s.reason for s in found.skipped}
    assert reasons == {
        "loop1": LINK_LOOP,
        "loop2": LINK_LOOP,
        "self": LINK_LOOP,
        "deep/er/up": LINK_LOOP,
        "notes.txt": LINK_LEAVES,
        "vendor": LINK_LEAVES,
        "dangling.py": LINK_DANGLING,
    }


def test_links_to_fifos_and_sockets_are_not_opened(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {"a.py": "x\n"})
    os.mkfifo(root / "pipe")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(root / "sock"))
        os.symlink("pipe", root / "pipe.py")
        os.symlink("sock", root / "sock.py")
        found = discover(Rules(root, 1000))
    assert found.files == ["a.py"]
    assert {s.path: s.reason for s in found.skipped} == {"pipe.py": LINK_SPECIAL, "sock.py": LINK_SPECIAL}


@pytest.mark.parametrize("git", [True, False])
def test_a_linked_file_is_indexed_once(tmp_path: Path, git: bool) -> None:
    """Under its own path when that is indexed too; else under the link (first by name)."""
    root = write_tree(tmp_path / "ws", {".gitignore": "build/\n", "a.py": "x\n", "build/gen.py": "g\n"})
    os.symlink("a.py", root / "alias.py")
    os.symlink("../build/gen.py", write_tree(root, {"src/keep": ""}) / "src" / "gen.py")
    os.symlink("build/gen.py", root / "zgen.py")
    os.symlink(".env", root / "settings.py")  # a secret under another name
    (root / ".env").write_text("API_KEY=1\n")
    if git:
        subprocess.run(["git", "init", "-q", str(root)], check=True)
    found = discover(Rules(root, 1000))
    assert found.files == [".gitignore", "a.py", "src/gen.py", "src/keep"]
    reasons = {s.path: s.reason for s in found.skipped}
    assert reasons["alias.py"] == "same file as a.py (indexed there)"
    assert reasons["zgen.py"] == "same file as src/gen.py (indexed there)"
    assert reasons["settings.py"] == reasons[".env"] == "secret-bearing file (never indexed)"


@pytest.mark.parametrize("git", [True, False])
def test_folder_links_are_walked_once_and_loops_end(tmp_path: Path, git: bool) -> None:
    root = write_tree(tmp_path / "ws", {".gitignore": "build/\n", "build/out/m.py": "m\n", "lib/n.py": "n\n"})
    os.symlink("../build/out", write_tree(root, {"src/a.py": "a\n"}) / "src" / "out")  # an ignored folder
    os.symlink("build/out", root / "out2")  # the same folder again
    os.symlink("../lib", root / "src" / "lib")  # a folder indexed on its own
    os.symlink("../x", write_tree(root, {"z/z.py": "z\n"}) / "z" / "w")  # x/y -> z and z/w -> x
    os.symlink("../z", write_tree(root, {"x/x.py": "x\n"}) / "x" / "y")
    if git:
        subprocess.run(["git", "init", "-q", str(root)], check=True)
    found = discover(Rules(root, 1000))
    assert found.files == [".gitignore", "lib/n.py", "out2/m.py", "src/a.py", "x/x.py", "z/z.py"]
    reasons = {s.path: s.reason for s in found.skipped}
    assert reasons["src/out"] == "same folder as out2 (indexed there)"
    assert reasons["src/lib/n.py"] == "same file as lib/n.py (indexed there)"
    # each side of the x <-> z pair is walked once, through the other's link or its own folder
    assert {p for p in reasons if p.startswith(("x/", "z/"))} <= {"x/y/z.py", "z/w/x.py", "x/y/w", "z/w/y"}


def test_a_folder_of_links_into_a_sibling_folder(tmp_path: Path) -> None:
    """The shape of a Swift package that once indexed one file: Sources/App is all links."""
    repo = tmp_path / "pkg"
    names = ["Cart", "Order", "Price", "Stock"]
    write_tree(repo, {f"Shared/{n}.swift": f"struct {n} {{}}\n" for n in names})
    (repo / "Sources" / "App").mkdir(parents=True)
    for n in names:
        os.symlink(f"../../Shared/{n}.swift", repo / "Sources" / "App" / f"{n}.swift")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    whole = discover(Rules(repo, 1000))
    assert whole.files == [f"Shared/{n}.swift" for n in names]  # each once, under its own path
    assert sorted(s.path for s in whole.skipped) == [f"Sources/App/{n}.swift" for n in names]
    # indexed on its own, the link folder holds every file (the targets are in the repository)
    alone = discover(Rules(repo / "Sources" / "App", 1000))
    assert alone.files == [f"{n}.swift" for n in names] and alone.skipped == []


def test_fifo_is_never_opened(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {"a.py": "x\n"})
    os.mkfifo(root / "pipe")
    assert discover(Rules(root, 1000)).files == ["a.py"]


SCRATCH = [
    "shop/#cart.py#",  # Emacs autosave
    "shop/.#cart.py",  # Emacs lock (a dangling link in real life; a file here)
    "shop/cart.py~",  # Emacs / Vim backup
    "shop/.cart.py.swp",  # Vim swap
    "shop/.cart.py.swo",
    "shop/.cart.py.un~",  # Vim undo
    "shop/4913",  # Vim's write probe
    "shop/cart.py___jb_tmp___",  # JetBrains
    "shop/cart.py___jb_old___",
    "shop/cart.py.vsctmp",  # VS Code atomic save
    "shop/cart.py.orig",  # merge / patch leftovers
    "shop/cart.py.rej",
    "shop/cart.py.BACKUP.1234.py",
    "shop/cart.py.BASE.1234.py",
    "shop/cart.py.LOCAL.1234.py",
    "shop/cart.py.REMOTE.1234.py",
    "shop/cart_BACKUP_1234.py",  # git mergetool
    "shop/cart_REMOTE_1234.py",
]


@pytest.mark.parametrize("git", [True, False])
def test_editor_scratch_files_are_skipped(tmp_path: Path, git: bool) -> None:
    root = write_tree(tmp_path / "ws", {"shop/cart.py": "def total():\n    return 1\n"})
    for rel in SCRATCH:
        (root / rel).write_text("def total():\n    return 0  # stale\n")
    if git:
        subprocess.run(["git", "init", "-q", str(root)], check=True)
    found = discover(Rules(root, 10_000))
    assert found.files == ["shop/cart.py"]
    assert {s.path: s.reason for s in found.skipped} == dict.fromkeys(SCRATCH, SCRATCH_REASON)


def test_a_workspace_takes_scratch_patterns_back_with_a_negation(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {"a.py": "x\n", "patch.orig": "y\n", "a.py~": "z\n", "keep.rej": "w\n"})
    (root / ".raglsignore").write_text("!*.orig\n")
    found = discover(Rules(root, 1000, exclude=["!keep.rej"]))
    assert found.files == [".raglsignore", "a.py", "keep.rej", "patch.orig"]
    assert [(s.path, s.reason) for s in found.skipped] == [("a.py~", SCRATCH_REASON)]


def test_links_to_devices_are_not_opened(tmp_path: Path) -> None:
    """A link to a device outside the repository leaves it; one to a device inside it is refused
    as a device (neither is opened: reading /dev/zero would never end)."""
    root = write_tree(tmp_path, {"a.py": "x\n"})
    os.symlink("/dev/zero", root / "zero.py")
    os.symlink("/dev/null", root / "null.py")
    inside = {"zero.py": LINK_LEAVES, "null.py": LINK_LEAVES}
    if os.geteuid() == 0:  # only root may make a device node; /dev's own are outside any repository
        os.mknod(root / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        os.symlink("null", root / "local_null.py")
        inside["local_null.py"] = LINK_SPECIAL
    found = discover(Rules(root, 1000))
    assert found.files == ["a.py"]
    assert {s.path: s.reason for s in found.skipped} == inside


def test_a_tree_made_only_of_links(tmp_path: Path) -> None:
    """Every entry of the indexed folder is a link (to files, to a folder, to another link) into a
    sibling folder of the repository: each real file is indexed once, under the path the user sees
    there, and nothing else is. Outside git the indexed folder is the repository, so they leave it."""
    repo = tmp_path / "repo"
    write_tree(repo, {"real/a.py": "a\n", "real/b.py": "b\n", "real/pkg/c.py": "c\n", "real/pkg/d.py": "d\n"})
    view = repo / "view"
    view.mkdir()
    os.symlink("../real/a.py", view / "a.py")
    os.symlink("a.py", view / "again.py")  # a link to a link to a.py
    os.symlink("../real/b.py", view / "b.py")
    os.symlink("../real/pkg", view / "pkg")  # a folder link
    os.symlink("pkg", view / "pkg2")  # a link to that folder link
    os.symlink("pkg/c.py", view / "c.py")  # a file reached through the folder link too
    alone = discover(Rules(view, 1000))
    assert alone.files == []
    assert {s.path: s.reason for s in alone.skipped} == dict.fromkeys(
        ["a.py", "again.py", "b.py", "c.py", "pkg", "pkg2"], LINK_LEAVES
    )
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    found = discover(Rules(view, 1000))
    assert found.files == ["a.py", "b.py", "c.py", "pkg/d.py"]
    assert {s.path: s.reason for s in found.skipped} == {
        "again.py": "same file as a.py (indexed there)",
        "pkg/c.py": "same file as c.py (indexed there)",
        "pkg2": "same folder as pkg (indexed there)",
    }
