"""Fuzz targets for the protocol core, importable without atheris.

Each target takes one byte string and either returns or raises ``AssertionError``
(an invariant broke) or any other exception (a bug: the parsers may only raise their
own error types, which the callers turn into an A-ABORT or a C-STORE failure).
``fuzz_pdu.py`` and ``fuzz_head.py`` hand them to atheris; ``test_fuzz_seeds.py``
replays the seeds and every saved crash as a regression test.

The first bytes of an input choose how the rest is used (mode, transfer syntax, chunk
size), so that the fuzzer can reach every path from one flat byte string.
"""

from __future__ import annotations

import importlib
import itertools
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from oxidicom.dicom.errors import DatasetError
from oxidicom.dicom.head import HeadFields, HeadParser, parse_head
from oxidicom.dicom.uids import TRANSFER_SYNTAXES
from oxidicom.dimse import assembler as assembler_module
from oxidicom.dimse import commands
from oxidicom.dimse.assembler import CommandReceived, MessageAssembler
from oxidicom.dimse.commands import (
    Command,
    CommandError,
    decode_response_status,
    encode_response,
)
from oxidicom.scp.acceptance import AcceptancePolicy, Accepted, negotiate
from oxidicom.storage.layout import MAX_COMPONENT, check_required, instance_file_name, series_dir
from oxidicom.ul import pdu as ul
from oxidicom.ul.connection import Connection, ConnectionPy
from oxidicom.ul.errors import ULProtocolError
from oxidicom.ul.events import (
    AbortSent,
    AssociationRequested,
    ConnectionClosed,
    DataFragment,
    ReleaseRequested,
)
from oxidicom.ul.fsm import State

#: Transfer syntaxes in a fixed order: the head target's first byte picks one.
HEAD_TRANSFER_SYNTAXES = sorted(TRANSFER_SYNTAXES)
_POLICY = AcceptancePolicy(ae_title="FUZZ", max_pdu_length=16384, promiscuous=True)
_PDU_MODES = 4


def _chunks(payload: bytes, selector: int) -> Iterator[bytes]:
    """``payload`` whole (selector 0) or in pieces of ``selector`` bytes."""
    if selector == 0 or not payload:
        yield payload
        return
    for start in range(0, len(payload), selector):
        yield payload[start : start + selector]


# -- the PDU reader -----------------------------------------------------------------------


def _associate(conn: ConnectionPy) -> None:
    """A real A-ASSOCIATE-RQ/AC exchange on ``conn`` (either twin), as the receiver runs it."""
    conn.receive_data(_ASSOCIATE_RQ, 0.0)
    event = conn.next_event()
    assert isinstance(event, AssociationRequested)
    answer = negotiate(event.request, _POLICY)
    assert isinstance(answer, Accepted)
    conn.accept(answer.response)
    conn.data_to_send()


def _established(strict: bool) -> Connection:
    """Sta6 after a real A-ASSOCIATE-RQ/AC exchange, as the receiver runs it."""
    conn = Connection(max_pdu_length=4096, strict=strict, pdu_hard_cap=65536)
    _associate(conn)
    assert conn.state is State.STA6
    return conn


def _drive(conn: Connection, pieces: Iterator[bytes], eof: bool) -> None:
    """The receiver's service loop in miniature: accept, assemble DIMSE, abort on error."""
    assembler = MessageAssembler()
    aborts = closes = 0
    sent = bytearray()
    clock = 1.0
    for piece in itertools.chain(pieces, [None]):
        if piece is None:
            if not eof:
                break
            conn.receive_eof()
        else:
            clock += 0.001
            conn.receive_data(piece, clock)
        while (event := conn.next_event()) is not None:
            if isinstance(event, AssociationRequested):
                answer = negotiate(event.request, _POLICY)
                if isinstance(answer, Accepted):
                    conn.accept(answer.response)
                else:
                    conn.reject(answer)
            elif isinstance(event, DataFragment):
                assert conn.state is State.STA6, conn.state
                try:
                    item = assembler.feed(event)
                except CommandError:
                    conn.abort()
                else:
                    assert item is None or isinstance(item, CommandReceived | DataFragment)
                    if isinstance(item, CommandReceived):
                        _answer(item)
            elif isinstance(event, ReleaseRequested):
                conn.release()
            elif isinstance(event, AbortSent):
                aborts += 1
            elif isinstance(event, ConnectionClosed):
                closes += 1
            sent += conn.data_to_send()
        sent += conn.data_to_send()
    assert aborts <= 1, "more than one A-ABORT"
    assert closes <= 1, "ConnectionClosed twice"
    if eof:
        assert conn.state is State.STA1, conn.state
        assert closes == 1
    # Everything we sent must itself parse: we never emit a malformed PDU.
    offset = 0
    while offset < len(sent):
        (length,) = struct.unpack_from(">I", sent, offset + 2)
        ul.parse_pdu(bytes(sent[offset : offset + 6 + length]))
        offset += 6 + length


