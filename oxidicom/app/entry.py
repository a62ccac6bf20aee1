"""The receiver's process entry point: the ``oxidicom`` script and ``python -m oxidicom``.

pydicom imports NumPy at import time whenever it is installed, for pixel data that a
receiver never decodes: 16 MiB more memory and a tenth of a second more start-up in
every receiver process. The entry point keeps NumPy out of the process before anything
imports pydicom (pydicom treats NumPy as optional and works without it). Code that
imports :mod:`oxidicom.app.cli` itself (tests, other programs) is left alone.
"""

from __future__ import annotations

import sys


def main() -> int:
    """Start the command line program, without NumPy."""
    if "numpy" not in sys.modules:
        sys.modules["numpy"] = None  # type: ignore[assignment]  # `import numpy` fails
    from oxidicom.app.cli import main as cli_main

    return cli_main()
