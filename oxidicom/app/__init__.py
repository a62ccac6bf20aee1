"""The program: settings, start-up and drain, worker processes, the command line.

Nothing imports this package. It exports only the entry point, and imports nothing
heavy itself: :func:`main` keeps NumPy out before anything imports pydicom.
"""

from oxidicom.app.entry import main

__all__ = ["main"]