def _answer(received: CommandReceived) -> None:
    """Encode the responses the Association would send; they must decode again."""
    command = received.command
    field = (command.command_field | 0x8000) & 0xFFFF
    for status, comment in ((0x0000, None), (0xA700, "cannot store the file: \u00e9\x00")):
        response = encode_response(
            field,
            command.message_id,
            status,
            affected_sop_class_uid=command.affected_sop_class_uid
            or command.requested_sop_class_uid,
            affected_sop_instance_uid=command.affected_sop_instance_uid,
            error_comment=comment,
        )
        assert decode_response_status(response) == (field, command.message_id, status)


def pdu_input(data: bytes) -> None:
    """Byte 0: mode; byte 1: chunk size (0 = whole); the rest: what the peer sends.

    Modes: 0 ``parse_pdu`` (and re-encoding what parsed), 1 a new connection (Sta2),
    2 an established association (Sta6), 3 the same in strict mode.
    """
    if len(data) < 2:
        return
    mode, selector, payload = data[0] % _PDU_MODES, data[1], data[2:]
    if mode == 0:
        try:
            pdu = ul.parse_pdu(payload)
        except ULProtocolError:
            return
        # What we parsed encodes and parses back to itself.
        assert ul.parse_pdu(ul.encode(pdu)) == pdu
        return
    if mode == 1:
        conn = Connection(max_pdu_length=4096, pdu_hard_cap=65536)
    else:
        conn = _established(strict=mode == 3)
    _drive(conn, _chunks(payload, selector), eof=bool(selector & 1))


# -- the data set head parser -------------------------------------------------------------


def _outcome(parse: Callable[[], HeadFields]) -> HeadFields | str:
    """The fields, or the error's type and comment (errors do not compare equal)."""
    try:
        return parse()
    except DatasetError as error:
        return f"{type(error).__name__}: {error.comment}"


def _inflate_error(outcome: HeadFields | str) -> bool:
    return isinstance(outcome, str) and "does not inflate" in outcome


def head_input(data: bytes) -> None:
    """Byte 0: transfer syntax; byte 1: chunk size (0 = whole); the rest: the data set.

    Fed in chunks it must give what it gives whole; what it gives must be fields or a
    :class:`DatasetError`; fields that pass the required checks make a CUBE path whose
    every component is one safe name.
    """
    if len(data) < 2:
        return
    ts = HEAD_TRANSFER_SYNTAXES[data[0] % len(HEAD_TRANSFER_SYNTAXES)]
    selector, payload = data[1], data[2:]
    parser = HeadParser(ts)
    for piece in _chunks(payload, selector):
        if parser.feed(piece):
            break
    chunked = _outcome(parser.finish)
    whole = _outcome(lambda: parse_head(ts, payload))
    # A corrupt deflate stream is the one input where chunking may matter: zlib raises
    # without the output before the fault, so fed whole the parser sees none of it,
    # while in chunks it may have finished the head before reaching the fault.
    if not (_inflate_error(whole) or _inflate_error(chunked)):
        assert whole == chunked, (whole, chunked)
    if not isinstance(chunked, HeadFields):
        return
    fields = chunked
    try:
        check_required(fields)
    except DatasetError:
        return
    for pacs in ("PACS", "..", ".", "a/b", "\x00"):
        relative = f"{series_dir(pacs, fields)}/{instance_file_name(fields)}"
        parts = relative.split("/")
        assert parts[:2] == ["SERVICES", "PACS"], relative
        assert len(parts) == 7, relative
        for part in parts:
            assert part not in ("", ".", ".."), relative
            assert "\x00" not in part, relative
            assert len(part.encode()) <= MAX_COMPONENT, relative


