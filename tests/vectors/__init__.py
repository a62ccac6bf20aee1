"""Golden PDU vectors captured from real peers (see ``capture.py`` and ``README.md``).

Each scenario is a directory of annotated hex files ``NN-<dir>-<PDU>.hex``; ``NN`` is
the PDU's position in the conversation, ``<dir>`` is ``rq`` (requestor -> acceptor,
what oxidicom receives) or ``ac`` (acceptor -> requestor).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclasses.dataclass(frozen=True)
class Vector:
    scenario: str
    index: int
    direction: str
    name: str
    raw: bytes
    path: Path

    @property
    def id(self) -> str:
        return f"{self.scenario}/{self.path.stem}"


def read_hex(path: Path) -> bytes:
    """The bytes of an annotated hex file: ``#`` lines are comments, the rest is hex."""
    lines = path.read_text().splitlines()
    return bytes.fromhex("".join(line for line in lines if not line.startswith("#")))


def scenarios() -> list[str]:
    return sorted(p.name for p in HERE.iterdir() if p.is_dir() and any(p.glob("*.hex")))


def load(scenario: str) -> list[Vector]:
    """Every kept PDU of a scenario, in conversation order."""
    vectors = []
    for path in sorted((HERE / scenario).glob("*.hex")):
        index, direction, name = path.stem.split("-", 2)
        vectors.append(Vector(scenario, int(index), direction, name, read_hex(path), path))
    return vectors


def vector(scenario: str, index: int) -> Vector:
    """The PDU at position ``index`` of a scenario."""
    for v in load(scenario):
        if v.index == index:
            return v
    raise KeyError(f"{scenario} has no PDU {index}")


def stream(scenario: str, direction: str = "rq") -> bytes:
    """One direction's kept PDUs, concatenated as they went over the wire."""
    return b"".join(v.raw for v in load(scenario) if v.direction == direction)


def all_vectors() -> list[Vector]:
    return [v for name in scenarios() for v in load(name)]
