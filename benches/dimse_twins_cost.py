"""Cost per call of the command codec and the Upper Layer reader, pure Python against compiled.

What one small C-STORE costs in the pieces the compiled twins replace: decoding its
command set, encoding its C-STORE-RSP, and reading its two P-DATA-TF PDUs (command and
data set, in one read as storescu sends them) through the Connection and the assembler::

    python benches/dimse_twins_cost.py --repeat 5

Wall clock on a shared machine: compare the two columns of one run, not runs.
"""

from __future__ import annotations

import argparse
import importlib
import struct
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests/

from oxidicom.dimse import assembler as assembler_module
from oxidicom.dimse import commands
from oxidicom.dimse.assembler import MessageAssembler
from oxidicom.ul import connection
from tests.ul import _helpers

MR = "1.2.840.10008.5.1.4.1.1.4"
UID = "1.2.826.0.1.3680043.8.498.12345678901234567890123456789"
_PDU = struct.Struct(">BxI")
_PDV = struct.Struct(">IBB")


def _pdata(is_command: bool, data: bytes) -> bytes:
    pdv = _PDV.pack(len(data) + 2, 1, (1 if is_command else 0) | 2) + data
    return _PDU.pack(4, len(pdv)) + pdv


def _cases(kind: str) -> dict[str, Callable[[], object]]:
    if kind == "python":
        decode, encode = commands.decode_command_py, commands.encode_response_py
        conn_class: type = connection.ConnectionPy
    else:
        codec = importlib.import_module("oxidicom.dimse._commands_c")
        decode, encode = codec.decode_command, codec.encode_response
        conn_class = importlib.import_module("oxidicom.ul._connection_c").Connection
    command = commands.encode_request(
        1, 9, affected_sop_class_uid=MR, affected_sop_instance_uid=UID, has_dataset=True
    )
    read = _pdata(True, command) + _pdata(False, bytes(9000))
    _helpers.Connection = conn_class  # type: ignore[attr-defined]
    conn = _helpers.new_sta6()
    assembler = MessageAssembler()

    def reader() -> None:
        assembler_module.decode_command = decode  # type: ignore[attr-defined]
        conn.receive_data(read, 1.0)
        next_event = conn.next_event
        while (event := next_event()) is not None:
            assembler.feed(event)

    return {
        "decode_command": lambda: decode(command),
        "encode_response (C-STORE-RSP)": lambda: encode(
            0x8001, 9, 0, affected_sop_class_uid=MR, affected_sop_instance_uid=UID
        ),
        "reader + assembler, one instance": reader,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--number", type=int, default=20000)
    args = parser.parse_args()
    kinds = ("python", "compiled")
    cases = {kind: _cases(kind) for kind in kinds}
    print(f"{'µs per call (best of ' + str(args.repeat) + ')':40} {'python':>8} {'compiled':>9}")
    for name in cases["python"]:
        best = {
            kind: min(timeit.repeat(cases[kind][name], number=args.number, repeat=args.repeat))
            / args.number
            * 1e6
            for kind in kinds
        }
        print(f"{name:40} {best['python']:8.2f} {best['compiled']:9.2f}")


if __name__ == "__main__":
    main()
