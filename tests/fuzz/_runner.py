"""Run one target of ``targets.py`` under atheris (libFuzzer), seeding its corpus first."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["oxidicom"]):
    from tests.fuzz import targets

from tests.sample_data import sample_data_dir

#: The two public series, where the tests find them (no download here).
SHARED_DATA = sample_data_dir()


def run(target: Callable[[bytes], None], seeds: Callable[[], list[bytes]]) -> None:
    """``argv``: libFuzzer's flags and corpus directories; the first directory is seeded."""
    corpora = [Path(a) for a in sys.argv[1:] if not a.startswith("-")]
    if corpora and not any(corpora[0].glob("*")):
        targets.write_seeds(corpora[0], seeds())
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()


def pdu() -> None:
    run(targets.pdu_input, targets.pdu_seeds)


def head() -> None:
    run(targets.head_input, lambda: targets.head_seeds(SHARED_DATA))


# -- the head parser's two twins (issue 21) ----------------------------------------------


def head_diff() -> None:
    """The compiled walk against its reference (``headdiff``): atheris instruments the
    Python twin only, whose branches are the compiled one's, line for line."""
    run(targets.head_diff_input, lambda: targets.head_diff_seeds(SHARED_DATA))


def twins() -> None:
    """The differential target of the compiled twins (i21-dimse)."""
    run(targets.twins_input, targets.twins_seeds)
