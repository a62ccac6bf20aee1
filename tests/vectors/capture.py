"""Record golden Upper Layer PDUs from real DICOM peers through a recording TCP proxy.

Re-run (needs dcmtk at /usr/bin and pynetdicom in the virtual environment; takes a
few seconds; overwrites the ``*.hex`` files of every scenario directory)::

    .venv/bin/python -m tests.vectors.capture            # every scenario
    .venv/bin/python -m tests.vectors.capture dcmtk_echoscu  # one scenario

Each scenario starts a server (dcmtk ``storescp`` or a pynetdicom SCP) on a free
port, puts :class:`RecordingProxy` in front of it, and runs a client (dcmtk
``echoscu``/``storescu`` or a pynetdicom SCU) against the proxy. The proxy relays
both directions untouched and records every chunk. Each direction's byte stream is
then split into PDUs by their 6-byte headers (type, reserved, uint32 BE length) and
each PDU is written to ``tests/vectors/<scenario>/NN-<dir>-<PDU>.hex``: ``NN`` is the
PDU's position in the conversation, ``<dir>`` is ``rq`` for requestor -> acceptor
(client to server) and ``ac`` for acceptor -> requestor. Files are annotated hex:
``#`` lines give the source and name every field by byte offset (the annotation is
made here with ``struct``, independently of ``oxidicom.ul``); the other lines are
the PDU's bytes in hex, 16 a line.

Re-capturing changes the UIDs that peers invent (SOP instance, ...), so tests that
assert such values must be updated with the vectors.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shlex
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.sample_data import sample_data_dir

HERE = Path(__file__).resolve().parent
SAG = (sample_data_dir() or Path("/work/shared/data")) / "SAG-anon"
SAG_FILE = SAG / "0001-1.3.12.2.1107.5.2.19.45152.2013030808110258929186035.dcm"
HOST = "127.0.0.1"

PDU_NAMES = {
    1: "A-ASSOCIATE-RQ",
    2: "A-ASSOCIATE-AC",
    3: "A-ASSOCIATE-RJ",
    4: "P-DATA-TF",
    5: "A-RELEASE-RQ",
    6: "A-RELEASE-RP",
    7: "A-ABORT",
}
ITEM_NAMES = {
    0x10: "Application Context",
    0x20: "Presentation Context (RQ)",
    0x21: "Presentation Context (AC)",
    0x30: "Abstract Syntax",
    0x40: "Transfer Syntax",
    0x50: "User Information",
    0x51: "Maximum Length",
    0x52: "Implementation Class UID",
    0x53: "Asynchronous Operations Window",
    0x54: "SCP/SCU Role Selection",
    0x55: "Implementation Version Name",
    0x56: "SOP Class Extended Negotiation",
    0x57: "SOP Class Common Extended Negotiation",
    0x58: "User Identity (RQ)",
    0x59: "User Identity (AC)",
}


# ---------------------------------------------------------------------------------------
# Recording proxy


@dataclasses.dataclass
class Recording:
    """Chunks in arrival order: (direction, bytes); direction is "rq" or "ac"."""

    chunks: list[tuple[str, bytes]] = dataclasses.field(default_factory=list)

    def stream(self, direction: str) -> bytes:
        return b"".join(data for d, data in self.chunks if d == direction)


class RecordingProxy:
    """Accepts one connection, connects upstream, relays and records both directions."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.recording = Recording()
        self.done = asyncio.Event()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, HOST, 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: str
    ) -> None:
        try:
            while data := await reader.read(65536):
                self.recording.chunks.append((direction, data))
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()

    async def _handle(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        u_reader, u_writer = await asyncio.open_connection(HOST, self.upstream_port)
        await asyncio.gather(
            self._pump(c_reader, u_writer, "rq"), self._pump(u_reader, c_writer, "ac")
        )
        for w in (c_writer, u_writer):
            w.close()
            with contextlib.suppress(OSError):
                await w.wait_closed()
        self.done.set()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


def split_pdus(stream: bytes) -> list[bytes]:
    """Cut a byte stream at PDU boundaries (6-byte header, uint32 BE length)."""
    pdus, offset = [], 0
    while offset + 6 <= len(stream):
        (length,) = struct.unpack_from(">I", stream, offset + 2)
        end = offset + 6 + length
        if end > len(stream):
            break
        pdus.append(stream[offset:end])
        offset = end
    if offset != len(stream):
        raise ValueError(f"{len(stream) - offset} trailing bytes do not form a whole PDU")
    return pdus


def ordered_pdus(recording: Recording) -> list[tuple[str, bytes]]:
    """Both directions' PDUs, ordered by the chunk that completed each one."""
    done: list[tuple[int, int, str, bytes]] = []
    for direction in ("rq", "ac"):
        ends, total = [], 0
        for index, (d, data) in enumerate(recording.chunks):
            if d == direction:
                total += len(data)
                ends.append((total, index))
        position = 0
        for n, pdu in enumerate(split_pdus(recording.stream(direction))):
            position += len(pdu)
            chunk_index = next(i for total, i in ends if total >= position)
            done.append((chunk_index, n, direction, pdu))
    done.sort(key=lambda item: (item[0], item[1]))
    return [(direction, pdu) for _, _, direction, pdu in done]


# ---------------------------------------------------------------------------------------
# Annotation (independent of oxidicom.ul: plain struct)

Segment = tuple[int, int, str]  # (offset, length, description)


def _txt(raw: bytes) -> str:
    return repr(raw.decode("latin-1"))


def _annotate_user_info(pdu: bytes, start: int, end: int) -> list[Segment]:
    out: list[Segment] = []
    offset = start
    while offset + 4 <= end:
        item_type, length = struct.unpack_from(">BxH", pdu, offset)
        name = ITEM_NAMES.get(item_type, "unknown sub-item")
        out.append((offset, 4, f"sub-item {item_type:02X}H {name}, reserved, length {length}"))
        v = offset + 4
        value = pdu[v : v + length]
        if item_type == 0x51 and length == 4:
            out.append((v, 4, f"maximum length received: {struct.unpack('>I', value)[0]}"))
        elif item_type in (0x52, 0x55):
            out.append((v, length, f"value: {_txt(value)}"))
        elif item_type == 0x53 and length == 4:
            invoked, performed = struct.unpack(">HH", value)
            out.append((v, 2, f"max operations invoked: {invoked}"))
            out.append((v + 2, 2, f"max operations performed: {performed}"))
        elif item_type in (0x54, 0x56, 0x57) and length >= 2:
            (uid_len,) = struct.unpack_from(">H", value)
            uid = value[2 : 2 + uid_len]
            out.append((v, 2, f"SOP class UID length: {uid_len}"))
            out.append((v + 2, uid_len, f"SOP class UID: {_txt(uid)}"))
            rest = v + 2 + uid_len
            if item_type == 0x54:
                out.append((rest, 1, f"SCU role: {pdu[rest]}"))
                out.append((rest + 1, 1, f"SCP role: {pdu[rest + 1]}"))
            elif item_type == 0x56:
                out.append((rest, v + length - rest, "service class application information"))
            else:
                (svc_len,) = struct.unpack_from(">H", pdu, rest)
                out.append((rest, 2, f"service class UID length: {svc_len}"))
                svc = pdu[rest + 2 : rest + 2 + svc_len]
                out.append((rest + 2, svc_len, f"service class UID: {_txt(svc)}"))
                rel = rest + 2 + svc_len
                (rel_len,) = struct.unpack_from(">H", pdu, rel)
                out.append((rel, 2, f"related general SOP class identification length: {rel_len}"))
                p = rel + 2
                while p < rel + 2 + rel_len:
                    (n,) = struct.unpack_from(">H", pdu, p)
                    out.append((p, 2, f"related general SOP class UID length: {n}"))
                    uid = _txt(pdu[p + 2 : p + 2 + n])
                    out.append((p + 2, n, f"related general SOP class UID: {uid}"))
                    p += 2 + n
        elif item_type == 0x58 and length >= 6:
            out.append((v, 1, f"user identity type: {value[0]}"))
            out.append((v + 1, 1, f"positive response requested: {value[1]}"))
            (n1,) = struct.unpack_from(">H", value, 2)
            out.append((v + 2, 2, f"primary field length: {n1}"))
            out.append((v + 4, n1, f"primary field: {value[4 : 4 + n1]!r}"))
            (n2,) = struct.unpack_from(">H", value, 4 + n1)
            out.append((v + 4 + n1, 2, f"secondary field length: {n2}"))
            out.append((v + 6 + n1, n2, f"secondary field: {value[6 + n1 : 6 + n1 + n2]!r}"))
        elif item_type == 0x59 and length >= 2:
            (n,) = struct.unpack_from(">H", value)
            out.append((v, 2, f"server response length: {n}"))
            out.append((v + 2, n, f"server response: {value[2 : 2 + n]!r}"))
        else:
            out.append((v, length, "value"))
        offset = v + length
    return out


def _annotate_associate(pdu: bytes) -> list[Segment]:
    out: list[Segment] = [
        (6, 2, f"protocol version: {struct.unpack_from('>H', pdu, 6)[0]:#06x}"),
        (8, 2, "reserved"),
        (10, 16, f"called AE title: {_txt(pdu[10:26])}"),
        (26, 16, f"calling AE title: {_txt(pdu[26:42])}"),
        (42, 32, "reserved"),
    ]
    offset = 74
    while offset + 4 <= len(pdu):
        item_type, length = struct.unpack_from(">BxH", pdu, offset)
        v, end = offset + 4, offset + 4 + length
        name = ITEM_NAMES.get(item_type, "unknown item")
        out.append((offset, 4, f"item {item_type:02X}H {name}, reserved, length {length}"))
        if item_type == 0x10:
            out.append((v, length, f"application context name: {_txt(pdu[v:end])}"))
        elif item_type in (0x20, 0x21):
            out.append((v, 1, f"presentation context ID: {pdu[v]}"))
            out.append((v + 1, 1, "reserved"))
            label = "result/reason" if item_type == 0x21 else "reserved"
            out.append((v + 2, 1, f"{label}: {pdu[v + 2]}"))
            out.append((v + 3, 1, "reserved"))
            p = v + 4
            while p + 4 <= end:
                sub_type, sub_len = struct.unpack_from(">BxH", pdu, p)
                sub_name = ITEM_NAMES.get(sub_type, "unknown sub-item")
                head = f"sub-item {sub_type:02X}H {sub_name}, reserved, length {sub_len}"
                out.append((p, 4, head))
                out.append((p + 4, sub_len, f"UID: {_txt(pdu[p + 4 : p + 4 + sub_len])}"))
                p += 4 + sub_len
        elif item_type == 0x50:
            out.extend(_annotate_user_info(pdu, v, end))
        else:
            out.append((v, length, "value"))
        offset = end
    return out


def _annotate_command(pdu: bytes, start: int, end: int) -> list[Segment]:
    """Group 0000 elements, implicit VR little endian."""
    out: list[Segment] = []
    offset = start
    while offset + 8 <= end:
        group, element, length = struct.unpack_from("<HHI", pdu, offset)
        value = pdu[offset + 8 : offset + 8 + length]
        if length in (2, 4) and element not in (0x0002, 0x0003, 0x1000, 0x1001, 0x1030):
            shown = str(int.from_bytes(value, "little"))
            shown += f" ({int.from_bytes(value, 'little'):#06x})"
        else:
            shown = _txt(value)
        out.append((offset, 8, f"command element ({group:04X},{element:04X}), length {length}"))
        out.append((offset + 8, length, f"value: {shown}"))
        offset += 8 + length
    if offset < end:
        out.append((offset, end - offset, "command fragment continues in next PDV"))
    return out


def _annotate_pdata(pdu: bytes) -> list[Segment]:
    out: list[Segment] = []
    offset = 6
    while offset + 6 <= len(pdu):
        length, context_id, control = struct.unpack_from(">IBB", pdu, offset)
        out.append((offset, 4, f"PDV item length: {length}"))
        out.append((offset + 4, 1, f"presentation context ID: {context_id}"))
        kind = "command" if control & 1 else "data set"
        last = "last fragment" if control & 2 else "not last fragment"
        out.append((offset + 5, 1, f"message control header: {control:#04x} ({kind}, {last})"))
        start, end = offset + 6, offset + 4 + length
        if control & 1:
            out.extend(_annotate_command(pdu, start, end))
        else:
            out.append((start, end - start, f"data set fragment, {end - start} bytes"))
        offset = end
    return out


def annotate(pdu: bytes) -> list[Segment]:
    pdu_type = pdu[0]
    out: list[Segment] = [
        (0, 1, f"PDU type: {pdu_type:02X}H {PDU_NAMES.get(pdu_type, 'unknown')}"),
        (1, 1, "reserved"),
        (2, 4, f"PDU length: {struct.unpack_from('>I', pdu, 2)[0]}"),
    ]
    if pdu_type in (1, 2):
        out += _annotate_associate(pdu)
    elif pdu_type == 4:
        out += _annotate_pdata(pdu)
    elif pdu_type == 3:
        out += [
            (6, 1, "reserved"),
            (7, 1, f"result: {pdu[7]}"),
            (8, 1, f"source: {pdu[8]}"),
            (9, 1, f"reason/diag: {pdu[9]}"),
        ]
    elif pdu_type == 7:
        out += [
            (6, 2, "reserved"),
            (8, 1, f"source: {pdu[8]}"),
            (9, 1, f"reason/diag: {pdu[9]}"),
        ]
    else:
        out += [(6, len(pdu) - 6, "reserved")]
    # Whatever the walk above did not cover is shown as such, so no byte is lost.
    covered, filled = 0, []
    for offset, length, text in sorted(out):
        if offset > covered:
            filled.append((covered, offset - covered, "(not annotated)"))
        filled.append((offset, length, text))
        covered = max(covered, offset + length)
    if covered < len(pdu):
        filled.append((covered, len(pdu) - covered, "(not annotated)"))
    return filled


def render(pdu: bytes, header: list[str]) -> str:
    lines = [f"# {line}" if line else "#" for line in header]
    for offset, length, text in annotate(pdu):
        lines.append(f"# @{offset} ({offset:#06x}), {length} byte(s): {text}")
        chunk = pdu[offset : offset + length]
        for i in range(0, len(chunk), 16):
            lines.append(" ".join(f"{b:02x}" for b in chunk[i : i + 16]))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------
# Peers


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def dcmtk_version(tool: str) -> str:
    out = subprocess.run([tool, "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0].strip("$ ").removeprefix("dcmtk: ")


@contextlib.contextmanager
def storescp(*args: str) -> Iterator[tuple[int, str]]:
    port = free_port()
    out = tempfile.mkdtemp(prefix="capture-storescp-")
    cmd = ["/usr/bin/storescp", "-aet", "STORESCP", "-od", out, "--ignore", *args, str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # storescp accepts one probe connection and logs an error for it; harmless.
        wait_listening(port)
        shown = " ".join([*cmd[:-1], "<port>"]).replace(out, "<tmp>")
        yield port, f"{dcmtk_version('/usr/bin/storescp')}: {shown}"
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(out, ignore_errors=True)


SC_STORAGE = "1.2.840.10008.5.1.4.1.1.7"
VERIFICATION = "1.2.840.10008.1.1"
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
#: An unsigned JSON Web Token ({"alg":"none"} / {"sub":"alice"}) for --jwt.
JWT = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9."


@contextlib.contextmanager
def pynetdicom_scp() -> Iterator[tuple[int, str]]:
    """A pynetdicom SCP answering role selection, user identity, async ops and 56H."""
    import pynetdicom
    from pynetdicom import AE, evt

    ae = AE(ae_title="PYNETSCP")
    ae.add_supported_context(VERIFICATION)
    ae.add_supported_context(SC_STORAGE, scu_role=True, scp_role=True)
    ae.add_supported_context(
        "1.2.840.10008.5.1.4.1.1.4",
        ["1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"],
    )
    handlers = [
        (evt.EVT_C_ECHO, lambda event: 0x0000),
        (evt.EVT_C_STORE, lambda event: 0x0000),
        (evt.EVT_USER_ID, lambda event: (True, b"welcome-token")),
        (evt.EVT_ASYNC_OPS, lambda event: (1, 1)),
        # Answer only the SOP classes the requestor asked about, with one flag byte pair.
        (evt.EVT_SOP_EXTENDED, lambda event: {uid: b"\x01\x00" for uid in event.app_info}),
        (evt.EVT_SOP_COMMON, lambda event: event.items),
    ]
    port = free_port()
    server = ae.start_server((HOST, port), block=False, evt_handlers=handlers)
    try:
        label = f"pynetdicom {pynetdicom.__version__} SCP (AE PYNETSCP; see pynetdicom_scp())"
        yield port, label
    finally:
        server.shutdown()


def tiny_dataset() -> object:
    from pydicom.dataset import Dataset
    from pydicom.uid import ExplicitVRLittleEndian

    ds = Dataset()
    ds.SOPClassUID = SC_STORAGE
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.PatientName = "Golden^Vector"
    ds.PatientID = "GV-1"
    ds.Modality = "OT"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.2"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.3"
    ds.InstanceNumber = 1
    ds.file_meta = Dataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def run_pynetdicom_scu(port: int, called: str, to_dcmtk: bool) -> None:
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
    from pynetdicom import AE
    from pynetdicom.pdu_primitives import (
        AsynchronousOperationsWindowNegotiation,
        SCP_SCU_RoleSelectionNegotiation,
        SOPClassCommonExtendedNegotiation,
        SOPClassExtendedNegotiation,
        UserIdentityNegotiation,
    )

    ae = AE(ae_title="PYNETSCU")
    ae.add_requested_context(VERIFICATION)
    ae.add_requested_context(SC_STORAGE, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    role = SCP_SCU_RoleSelectionNegotiation()
    role.sop_class_uid = SC_STORAGE
    role.scu_role = True
    role.scp_role = True
    ident = UserIdentityNegotiation()
    ident.user_identity_type = 2
    ident.primary_field = b"alice"
    ident.secondary_field = b"s3cret"
    ident.positive_response_requested = True
    ext_neg: list[object] = [role, ident]
    if not to_dcmtk:
        window = AsynchronousOperationsWindowNegotiation()
        window.maximum_number_operations_invoked = 5
        window.maximum_number_operations_performed = 3
        ext = SOPClassExtendedNegotiation()
        ext.sop_class_uid = SC_STORAGE
        ext.service_class_application_information = b"\x02\x00\x01\x00"
        common = SOPClassCommonExtendedNegotiation()
        common.sop_class_uid = COMPREHENSIVE_SR
        common.service_class_uid = "1.2.840.10008.4.2"
        common.related_general_sop_class_identification = [
            "1.2.840.10008.5.1.4.1.1.88.22",
            "1.2.840.10008.5.1.4.1.1.88.11",
        ]
        ext_neg += [window, ext, common]
    assoc = ae.associate(HOST, port, ae_title=called, ext_neg=ext_neg)
    if not assoc.is_established:
        raise RuntimeError("pynetdicom SCU: association not established")
    assoc.send_c_echo()
    assoc.send_c_store(tiny_dataset())
    assoc.release()


# ---------------------------------------------------------------------------------------
# Scenarios


@dataclasses.dataclass
class Scenario:
    name: str
    what: str
    server: Callable[[], contextlib.AbstractContextManager[tuple[int, str]]]
    #: argv with "<port>" for the proxy's port, or a function run in a thread.
    client: list[str] | Callable[[int], None]
    client_label: str = ""
    #: Which PDUs (0-based positions in the conversation) to write; None keeps all.
    keep: Callable[[list[tuple[str, bytes]]], set[int]] | None = None
    note: str = ""


def _is_data(direction: str, pdu: bytes) -> bool:
    """A requestor's P-DATA-TF whose first PDV carries data set bytes (not a command)."""
    return direction == "rq" and pdu[0] == 4 and not pdu[11] & 1


def keep_first_and_last_data(pdus: list[tuple[str, bytes]]) -> set[int]:
    """Every PDU but the middle data set P-DATA-TFs of the C-STORE."""
    data = [i for i, (d, p) in enumerate(pdus) if _is_data(d, p)]
    return {i for i in range(len(pdus)) if i not in data or i in (data[0], data[-1])}


def keep_last_data(pdus: list[tuple[str, bytes]]) -> set[int]:
    """Every PDU but the data set P-DATA-TFs before the last one."""
    data = [i for i, (d, p) in enumerate(pdus) if _is_data(d, p)]
    return {i for i in range(len(pdus)) if i not in data or i == data[-1]}


def keep_no_pdata(pdus: list[tuple[str, bytes]]) -> set[int]:
    return {i for i, (_, p) in enumerate(pdus) if p[0] != 4}


def _echoscu(*args: str) -> list[str]:
    return ["/usr/bin/echoscu", "-aet", "ECHOSCU", "-aec", "STORESCP", *args, HOST, "<port>"]


def _storescu(options: str) -> list[str]:
    return [
        "/usr/bin/storescu",
        "-aet",
        "STORESCU",
        *shlex.split(options),
        HOST,
        "<port>",
        str(SAG_FILE),
    ]


SCENARIOS = [
    Scenario(
        "dcmtk_echoscu",
        "C-ECHO then release",
        lambda: storescp(),
        _echoscu(),
    ),
    Scenario(
        "dcmtk_echoscu_abort",
        "C-ECHO then A-ABORT instead of release",
        lambda: storescp(),
        _echoscu("--abort"),
    ),
    Scenario(
        "dcmtk_storescp_refuse",
        "storescp --refuse answers with A-ASSOCIATE-RJ",
        lambda: storescp("--refuse"),
        _echoscu(),
    ),
    Scenario(
        "dcmtk_storescu",
        "C-STORE of one SAG-anon MR image, default (all storage SOP classes) proposal",
        lambda: storescp(),
        _storescu("-aec STORESCP"),
        keep=keep_first_and_last_data,
        note=(
            "Only the command P-DATA-TF and the first and last data set P-DATA-TFs are kept;"
            " the middle data PDUs were dropped to keep the vectors small, so the kept rq"
            " PDUs still form a valid Upper Layer stream (the last one ends the data set)."
        ),
    ),
    Scenario(
        "dcmtk_storescu_xb_user",
        "explicit big endian first (-xb), only required contexts (-R), user identity"
        " username+password (no positive response requested; pynetdicom answers 59H"
        " only for identity types 3-5), against a pynetdicom SCP",
        pynetdicom_scp,
        _storescu("-aec PYNETSCP -xb -R -usr alice -pwd s3cret"),
        keep=keep_last_data,
        note="Only the command P-DATA-TF and the last data set P-DATA-TF are kept.",
    ),
    Scenario(
        "dcmtk_storescu_jwt",
        "user identity JWT (type 5) with positive response requested, against a pynetdicom"
        " SCP that answers with a 59H server response; C-ECHO and release",
        pynetdicom_scp,
        _storescu("-aec PYNETSCP -R -xi --jwt <jwt> -rsp"),
        keep=keep_no_pdata,
        note="storescu is used for its --jwt option; every P-DATA-TF was dropped, only the"
        " association and release PDUs are kept. <jwt> is a file holding " + repr(JWT),
    ),
    Scenario(
        "pynetdicom_scu_extneg",
        "pynetdicom SCU proposing 51H-58H sub-items (role selection, user identity,"
        " async window, extended and common extended negotiation); C-ECHO and a small"
        " C-STORE, against a pynetdicom SCP answering 53H, 54H, 56H and 59H",
        pynetdicom_scp,
        lambda port: run_pynetdicom_scu(port, "PYNETSCP", to_dcmtk=False),
        "pynetdicom SCU: run_pynetdicom_scu(to_dcmtk=False) in tests/vectors/capture.py",
    ),
    Scenario(
        "pynetdicom_scu_to_storescp",
        "pynetdicom SCU with role selection and user identity against dcmtk storescp;"
        " C-ECHO and a small C-STORE",
        lambda: storescp(),
        lambda port: run_pynetdicom_scu(port, "STORESCP", to_dcmtk=True),
        "pynetdicom SCU: run_pynetdicom_scu(to_dcmtk=True) in tests/vectors/capture.py",
    ),
]


async def record(scenario: Scenario, upstream: int) -> Recording:
    proxy = RecordingProxy(upstream)
    port = await proxy.start()
    try:
        if callable(scenario.client):
            await asyncio.to_thread(scenario.client, port)
        else:
            tmp = Path(tempfile.mkdtemp(prefix="capture-jwt-"))
            (tmp / "token.jwt").write_text(JWT)
            placeholders = {"<port>": str(port), "<jwt>": str(tmp / "token.jwt")}
            argv = [placeholders.get(a, a) for a in scenario.client]
            proc = await asyncio.create_subprocess_exec(
                *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
            )
            _, err = await proc.communicate()
            shutil.rmtree(tmp, ignore_errors=True)
            if proc.returncode and "refuse" not in scenario.name:
                print(err.decode(errors="replace"), file=sys.stderr)
        await asyncio.wait_for(proxy.done.wait(), 10)
    finally:
        await proxy.close()
    return proxy.recording


def capture(scenario: Scenario) -> list[Path]:
    with scenario.server() as (upstream, server_label):
        recording = asyncio.run(record(scenario, upstream))
    pdus = ordered_pdus(recording)
    keep = scenario.keep(pdus) if scenario.keep else set(range(len(pdus)))
    if callable(scenario.client):
        client_label = scenario.client_label
    else:
        client_label = f"{dcmtk_version(scenario.client[0])}: {' '.join(scenario.client)}"
    directory = HERE / scenario.name
    directory.mkdir(exist_ok=True)
    for old in directory.glob("*.hex"):
        old.unlink()
    written = []
    for index, (direction, pdu) in enumerate(pdus, start=1):
        if index - 1 not in keep:
            continue
        name = PDU_NAMES.get(pdu[0], f"type-{pdu[0]:02x}")
        path = directory / f"{index:02d}-{direction}-{name}.hex"
        sender = "requestor (client) -> acceptor" if direction == "rq" else "acceptor -> requestor"
        header = [
            f"{name}, PDU {index} of {len(pdus)} in scenario {scenario.name!r}: {sender}",
            f"scenario: {scenario.what}",
            f"client: {client_label}",
            f"server: {server_label}",
            "captured through the recording proxy of tests/vectors/capture.py"
            f" (python -m tests.vectors.capture {scenario.name})",
        ]
        if scenario.note:
            header.append(f"note: {scenario.note}")
        header.append("")
        path.write_text(render(pdu, header))
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    chosen = [s for s in SCENARIOS if not argv or s.name in argv]
    os.environ.setdefault("TCP_NODELAY", "1")
    for scenario in chosen:
        for path in capture(scenario):
            print(path.relative_to(HERE.parent.parent), path.stat().st_size)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
