"""The package: its version is the project's (CMakeLists.txt's project(tinyroute VERSION ...), the one
source pyproject.toml reads through tinyroute.__version__), `python -m build` makes a wheel and an sdist
of that version, the wheel imports on its own, and the public surface has no way to make the internal
model write."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import tinyroute
from conftest import REPO
from tinyroute import Client, TinyrouteClient

PACKAGE = REPO / "clients" / "python"


def cmake_version() -> str:
    found = re.search(r"project\(tinyroute\s+VERSION\s+([0-9.]+)", (REPO / "CMakeLists.txt").read_text())
    assert found, "CMakeLists.txt has no project(tinyroute VERSION ...)"
    return found.group(1)


def test_the_version_is_the_projects():
    assert tinyroute.__version__ == cmake_version()
    if os.environ.get("TINYROUTE_CMAKE_VERSION"):  # what the configured build says (ctest sets it)
        assert tinyroute.__version__ == os.environ["TINYROUTE_CMAKE_VERSION"]


def test_build_makes_a_wheel_and_an_sdist_of_that_version(tmp_path: Path):
    pytest.importorskip("build", reason="the venv has `build` (scripts/python-env.sh)")
    out = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(tmp_path / "dist"), str(PACKAGE)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    version = cmake_version()
    dist = tmp_path / "dist"
    wheel = dist / f"tinyroute-{version}-py3-none-any.whl"
    sdist = dist / f"tinyroute-{version}.tar.gz"
    assert sorted(p.name for p in dist.iterdir()) == sorted([wheel.name, sdist.name])

    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = z.read(f"tinyroute-{version}.dist-info/METADATA").decode()
    assert {"tinyroute/__init__.py", "tinyroute/_core.py", "tinyroute/client.py", "tinyroute/py.typed"} <= names
    assert f"\nVersion: {version}\n" in meta and "Requires-Dist: httpx" in meta
    with tarfile.open(sdist) as t:
        members = set(t.getnames())
        pkg_info = t.extractfile(f"tinyroute-{version}/PKG-INFO").read().decode()  # type: ignore[union-attr]
    assert f"tinyroute-{version}/pyproject.toml" in members
    assert f"tinyroute-{version}/tinyroute/_core.py" in members
    assert f"\nVersion: {version}\n" in pkg_info

    # The wheel alone (first on the path, so the source tree's package is not what is imported).
    probe = subprocess.run(
        [sys.executable, "-c", "import tinyroute; print(tinyroute.__file__); print(tinyroute.__version__); "
                               "print(tinyroute.Client.__name__, tinyroute.AsyncClient.__name__)"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(wheel)},
    )
    assert probe.returncode == 0, probe.stderr
    where, got, classes = probe.stdout.splitlines()
    assert where.startswith(str(wheel)) and got == version and classes == "Client TinyrouteClient"


def test_the_clients_cannot_make_the_internal_model_write():
    """The internal model decides; it never answers. Both clients' public surfaces say so, and they are
    the same surface (the async one closes with aclose)."""
    surfaces = {}
    for cls, closer in ((Client, "close"), (TinyrouteClient, "aclose")):
        public = {name for name, _ in inspect.getmembers(cls) if not name.startswith("_")}
        assert closer in public
        surfaces[cls] = public - {closer}
        for word in ("generate", "synthesize", "chat", "complete", "completion", "answer", "write", "reply"):
            assert not any(word in name for name in public), (cls, word)
    assert surfaces[Client] == surfaces[TinyrouteClient] == {
        "analyze", "classify_task", "extract_metadata", "format_agent_message", "health", "is_closed",
        "route", "route_agent", "select_model",
    }
    for name in surfaces[Client]:  # the same parameters, sync and async
        if name != "is_closed":
            assert inspect.signature(getattr(Client, name)) == inspect.signature(getattr(TinyrouteClient, name)), name
