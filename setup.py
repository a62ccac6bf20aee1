"""The optional compiled receive path: every ``oxidicom/**/*.pyx`` built as a C extension.

Each compiled module has a pure-Python twin that stays the reference (same events, same
bytes, same errors); ``oxidicom/support/extensions.py`` picks one at run time. The build
is optional on purpose: without a C compiler, without Cython, or with
``OXIDICOM_NO_EXTENSIONS=1`` set at install, the package installs with the pure-Python
path only and says so in one line, and ``make run``/``make test`` still work.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

NO_EXTENSIONS_VARIABLE = "OXIDICOM_NO_EXTENSIONS"
HERE = Path(__file__).resolve().parent


def _extensions_wanted() -> bool:
    return os.environ.get(NO_EXTENSIONS_VARIABLE, "").strip().lower() in ("", "0", "false", "no")


def _say(message: str) -> None:
    # pip shows a build backend's stderr only with -v or on failure; a file under the
    # build folder would be lost, so this is the one line a verbose install shows.
    print(f"oxidicom: {message}", file=sys.stderr)


class OptionalBuildExt(build_ext):
    """build_ext that falls back to the pure-Python twins instead of failing the install."""

    def finalize_options(self) -> None:
        super().finalize_options()
        if not self.parallel:  # one C compiler per CPU: the image, CI and make test wait less
            self.parallel = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler, no headers: the pure-Python path serves
            _say(f"compiled receive path not built ({exc}); the pure-Python one will run")

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            _say(f"{ext.name} not built ({exc}); its pure-Python twin will run")


def _extensions() -> list[Extension]:
    if not _extensions_wanted():
        _say(f"{NO_EXTENSIONS_VARIABLE} is set: the pure-Python receive path only")
        return []
    sources = sorted(p.relative_to(HERE) for p in (HERE / "oxidicom").rglob("*.pyx"))
    if not sources:
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        _say("Cython is not installed: the pure-Python receive path only")
        return []
    modules = [
        Extension(
            ".".join(source.with_suffix("").parts),
            [str(source)],
        )
        for source in sources
    ]
    try:
        return cythonize(
            modules,
            language_level=3,
            quiet=True,
            compiler_directives={"embedsignature": True},
        )
    except Exception as exc:  # a .pyx Cython cannot translate: the twins serve
        _say(f"Cython failed ({exc}); the pure-Python receive path only")
        return []


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
