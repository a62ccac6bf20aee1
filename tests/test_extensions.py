"""The compiled receive path: built where it should be, in use, and optional.

Every ``oxidicom/**/*.pyx`` is a compiled twin of a pure-Python module. Under CI in the
compiled mode each must be built and in use once the receiver's modules are imported;
with ``OXIDICOM_NO_EXTENSIONS=1`` none is used; without a C compiler the install falls
back to the pure-Python path instead of failing.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from oxidicom.support import extensions
from tests.implementations import compiled_module

ROOT = Path(__file__).resolve().parents[1]
COMPILED = sorted(
    ".".join(path.relative_to(ROOT).with_suffix("").parts)
    for path in (ROOT / "oxidicom").rglob("*.pyx")
)


def _import_the_receiver() -> None:
    # The modules that choose a twin at import: the whole receive path.
    importlib.import_module("oxidicom.app.startup")


@pytest.mark.parametrize("name", COMPILED)
def test_every_compiled_module_is_built(name: str) -> None:
    module = compiled_module(name)  # fails under CI when it is not built
    assert Path(module.__file__).suffix in (".so", ".pyd")


def test_the_receiver_uses_every_compiled_module_built() -> None:
    _import_the_receiver()
    if not extensions.extensions_wanted():
        assert extensions.compiled_modules() == {}
        assert "pure Python" in extensions.describe()
        return
    built = [name for name in COMPILED if _is_built(name)]
    assert sorted(extensions.compiled_modules()) == sorted(built)
    if os.environ.get("CI", "").lower() == "true":
        assert extensions.missing_modules() == {}, extensions.describe()


def _is_built(name: str) -> bool:
    try:
        module = importlib.import_module(name)
    except ImportError:
        return False
    return not str(module.__file__).endswith(".py")


def test_no_extensions_selects_the_pure_python_twins() -> None:
    code = (
        "import oxidicom.app.startup\n"
        "from oxidicom.support import extensions as e\n"
        "assert e.compiled_modules() == {}, e.compiled_modules()\n"
        "print(e.describe())\n"
    )
    env = {**os.environ, extensions.NO_EXTENSIONS_VARIABLE: "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    if COMPILED:
        assert "OXIDICOM_NO_EXTENSIONS is set" in done.stdout


@pytest.mark.parametrize("value", ["", "0", "false", "no", "FALSE"])
def test_values_that_keep_the_extensions(monkeypatch, value: str) -> None:
    monkeypatch.setenv(extensions.NO_EXTENSIONS_VARIABLE, value)
    assert extensions.extensions_wanted()


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_values_that_select_pure_python(monkeypatch, value: str) -> None:
    monkeypatch.setattr(extensions, "_missing", {})  # the receiver's own record stays clean
    monkeypatch.setenv(extensions.NO_EXTENSIONS_VARIABLE, value)
    assert not extensions.extensions_wanted()
    assert extensions.load_compiled("oxidicom.no_such_module") is None


def test_a_module_not_built_falls_back_and_is_named(monkeypatch) -> None:
    monkeypatch.setattr(extensions, "_missing", {})
    monkeypatch.delenv(extensions.NO_EXTENSIONS_VARIABLE, raising=False)
    assert extensions.load_compiled("oxidicom.support._never_built_c") is None
    reason = extensions.missing_modules()["oxidicom.support._never_built_c"]
    assert reason.startswith("not built")
    assert "pure Python" in extensions.describe()


@pytest.mark.skipif(not COMPILED, reason="no compiled module in this tree")
def test_without_a_c_compiler_the_build_falls_back(tmp_path: Path) -> None:
    """``setup.py build_ext`` with a compiler that always fails: a build, not an error."""
    pytest.importorskip("Cython", reason="Cython is the build's own requirement")
    tree = tmp_path / "tree"
    tree.mkdir()
    shutil.copy(ROOT / "setup.py", tree)
    shutil.copy(ROOT / "pyproject.toml", tree)
    shutil.copy(ROOT / "README.md", tree)
    shutil.copytree(
        ROOT / "oxidicom",
        tree / "oxidicom",
        ignore=shutil.ignore_patterns("*.so", "*.c", "__pycache__"),
    )
    env = {**os.environ, "CC": "/bin/false", "LDSHARED": "/bin/false"}
    env.pop(extensions.NO_EXTENSIONS_VARIABLE, None)
    done = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "pure-Python twin will run" in done.stderr
    assert not list((tree / "oxidicom").rglob("*.so"))
