"""SeaHash, the 64-bit hash of the CUBE path's ``hash7`` (CONTRACT section 2), in Python.

The reference receiver hashes with the Rust crate ``seahash``; the PyPI package of the
same name wraps it, but publishes binary wheels for CPython 3.11 on x86-64 only, and
anything else (Python 3.12+, ARM) would need a Rust toolchain and crates.io to install.
The algorithm is small (the crate's ``reference.rs``): the input is read as
little-endian 64-bit words, the last one zero-padded; each word is mixed into the first
of four lanes, which then rotate; the lanes and the input length are folded and mixed
once more. It runs once per series (the series folder is memoized), so its speed does
not matter; its output must match the crate's bit for bit (tests/storage/test_seahash.py).
"""

from __future__ import annotations

from typing import Final

_MASK: Final = (1 << 64) - 1
_PCG: Final = 0x6EED0E9DA4D94A4F
_SEEDS: Final = (0x16F11FE89B0D677C, 0xB480A793D8E6C86C, 0x6FE2E5AAF078EBC9, 0x14F994A4C5259381)


def _diffuse(x: int) -> int:
    """The crate's bijective mixing function (a PCG-style multiply-xorshift-multiply)."""
    x = (x * _PCG) & _MASK
    x ^= (x >> 32) >> (x >> 60)
    return (x * _PCG) & _MASK


def seahash(data: bytes) -> int:
    """The 64-bit SeaHash of ``data``, as ``seahash::hash`` computes it."""
    a, b, c, d = _SEEDS
    for start in range(0, len(data), 8):
        word = int.from_bytes(data[start : start + 8], "little")
        a, b, c, d = b, c, d, _diffuse(a ^ word)
    return _diffuse(a ^ b ^ c ^ d ^ len(data))
