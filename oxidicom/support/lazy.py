"""A package's re-exports, imported on first use (PEP 562).

A package ``__init__`` that names its public classes for callers
(``from oxidicom.scp import ScpService``) would otherwise import every module under it:
the supervisor of several workers, which needs the settings and none of the receive
path, would pay for pydicom, numpy and the brokers' clients.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: each name of ``where`` imported from its
    module when first asked for, then kept in the package like an ordinary import."""

    def attribute(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    return attribute
