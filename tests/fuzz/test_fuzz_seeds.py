"""Replay the fuzz seeds and every saved crash through the fuzz targets (no atheris needed).

Each file in ``crashes/`` is an input atheris once found to break an invariant; its name
starts with the target it belongs to (``pdu-`` or ``head-``). They stay here as
regression tests of the fixes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz import targets
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