# -- the head parser's two twins, compiled and pure Python (issue 21) --------------------
#
# A block of its own (the command-set and PDU twins have theirs): the compiled walk of
# oxidicom/dicom/_head_c.pyx against its reference, on the same bytes cut the same way.

#: Bytes before the data set in a ``head_diff_input``: transfer syntax, first cut (2
#: bytes), size of the pieces, buffer kind and element cap.
HEAD_DIFF_HEADER = 5
#: How the pieces are handed over: as bytes, a bytearray, a memoryview of bytes, or a
#: memoryview of one bytearray that is overwritten after each feed (nothing may keep it).
_BUFFER_KINDS = ("bytes", "bytearray", "memoryview", "reused")


def head_diff_input(data: bytes) -> None:
    """Byte 0: transfer syntax; bytes 1-2: the first cut (big endian, modulo the length
    + 1); byte 3: the size of the pieces after it (0 = the rest whole); byte 4: how the
    pieces are handed over (bits 0-1, ``_BUFFER_KINDS``) and, if bit 7 is set, an
    element cap of bits 2-6 (0-31) instead of MAX_ELEMENTS, so that short inputs reach
    the cap; the rest: the data set.

    Both parsers are fed the same pieces; after every feed its answer and the parser's
    whole state must be the same, and at the end the fields or the error (type and
    comment). Without the compiled parser there is nothing to compare.
    """
    from tests.dicom.head_twins import PYTHON, compiled_twin

    compiled = compiled_twin()
    if compiled is None or len(data) < HEAD_DIFF_HEADER:
        return
    ts = HEAD_TRANSFER_SYNTAXES[data[0] % len(HEAD_TRANSFER_SYNTAXES)]
    payload = data[HEAD_DIFF_HEADER:]
    cut = int.from_bytes(data[1:3], "big") % (len(payload) + 1)
    size = data[3]
    pieces = [payload[:cut]]
    rest = payload[cut:]
    pieces += [rest[i : i + size] for i in range(0, len(rest), size)] if size else [rest]
    kind = _BUFFER_KINDS[data[4] & 3]
    cap = data[4] >> 2 & 0x1F if data[4] & 0x80 else None
    compare_head_twins(PYTHON.HeadParser, compiled.HeadParser, ts, pieces, kind, cap)


def compare_head_twins(
    reference: Callable[[str], HeadParser],
    compiled: Callable[[str], HeadParser],
    ts: str,
    pieces: list[bytes],
    kind: str = "bytes",
    cap: int | None = None,
) -> None:
    """Feed ``pieces`` to a parser of each kind; fail on any difference (see above)."""
    from contextlib import nullcontext
    from unittest.mock import patch

    from oxidicom.dicom import head as head_module

    capped = nullcontext() if cap is None else patch.object(head_module, "MAX_ELEMENTS", cap)
    with capped:
        parsers = (reference(ts), compiled(ts))
        reused = bytearray()
        for piece in pieces:
            answers = []
            for parser in parsers:
                if kind == "reused":
                    reused[:] = piece
                    view = memoryview(reused)
                    answers.append(parser.feed(view))
                    view.release()
                    reused[:] = b"\xa5" * len(reused)
                elif kind == "bytearray":
                    answers.append(parser.feed(bytearray(piece)))
                elif kind == "memoryview":
                    answers.append(parser.feed(memoryview(piece)))
                else:
                    answers.append(parser.feed(piece))
            assert answers[0] == answers[1], answers
            states = [_head_state(parser) for parser in parsers]
            assert states[0] == states[1], states
            if answers[0]:
                break
        outcomes = [_head_outcome(parser) for parser in parsers]
        assert outcomes[0] == outcomes[1], outcomes
        # Asked again, the same (an error or fields, both kept).
        assert [_head_outcome(parser) for parser in parsers] == outcomes


def _head_state(parser: HeadParser) -> tuple[object, ...]:
    """Everything the walk leaves in the parser (its slots), comparable."""
    return (
        parser.done,
        parser.series_instance_uid,
        parser._count,
        parser._want,
        parser._skip,
        parser._skip_tag,
        bytes(parser._buf),
        list(parser._stack),
        list(parser._values),
        parser._inflated,
        None if parser._error is None else _error_text(parser._error),
    )


