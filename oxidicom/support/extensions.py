"""Which receive path runs: a compiled module (Cython, ``*.pyx``) or its pure-Python twin.

The pure-Python modules are the reference; each compiled module does the same work
faster and must give the same events, bytes and errors (the differential tests feed both).
``OXIDICOM_NO_EXTENSIONS=1`` selects the pure-Python twins at run time (and skips the
build at install, ``setup.py``); a module that was not built falls back the same way.
The variable is read when a module is first imported, as aiohttp's ``AIOHTTP_NO_EXTENSIONS``.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

NO_EXTENSIONS_VARIABLE = "OXIDICOM_NO_EXTENSIONS"

_loaded: dict[str, ModuleType] = {}
_missing: dict[str, str] = {}


def extensions_wanted() -> bool:
    """False when ``OXIDICOM_NO_EXTENSIONS`` is set to anything but empty, 0, false or no."""
    value = os.environ.get(NO_EXTENSIONS_VARIABLE, "").strip().lower()
    return value in ("", "0", "false", "no")


def load_compiled(name: str) -> ModuleType | None:
    """The compiled module ``name``, or None where it is not wanted or not built."""
    if not extensions_wanted():
        _missing[name] = f"{NO_EXTENSIONS_VARIABLE} is set"
        return None
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        _missing[name] = f"not built ({exc})"
        return None
    _loaded[name] = module
    return module


def compiled_modules() -> dict[str, ModuleType]:
    """The compiled modules in use, by name."""
    return dict(_loaded)


def missing_modules() -> dict[str, str]:
    """The compiled modules asked for but not in use, with the reason."""
    return dict(_missing)


def describe() -> str:
    """The start line's words on the receive path in use."""
    if not _loaded and not _missing:
        return "receive path: pure Python (no compiled module in this build)"
    if not _missing:
        return f"receive path: compiled ({len(_loaded)} module(s))"
    reasons = sorted(set(_missing.values()))
    if not _loaded:
        return f"receive path: pure Python ({'; '.join(reasons)})"
    names = ", ".join(sorted(_missing))
    return (
        f"receive path: compiled in part ({len(_loaded)} module(s)); pure Python for {names}"
        f" ({'; '.join(reasons)})"
    )
