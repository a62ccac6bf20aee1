"""The two receive paths side by side: a compiled module (Cython) and its pure-Python twin.

Tests of a twinned module take both, as aiohttp's ``py-parser``/``c-parser`` fixtures do::

    @pytest.fixture(params=["python", "compiled"])
    def walker(request):
        return implementation(request.param, "oxidicom.dicom._head_py", "oxidicom.dicom._head_c")

The compiled one is skipped with the reason where it is not built, or where
``OXIDICOM_NO_EXTENSIONS`` asks for the pure-Python path (CI's second mode), and its
absence fails under CI otherwise: a build that silently fell back would test one twin
twice.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

from oxidicom.support.extensions import NO_EXTENSIONS_VARIABLE, extensions_wanted

IMPLEMENTATIONS = ("python", "compiled")


def compiled_module(name: str) -> ModuleType:
    """The compiled module ``name`` itself (not its fallback), or skip/fail saying why."""
    if not extensions_wanted():
        pytest.skip(f"{NO_EXTENSIONS_VARIABLE} is set: the pure-Python path only")
    try:
        # Its pure-Python twin first, as the receiver imports them: the compiled module
        # imports the twin, which then takes the compiled module's classes (imported the
        # other way round, the twin would find it half made).
        package, _, leaf = name.rpartition(".")
        importlib.import_module(f"{package}.{leaf.removeprefix('_').removesuffix('_c')}")
        module = importlib.import_module(name)
    except ImportError as exc:
        reason = f"{name} is not built ({exc}): pip install -e . with a C compiler builds it"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    assert module.__file__ is not None and not module.__file__.endswith(".py"), module.__file__
    return module


def implementation(kind: str, python_module: str, compiled: str) -> ModuleType:
    """The pure-Python module (``kind`` "python") or the compiled one ("compiled")."""
    if kind == "python":
        return importlib.import_module(python_module)
    return compiled_module(compiled)
