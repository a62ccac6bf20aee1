"""CPU of the text of one instance's head: decoding (character sets) and its path.

What the event loop spends, per instance, between the last byte of the head and the
path of the file: ``HeadParser`` feed + finish, ``check_required``, ``series_dir`` (its
cache cleared: a hostile peer varies its values) and ``instance_file_name``. Logging is
configured as the receiver configures it (JSON lines, here to /dev/null), since a log
line per undecodable part of a value is part of the cost; the lines are counted.

Cases: an ordinary head, and heads whose StudyDescription, SeriesDescription and
PatientName are 64 KiB of escape sequences and bytes that the character set cannot
decode (the worst cases found; each value is as long as a kept element may be)::

    python benches/decode_cost.py                      # this checkout
    python benches/decode_cost.py --src /work/main     # another checkout's code, e.g. main

Prints one line per case: median, min and max milliseconds per instance, log lines per
instance. Results: benches/results/decode-cost.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import struct
import sys
import time
from pathlib import Path

IMPLICIT_LE = "1.2.840.10008.1.2"
VALUE_SIZE = 65534  # the largest even length under the parser's 64 KiB limit of a kept value


def element(tag: int, value: bytes) -> bytes:
    if len(value) % 2:
        value += b" "
    return struct.pack("<HHL", tag >> 16, tag & 0xFFFF, len(value)) + value


def head(charset: bytes, name: bytes, description: bytes) -> bytes:
    """An implicit VR little endian head with every element the path reads."""
    return b"".join(
        [
            element(0x00080005, charset),
            element(0x00080016, b"1.2.840.10008.5.1.4.1.1.4"),
            element(0x00080018, b"1.2.826.0.1.3680043.2.1143.1.2.3.4.5"),
            element(0x00080020, b"20240229"),
            element(0x00080050, b"ACC1"),
            element(0x00080060, b"MR"),
            element(0x00081030, description),
            element(0x0008103E, description),
            element(0x00100010, name),
            element(0x00100020, b"PID-1"),
            element(0x00100030, b"19700101"),
            element(0x0020000D, b"1.2.826.0.1.3680043.2.1143.1"),
            element(0x0020000E, b"1.2.826.0.1.3680043.2.1143.1.2"),
            element(0x00200011, b"12"),
            element(0x00200013, b"7"),
        ]
    )


def filled(unit: bytes) -> bytes:
    return (unit * (VALUE_SIZE // len(unit) + 1))[:VALUE_SIZE]


CASES: dict[str, bytes] = {
    "ordinary (ISO 2022 IR 87 name)": head(
        b"\\ISO 2022 IR 87",
        b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B",
        b"Brain w/o",
    ),
    "64 KiB unknown escapes, default repertoire": head(b"", filled(b"\x1b(Z"), filled(b"\x1b(Z")),
    "64 KiB ESC $B / ESC (B switches, IR 87": head(
        b"\\ISO 2022 IR 87", filled(b"\x1b$B\x30\x21\x1b(B"), filled(b"\x1b$B\x30\x21\x1b(B")
    ),
    "64 KiB invalid JIS bytes after ESC $B, IR 87": head(
        b"\\ISO 2022 IR 87", filled(b"\x1b$B\xff\xfe"), filled(b"\x1b$B\xff\xfe")
    ),
    "64 KiB escapes + invalid bytes, GB18030": head(
        b"GB18030", filled(b"\x1b$)A\x81\x30"), filled(b"\x1b$)A\x81\x30")
    ),
    "64 KiB invalid bytes, no escape, GB18030": head(
        b"GB18030", filled(b"\x81\x30"), filled(b"\xff")
    ),
    "64 KiB Latin-1 letters, ISO_IR 100": head(b"ISO_IR 100", filled(b"\xe9"), filled(b"A")),
}


class _Counter(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", default=str(Path(__file__).resolve().parents[1]))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--fragment", type=int, default=16384, help="bytes per feed")
    args = parser.parse_args()
    sys.path.insert(0, args.src)

    from oxidicom.dicom.head import HeadParser
    from oxidicom.storage import layout
    from oxidicom.telemetry import logs

    with open(os.devnull, "w", encoding="utf-8") as devnull:
        logs.configure("INFO", "json", devnull)
        counter = _Counter()
        logging.getLogger().addHandler(counter)

        def one(data: bytes) -> None:
            parser = HeadParser(IMPLICIT_LE)
            view = memoryview(data)
            for start in range(0, len(view), args.fragment):
                if parser.feed(view[start : start + args.fragment]):
                    break
            fields = parser.finish()
            layout.check_required(fields)
            layout._series_dir.cache_clear()
            layout.series_dir("PACS", fields)
            layout.instance_file_name(fields)

        print(f"src {args.src}; {args.repeats} instances per case; ms per instance")
        for name, data in CASES.items():
            one(data)  # codecs looked up, regular expressions compiled
            counter.count = 0
            times = []
            for _ in range(args.repeats):
                start = time.process_time()
                one(data)
                times.append((time.process_time() - start) * 1000)
            lines = counter.count / args.repeats
            print(
                f"{name:46s} median {statistics.median(times):9.3f}  "
                f"min {min(times):9.3f}  max {max(times):9.3f}  log lines {lines:8.0f}"
            )


if __name__ == "__main__":
    main()
