"""Our SeaHash against the Rust crate's (the PyPI package ``seahash`` wraps it)."""

import os
import platform
import sys
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oxidicom.storage.seahash import seahash

# seahash::hash of these inputs: the crate's own test vector, the empty input and a series UID
# of the sample data (its hash7 in CONTRACT section 2), computed with seahash 0.2.0 from PyPI
VECTORS = {
    b"": 0xC920CA43256FDCB9,
    b"to be or not to be": 0x1B993A826F4AE575,
    b"1.2.826.0.1.3680043.2.1143.515404396022363061013111326823367652": 0x661B8FC319A549E7,
}


def _reference() -> ModuleType:
    # The test extra installs it where it has wheels; under CI there it must be present.
    has_wheels = sys.version_info[:2] == (3, 11) and sys.platform == "linux"
    has_wheels = has_wheels and platform.machine() == "x86_64"
    if has_wheels and os.environ.get("CI") == "true":
        import seahash as reference

        return reference
    return pytest.importorskip(
        "seahash", reason="the seahash package has wheels for CPython 3.11 on x86-64 only"
    )


@pytest.mark.parametrize(("data", "expected"), VECTORS.items())
def test_vectors(data: bytes, expected: int) -> None:
    assert seahash(data) == expected


def test_every_length_around_the_word_and_lane_boundaries() -> None:
    reference = _reference()
    data = bytes(range(256)) * 2
    for n in range(len(data) + 1):
        assert seahash(data[:n]) == reference.hash(data[:n]), n


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes(data: bytes) -> None:
    assert seahash(data) == _reference().hash(data)
