"""The command-set codec's two implementations, for tests that take both.

``codec_of("python")`` is the reference in :mod:`oxidicom.dimse.commands` (its ``_py``
names); ``codec_of("compiled")`` is :mod:`oxidicom.dimse._commands_c`, skipped where it
is not built (failed under CI, see :mod:`tests.implementations`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import pytest

from oxidicom.dimse import assembler, commands
from tests.implementations import compiled_module

COMPILED_COMMANDS = "oxidicom.dimse._commands_c"


class Codec(NamedTuple):
    kind: str
    decode_command: Callable[[Any], commands.Command]
    encode_response: Callable[..., bytes]


def codec_of(kind: str) -> Codec:
    """The pure-Python codec ("python") or the compiled one ("compiled")."""
    if kind == "python":
        return Codec(kind, commands.decode_command_py, commands.encode_response_py)
    module = compiled_module(COMPILED_COMMANDS)
    return Codec(kind, module.decode_command, module.encode_response)


def use_codec(kind: str, monkeypatch: pytest.MonkeyPatch) -> Codec:
    """``codec_of(kind)``, also used by :class:`MessageAssembler` for this test."""
    codec = codec_of(kind)
    monkeypatch.setattr(assembler, "decode_command", codec.decode_command)
    return codec


@contextmanager
def assembling_with(kind: str) -> Iterator[Codec]:
    """``codec_of(kind)``, used by :class:`MessageAssembler` inside the block.

    For hypothesis tests, which may not take function-scoped fixtures (monkeypatch).
    """
    codec = codec_of(kind)
    saved = assembler.decode_command
    assembler.decode_command = codec.decode_command
    try:
        yield codec
    finally:
        assembler.decode_command = saved
