"""CPU of walking one instance's head up to (0020,0013): the worst cases of the walk.

``decode_cost.py`` measures the text of the head; this measures the walk that finds it,
``HeadParser.feed`` + ``finish``, which runs on the event loop as the fragments arrive.
A peer controls how many elements stand before (0020,0013) and, with the deflated
transfer syntax, how many bytes they inflate to; these cases are the most CPU for the
fewest bytes sent found so far:

- tiny elements (8 bytes, length 0) at the top level, plain and deflated;
- tiny elements with a long VR (OB, 12-byte header) inside an item of undefined length:
  the slowest element of the walk, deflated (a few kB sent);
- a deflate bomb, one private value of zeros (1032:1);
- the same bomb followed, in the same fragment, by 15 MiB that are never reached
  (fragments may be 16 MiB, ``OXIDICOM_PDU_HARD_CAP``);
- the worst of both for the checkout's own limits: elements up to just below
  ``MAX_ELEMENTS``, then a bomb.

and, the common case, the small MR instance of ``benches/hot_path.py`` in one fragment
(microseconds: many instances per sample).

Where the checkout has a compiled twin of the walk (``oxidicom/dicom/_head_c.pyx``, issue
21) each case is measured with both parsers, ``HeadParserPy`` (the pure-Python reference)
and ``HeadParser`` (compiled), alternately in the same minutes; ``--impl`` picks one::

    python benches/head_walk_cost.py                      # this checkout
    python benches/head_walk_cost.py --src /work/main     # another checkout's code

Prints one line per case and parser: bytes sent, median, min and max milliseconds per
instance, elements walked, bytes inflated, the outcome. Results:
benches/results/decode-cost.md, benches/results/i21-speed.md.
"""

from __future__ import annotations

import argparse
import statistics
import struct
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
SMALL_MR = "small MR instance (hot_path.py's), one fragment"
DEFLATED = "1.2.840.10008.1.2.1.99"
UNDEFINED = 0xFFFFFFFF
MIB = 1024 * 1024
TINY = 499_990

ITEM = struct.pack("<HHL", 0xFFFE, 0xE000, UNDEFINED)
ITEM_DELIMITER = struct.pack("<HHL", 0xFFFE, 0xE00D, 0)
SEQUENCE_DELIMITER = struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)


def implicit(tag: int, value: bytes) -> bytes:
    return struct.pack("<HHL", tag >> 16, tag & 0xFFFF, len(value)) + value


def explicit(tag: int, vr: bytes, value: bytes) -> bytes:
    if vr in (b"OB", b"SQ", b"UN"):
        return struct.pack("<HH2sHL", tag >> 16, tag & 0xFFFF, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr, len(value)) + value


