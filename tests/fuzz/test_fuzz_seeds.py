"""Replay the fuzz seeds and every saved crash through the fuzz targets (no atheris needed).

Each file in ``crashes/`` is an input atheris once found to break an invariant; its name
starts with the target it belongs to (``pdu-`` or ``head-``). They stay here as
regression tests of the fixes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.dicom.head_twins import head_twin
from tests.fuzz import targets
from tests.implementations import compiled_module
from tests.sample_data import sample_data_dir

CRASHES = Path(__file__).resolve().parent / "crashes"
#: The two public series, where the tests find them (no download here).
SHARED_DATA = sample_data_dir()
TARGETS = {"pdu": targets.pdu_input, "head": targets.head_input}


def test_pdu_seeds_pass_the_target() -> None:
    seeds = targets.pdu_seeds()
    assert len(seeds) > 50
    for seed in seeds:
        targets.pdu_input(seed)


def test_head_seeds_pass_the_target() -> None:
    seeds = targets.head_seeds(SHARED_DATA)
    assert len(seeds) >= 4
    for seed in seeds:
        targets.head_input(seed)


@pytest.mark.parametrize("path", sorted(CRASHES.iterdir()), ids=lambda p: p.name)
def test_saved_crash_no_longer_breaks_its_target(path: Path) -> None:
    target = TARGETS[path.name.split("-", 1)[0]]
    target(path.read_bytes())


# -- the head parser's two twins (issue 21): a block of its own -------------------------
#
# ``headdiff``: the compiled walk against its reference on the same pieces. Its own saved
# crashes are named ``headdiff-*``; every seed and saved crash of ``head`` replays through
# it too, in the same pieces and cut in a few more ways.

TARGETS["headdiff"] = targets.head_diff_input
HEAD_CRASHES = sorted(p for p in CRASHES.iterdir() if p.name.startswith("head-"))


@pytest.fixture
def head_compiled() -> None:
    head_twin("compiled")  # skips where not built (fails under CI), as the target can't


def test_headdiff_seeds_pass_the_target(head_compiled: None) -> None:
    seeds = targets.head_diff_seeds(SHARED_DATA)
    assert len(seeds) >= 4 * 24
    for seed in seeds:
        targets.head_diff_input(seed)


@pytest.mark.parametrize("path", HEAD_CRASHES, ids=lambda p: p.name)
def test_saved_head_crash_passes_the_headdiff_target(head_compiled: None, path: Path) -> None:
    data = path.read_bytes()
    targets.head_diff_input(targets.head_diff_from_head_input(data))
    for cut in (1, 9, len(data) // 2):
        for flags in (1, 3, 0x80 | 2 << 2):
            targets.head_diff_input(bytes([data[0], cut >> 8, cut & 0xFF, 5, flags]) + data[2:])


def test_non_ascii_calling_ae_title_is_echoed_in_the_ac() -> None:
    """PS3.8 9.3.3.1: the AC returns the calling AE title as received, whatever its bytes."""
    from oxidicom.scp.acceptance import AcceptancePolicy, Accepted, negotiate
    from oxidicom.ul import pdu as ul
    from tests.vectors import vector

    golden = bytearray(vector("dcmtk_storescu", 1).raw)
    golden[30] = 0xA8  # a byte of the calling AE title (bytes 27-42 of the PDU)
    raw = bytes(golden)
    request = ul.parse_pdu(raw)
    assert isinstance(request, ul.AssociateRQ)
    answer = negotiate(request, AcceptancePolicy(ae_title="ChRIS", max_pdu_length=16384))
    assert isinstance(answer, Accepted)
    encoded = ul.encode(answer.response)
    assert encoded[26:42] == raw[26:42]  # calling AE title, bytes 27-42 of both PDUs


# == i21-dimse: the differential target of the compiled twins (codec, UL reader) =========


def _twins_built() -> None:
    compiled_module("oxidicom.dimse._commands_c")  # skips (fails under CI) when not built
    compiled_module("oxidicom.ul._connection_c")


def _twins_input(data: bytes) -> None:
    _twins_built()
    targets.twins_input(data)


TARGETS["twins"] = _twins_input


def test_twins_seeds_give_the_same_trace() -> None:
    _twins_built()
    seeds = targets.twins_seeds()
    assert len(seeds) > len(targets.pdu_seeds())
    for seed in seeds:
        targets.twins_input(seed)


@pytest.mark.parametrize(
    "path",
    sorted(p for p in CRASHES.iterdir() if p.name.startswith(("pdu-", "twins-"))),
    ids=lambda p: p.name,
)
def test_saved_pdu_crash_gives_the_same_trace_on_both_twins(path: Path) -> None:
    _twins_input(path.read_bytes())


@st.composite
def _split_seeds(draw: st.DrawFn) -> bytes:
    """A seed, maybe mutated, in another mode and cut in pieces of any size."""
    seed = bytearray(draw(st.sampled_from(_TWIN_SEEDS)))
    for _ in range(draw(st.integers(0, 3))):
        if len(seed) > 2:
            seed[draw(st.integers(2, len(seed) - 1))] = draw(st.integers(0, 255))
    seed[0] = draw(st.sampled_from([seed[0], 0, 1, 2, 3]))
    seed[1] = draw(st.integers(0, 255))
    return bytes(seed)


_TWIN_SEEDS = targets.twins_seeds()


@settings(max_examples=300, deadline=None)
@given(_split_seeds())
def test_twins_on_any_split_of_any_seed(data: bytes) -> None:
    _twins_input(data)


# == end of i21-dimse ====================================================================