def _error_text(error: DatasetError) -> str:
    return f"{type(error).__name__} {error.status:04X}: {error.comment}"


def _head_outcome(parser: HeadParser) -> HeadFields | str:
    try:
        return parser.finish()
    except DatasetError as error:
        return _error_text(error)


def head_diff_seeds(data_dir: Path | None = None) -> list[bytes]:
    """The head target's seeds, each whole, cut at a few places, in pieces of 1, 7 and
    13 bytes, in every buffer kind, and some with a cap of 3 elements."""
    seeds = []
    for seed in head_seeds(data_dir):
        ts, payload = seed[0], seed[2:]
        cuts = (0, 9, len(payload) // 2)
        for index, (cut, size, kind) in enumerate(
            itertools.product(cuts, (0, 1, 7, 13), range(len(_BUFFER_KINDS)))
        ):
            if size == 1 and (cut or kind):
                continue  # one byte at a time once per seed is enough
            flags = kind | (0x80 | 3 << 2 if index % 5 == 4 else 0)
            seeds.append(bytes([ts, cut >> 8, cut & 0xFF, size, flags]) + payload)
    return seeds


def head_diff_from_head_input(data: bytes) -> bytes:
    """A ``head_input`` (a seed or a saved crash) as a ``head_diff_input``: the same
    transfer syntax and the same pieces."""
    if len(data) < 2:
        return b""
    return bytes([data[0], 0, 0, data[1], 0]) + data[2:]


# -- seeds --------------------------------------------------------------------------------

_ASSOCIATE_RQ = ul.encode(
    ul.AssociateRQ(
        called_ae_title="FUZZ",
        calling_ae_title="SEEDSCU",
        application_context="1.2.840.10008.3.1.1.1",
        presentation_contexts=(
            ul.PresentationContextRQ(1, "1.2.840.10008.1.1", ("1.2.840.10008.1.2",)),
            ul.PresentationContextRQ(3, "1.2.840.10008.5.1.4.1.1.4", ("1.2.840.10008.1.2",)),
        ),
        user_information=ul.UserInformation(
            maximum_length=16384, implementation_class_uid="1.2.3.4"
        ),
    )
)


def pdu_seeds() -> list[bytes]:
    """Every golden PDU alone (mode 0) and every captured conversation (modes 1-3)."""
    from tests.vectors import all_vectors, load, scenarios

    seeds = [bytes([0, 0]) + v.raw for v in all_vectors()]
    for name in scenarios():
        rq = [v.raw for v in load(name) if v.direction == "rq"]
        whole = b"".join(rq)
        after_rq = b"".join(r for r in rq if r[0] != 0x01)
        seeds += [bytes([1, 0]) + whole, bytes([1, 7]) + whole]
        seeds += [bytes([2, 0]) + after_rq, bytes([3, 64]) + after_rq]
    return seeds


def _dataset_bytes(part10: bytes) -> bytes:
    """The data set of a Part-10 file: after the preamble, DICM and group 0002."""
    (meta_length,) = struct.unpack_from("<I", part10, 140)
    return part10[144 + meta_length :]


def head_seeds(data_dir: Path | None = None, head_bytes: int = 8192) -> list[bytes]:
    """Heads of the shared sample files and of synthetic instances in every encoding."""
    import io

    from pydicom.uid import (
        DeflatedExplicitVRLittleEndian,
        ExplicitVRBigEndian,
        ExplicitVRLittleEndian,
        ImplicitVRLittleEndian,
    )

    from tests.dicom_factory import mr_instance, write_part10

    seeds = []
    if data_dir is not None and data_dir.exists():
        explicit = HEAD_TRANSFER_SYNTAXES.index(ExplicitVRLittleEndian)
        implicit = HEAD_TRANSFER_SYNTAXES.index(ImplicitVRLittleEndian)
        for folder, ts in (("SAG-anon", explicit), ("example-dicom-structural", implicit)):
            for path in sorted((data_dir / folder).rglob("*.dcm"))[:2]:
                head = _dataset_bytes(path.read_bytes())[:head_bytes]
                seeds.append(bytes([ts, 0]) + head)
    for ts in (
        ImplicitVRLittleEndian,
        ExplicitVRLittleEndian,
        ExplicitVRBigEndian,
        DeflatedExplicitVRLittleEndian,
    ):
        buffer = io.BytesIO()
        write_part10(mr_instance(rows=4, columns=4), buffer, ts)  # type: ignore[arg-type]
        seeds.append(
            bytes([HEAD_TRANSFER_SYNTAXES.index(ts), 0]) + _dataset_bytes(buffer.getvalue())
        )
    return seeds


def write_seeds(directory: Path, seeds: list[bytes]) -> None:
    """One file per seed, the way libFuzzer reads a corpus directory."""
    directory.mkdir(parents=True, exist_ok=True)
    for index, seed in enumerate(seeds):
        (directory / f"seed-{index:04d}").write_bytes(seed)


# == i21-dimse: differential targets of the compiled twins (command codec, UL reader) ======
# Both twins get the same bytes, split the same way; any difference in results, events,
# bytes sent, state or error (type and message) fails. The compiled modules are
# imported on first use: the seed tests skip where they are not built.

_COMPILED_CODEC = "oxidicom.dimse._commands_c"
_COMPILED_CONNECTION = "oxidicom.ul._connection_c"
_TWIN_MODES = 4


class _Stack(NamedTuple):
    """One implementation of the receive path's byte crunching."""

    connection: type[Connection]
    decode_command: Callable[[Any], Command]
    encode_response: Callable[..., bytes]


def twin_stacks() -> tuple[_Stack, _Stack]:
    """(pure Python, compiled); ImportError where the compiled modules are not built."""
    codec = importlib.import_module(_COMPILED_CODEC)
    connection = importlib.import_module(_COMPILED_CONNECTION)
    python = _Stack(ConnectionPy, commands.decode_command_py, commands.encode_response_py)
    return python, _Stack(connection.Connection, codec.decode_command, codec.encode_response)


def _result(call: Callable[[], object]) -> str:
    """What a call gave, as text that tells types apart (True is not 1), or what it raised."""
    try:
        value = call()
    except Exception as error:  # compared, not judged: the other targets judge
        return f"raised {type(error).__module__}.{type(error).__qualname__}: {error}"
    if isinstance(value, bytes | bytearray | memoryview):
        return f"{type(value).__name__} {bytes(value).hex()}"
    return f"{type(value).__name__} {value!r}"


@contextmanager
def _decoding_with(stack: _Stack) -> Iterator[None]:
    # MessageAssembler calls its module's decode_command: point it at this stack's.
    saved = assembler_module.decode_command
    assembler_module.decode_command = stack.decode_command
    try:
        yield
    finally:
        assembler_module.decode_command = saved


def _codec_trace(stack: _Stack, selector: int, payload: bytes) -> list[str]:
    """decode_command on every kind of buffer and through the assembler; encode_response."""
    decode = stack.decode_command
    views: list[object] = [payload, bytearray(payload), memoryview(payload)]
    views += [memoryview(payload)[1:], memoryview(payload).cast("b")]  # off the fast path
    trace = [_result(lambda v=v: decode(v)) for v in views]
    assembler = MessageAssembler()
    pieces = list(_chunks(payload, selector))
    with _decoding_with(stack):
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            fragment = DataFragment(1, True, last, memoryview(piece))
            trace.append(_result(lambda f=fragment: assembler.feed(f)))
    # encode_response: numbers from the first six bytes (selector bit 7 pushes Status out
    # of range), text from the rest, bits 0-2 of the selector leave a text out.
    field, message_id, status = struct.unpack_from("<HHH", payload.ljust(6, b"\x00"))
    if selector & 0x80:
        status += 0x10000
    texts: list[str | None] = [*payload[6:].decode("utf-8", "surrogateescape").split("|", 2)]
    texts += [""] * (3 - len(texts))
    for bit in range(3):
        if selector >> bit & 1:
            texts[bit] = None
    trace.append(
        _result(
            lambda: stack.encode_response(
                field,
                message_id,
                status,
                affected_sop_class_uid=texts[0],
                affected_sop_instance_uid=texts[1],
                error_comment=texts[2],
            )
        )
    )
    return trace


def _event_text(event: object) -> str:
    if isinstance(event, DataFragment):
        data = bytes(event.data).hex()
        return (
            f"DataFragment({event.context_id!r}, {event.is_command!r}, {event.is_last!r}, {data})"
        )
    return repr(event)


def _connection_trace(stack: _Stack, mode: int, pieces: list[bytes], eof: bool) -> list[str]:
    """The receiver's loop in miniature (as ``_drive``), everything it sees written down."""
    if mode == 1:
        conn = stack.connection(max_pdu_length=4096, pdu_hard_cap=65536)
    else:
        conn = stack.connection(max_pdu_length=4096, strict=mode == 3, pdu_hard_cap=65536)
        _associate(conn)
    assembler = MessageAssembler()
    trace: list[str] = []
    clock = 1.0
    with _decoding_with(stack):
        for piece in [*pieces, None]:
            if piece is None:
                if not eof:
                    break
                conn.receive_eof()
            else:
                clock += 0.001
                conn.receive_data(piece, clock)
            while True:
                try:
                    event = conn.next_event()
                except Exception as error:  # compared: the pdu target judges it
                    trace.append(_result(lambda error=error: _raise(error)))
                    return trace
                if event is None:
                    break
                trace.append(_event_text(event))
                if isinstance(event, AssociationRequested):
                    answer = negotiate(event.request, _POLICY)
                    if isinstance(answer, Accepted):
                        conn.accept(answer.response)
                    else:
                        conn.reject(answer)
                elif isinstance(event, DataFragment):
                    try:
                        item = assembler.feed(event)
                    except CommandError as error:
                        trace.append(f"CommandError: {error}")
                        conn.abort()
                        continue
                    trace.append(_event_text(item))
                    if isinstance(item, CommandReceived):
                        command = item.command
                        response = _result(
                            lambda c=command: stack.encode_response(
                                (c.command_field | 0x8000) & 0xFFFF,
                                c.message_id,
                                0xA700,
                                affected_sop_class_uid=c.affected_sop_class_uid,
                                affected_sop_instance_uid=c.affected_sop_instance_uid,
                                error_comment="cannot store the file: \u00e9",
                            )
                        )
                        trace.append(response)
                        if response.startswith("bytes "):
                            conn.send_message(item.context_id, bytes.fromhex(response[6:]))
                elif isinstance(event, ReleaseRequested):
                    conn.release()
                trace.append(f"sent {conn.data_to_send().hex()}")
            trace.append(
                f"{conn.state.name} buffered={conn.buffered} timer={conn.get_timer()!r}"
                f" close={conn.should_close}"
            )
    return trace


def _raise(error: Exception) -> None:
    raise error


def twins_input(data: bytes) -> None:
    """Byte 0: mode; byte 1: chunk size (0 = whole, odd = EOF at the end); the rest: input.

    Mode 0 is the command-set codec alone (the payload is a command set, and the
    material of a response); modes 1-3 are ``pdu_input``'s: a new connection, an
    established association, the same in strict mode, with DIMSE assembled, decoded
    and answered. The pure-Python and the compiled stacks must write the same trace.
    """
    if len(data) < 2:
        return
    mode, selector, payload = data[0] % _TWIN_MODES, data[1], data[2:]
    python, compiled = twin_stacks()
    if mode == 0:
        expected, got = (
            _codec_trace(python, selector, payload),
            _codec_trace(compiled, selector, payload),
        )
    else:
        pieces = list(_chunks(payload, selector))
        eof = bool(selector & 1)
        expected = _connection_trace(python, mode, pieces, eof)
        got = _connection_trace(compiled, mode, pieces, eof)
    assert got == expected, _first_difference(expected, got)


def _first_difference(expected: list[str], got: list[str]) -> str:
    for index, (want, have) in enumerate(itertools.zip_longest(expected, got)):
        if want != have:
            return f"step {index}: python {want!r}, compiled {have!r}"
    return "same"  # pragma: no cover - only called on a difference


def twins_seeds() -> list[bytes]:
    """The pdu seeds (modes 1-3 are this target's too) and every captured command set."""
    from tests.vectors import all_vectors

    seeds = pdu_seeds()
    for vector in all_vectors():
        pdu = ul.parse_pdu(vector.raw)
        if isinstance(pdu, ul.PDataTF):
            seeds += [bytes([0, 0]) + v.data for v in pdu.values if v.is_command]
            seeds += [bytes([0, 5]) + v.data for v in pdu.values if v.is_command]
    return seeds


# == end of i21-dimse ==================================================================