def tiny_implicit(n: int) -> bytes:
    """``n`` private elements of length 0 in groups 0009-001F (the walk does not check their
    order: after 737 280, tags repeat)."""
    return b"".join(
        struct.pack("<HHL", 0x0009 + 2 * (i // 0xF000 % 12), 0x1000 + i % 0xF000, 0)
        for i in range(n)
    )


def tiny_explicit(n: int) -> bytes:
    return b"".join(
        struct.pack("<HH2sH", 0x0009 + 2 * (i // 0xF000 % 12), 0x1000 + i % 0xF000, b"LO", 0)
        for i in range(n)
    )


def nested_long_vr(n: int) -> bytes:
    """One sequence of undefined length whose one item holds ``n`` empty OB elements."""
    sq = struct.pack("<HH2sHL", 0x0009, 0x1000, b"SQ", 0, UNDEFINED)
    element = struct.pack("<HH2sHL", 0x0009, 0x1001, b"OB", 0, 0)
    return sq + ITEM + element * n + ITEM_DELIMITER + SEQUENCE_DELIMITER


def tail_implicit() -> bytes:
    """The path elements after the hostile part (which is all in private groups < 0020)."""
    return (
        implicit(0x0020000D, b"1.2.3.4")
        + implicit(0x0020000E, b"1.2.3.4.5")
        + implicit(0x00200013, b"1 ")
    )


def head_explicit() -> bytes:
    return (
        explicit(0x00080016, b"UI", b"1.2.840.10008.5.1.4.1.1.4\x00")
        + explicit(0x00080018, b"UI", b"1.2.3.4.5.6")
        + explicit(0x00100020, b"LO", b"PID1")
    )


def tail_explicit() -> bytes:
    return (
        explicit(0x0020000D, b"UI", b"1.2.3.4 ")
        + explicit(0x0020000E, b"UI", b"1.2.3.4.5 ")
        + explicit(0x00200013, b"IS", b"1 ")
        + explicit(0x00280010, b"US", b"\x00\x01")
    )


def deflate(*pieces: bytes) -> bytes:
    """Raw deflate (PS3.5 A.5) of the pieces, one after the other."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return b"".join([*(compressor.compress(p) for p in pieces), compressor.flush()])


def bomb(mib: int, before: bytes = b"") -> bytes:
    """Explicit head, ``before`` (plain bytes), then ``mib`` MiB of zeros in one private value,
    then the path tags; deflated."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    out = [compressor.compress(head_explicit() + before)]
    out.append(compressor.compress(struct.pack("<HH2sHL", 0x0019, 0x1001, b"OB", 0, mib * MIB)))
    block = bytes(MIB)
    for _ in range(mib):
        out.append(compressor.compress(block))
    out.append(compressor.compress(tail_explicit()))
    out.append(compressor.flush())
    return b"".join(out)


def small_mr() -> bytes:
    """The data set of ``benches/hot_path.py``'s instance: a 64x64 MR, explicit VR LE."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, the factory
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    from tests.dicom_factory import mr_instance

    buffer = DicomBytesIO()
    buffer.is_implicit_VR = False
    buffer.is_little_endian = True
    write_dataset(buffer, mr_instance(instance_number=1))
    return buffer.getvalue()


#: Instances per timed sample, for the cases that take microseconds.
BATCH = {SMALL_MR: 2000, "ordinary head, implicit": 2000}


def cases(max_elements: int) -> dict[str, Callable[[], tuple[str, bytes, int]]]:
    """name -> a maker of (transfer syntax, data set bytes, bytes per feed): only the cases
    run are built (the bombs cost seconds, minutes under callgrind)."""
    frag = 16384

    def plain_tiny() -> bytes:
        # As many as the old limit (500 000) let through: the audit's instance, stored before.
        return tiny_implicit(TINY) + tail_implicit()

    def whole(ts: str, data: bytes) -> tuple[str, bytes, int]:
        return ts, data, len(data)

    return {
        SMALL_MR: lambda: whole(EXPLICIT_LE, small_mr()),
        "ordinary head, implicit": lambda: (
            IMPLICIT_LE,
            implicit(0x00080016, b"1.2.840.10008.5.1.4.1.1.4\x00")
            + implicit(0x00080018, b"1.2.3.4.5.6 ")
            + implicit(0x00100020, b"PID1")
            + tail_implicit(),
            frag,
        ),
        "500 000 tiny elements, plain, 16 KiB fragments": lambda: (
            IMPLICIT_LE,
            plain_tiny(),
            frag,
        ),
        "500 000 tiny elements, plain, one fragment": lambda: whole(IMPLICIT_LE, plain_tiny()),
        "2 000 000 tiny elements, one 16 MiB fragment": lambda: (
            IMPLICIT_LE,
            tiny_implicit(2_000_000) + tail_implicit(),
            16 * MIB,
        ),
        "500 000 tiny elements, deflated": lambda: (
            DEFLATED,
            deflate(head_explicit(), tiny_explicit(TINY), tail_explicit()),
            frag,
        ),
        "500 000 empty OB in an item, deflated": lambda: (
            DEFLATED,
            deflate(head_explicit(), nested_long_vr(TINY), tail_explicit()),
            frag,
        ),
        "256 MiB deflate bomb": lambda: (DEFLATED, bomb(256), frag),
        "64 MiB bomb + 15 MiB tail, one fragment": lambda: (
            DEFLATED,
            bomb(64) + bytes(15 * MIB),
            16 * MIB,
        ),
        "elements to the limit, then bomb": lambda: (
            DEFLATED,
            bomb(256, nested_long_vr(max_elements - max_elements // 100)),
            frag,
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", default=str(Path(__file__).resolve().parents[1]))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--only", help="run only the cases whose name contains this")
    parser.add_argument(
        "--impl",
        choices=["both", "python", "compiled"],
        default="both",
        help="which parser where the checkout has both (default: each, alternately)",
    )
    args = parser.parse_args()
    sys.path.insert(0, args.src)

    from oxidicom.dicom import head
    from oxidicom.dicom.errors import DatasetError

    parsers = {"selected": head.HeadParser}
    if hasattr(head, "HeadParserPy"):  # issue 21: the reference and the compiled twin
        parsers = {"python": head.HeadParserPy}
        if head.HeadParser is not head.HeadParserPy:
            parsers["compiled"] = head.HeadParser
        if args.impl != "both":
            parsers = {args.impl: parsers[args.impl]}

    def one(kind: type, ts: str, data: bytes, frag: int, batch: int) -> tuple[float, object, str]:
        view = memoryview(data)
        start = time.process_time()
        for _ in range(batch):
            parser = kind(ts)
            for pos in range(0, len(view), frag):
                if parser.feed(view[pos : pos + frag]):
                    break
            try:
                parser.finish()
                outcome = "stored"
            except DatasetError as exc:
                outcome = f"{exc.status:04X} {exc.comment}"
        return (time.process_time() - start) * 1000 / batch, parser, outcome

    print(
        f"src {args.src}; MAX_ELEMENTS {head.MAX_ELEMENTS}; {args.repeats} samples per case"
        f" and parser ({', '.join(parsers)}, alternately)"
    )
    for name, make in cases(head.MAX_ELEMENTS).items():
        if args.only and args.only not in name:
            continue
        ts, data, frag = make()
        batch = BATCH.get(name, 1)
        times: dict[str, list[float]] = {label: [] for label in parsers}
        last: dict[str, tuple[object, str]] = {}
        for kind in parsers.values():
            one(kind, ts, data, frag, batch)  # warm
        for _ in range(args.repeats):
            for label, kind in parsers.items():
                ms, walked, outcome = one(kind, ts, data, frag, batch)
                times[label].append(ms)
                last[label] = (walked, outcome)
        for label in parsers:
            walked, outcome = last[label]
            samples = times[label]
            print(
                f"{name:46s} {label:8s} sent {len(data):9d} B  "
                f"median {statistics.median(samples):8.4f} ms  min {min(samples):8.4f}  "
                f"max {max(samples):8.4f}  elements {getattr(walked, '_count', -1):7d}  "
                f"inflated {getattr(walked, '_inflated', -1):10d}  {outcome}",
                flush=True,
            )


if __name__ == "__main__":
    main()
