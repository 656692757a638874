"""The built wheel imports the same way the editable install does (ragls.indexer etc.)."""

import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding only the ragls wheel; dependencies are borrowed from the test
    environment by a plain path entry (which does not activate its editable ragls finder)."""
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(work),
            str(REPO),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = work.glob("ragls-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, timeout=300)
    purelib = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(purelib, "borrowed-deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return venv


def test_wheel_has_every_package_under_ragls(wheel_venv: Path, tmp_path: Path) -> None:
    code = (
        "import ragls, ragls.indexer.engine, ragls.indexer.parsing, ragls.recipes.context, ragls.server, "
        "ragls.llm.base, ragls.privacy, ragls.cli; print(ragls.indexer.engine.__file__)"
    )
    python = str(wheel_venv / "bin" / "python")  # run outside the repo: its ragls/ must not shadow the wheel
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith(str(wheel_venv))  # the wheel's copy, not the source tree
    assert "/site-packages/ragls/indexer/engine.py" in proc.stdout


def test_wheel_entry_point_indexes_and_searches(wheel_venv: Path, tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "geometry.py").write_text("def polygon_area(points):\n    return 0.0\n")
    env = {**os.environ, "RAGLS_CACHE_DIR": str(tmp_path / "cache")}
    ragls = str(wheel_venv / "bin" / "ragls")
    assert (
        subprocess.run([ragls, "index", str(tmp_path / "ws"), "--no-embed"], env=env, timeout=300).returncode
        == 0
    )
    proc = subprocess.run(
        [ragls, "search", "polygon_area", "--root", str(tmp_path / "ws"), "--mode", "bm25", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert '"path": "geometry.py"' in proc.stdout
