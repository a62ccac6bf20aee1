"""The flood bench: oxidicom against storescp and pynetdicom, many instances at once.

Run it with ``python -m benches.flood`` from the repository root; see benches/README.md.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCHES = ROOT / "benches"
