"""PDV fragments -> DIMSE messages (PS3.7 section 9.3.1, PS3.8 Annex E).

A message is a command set, then (when its CommandDataSetType says so) a data
set, each sent as PDV fragments on one presentation context. Command fragments
are gathered (they are small and capped); data set fragments are passed through
untouched, to be streamed to storage.
"""

from __future__ import annotations

import sys

import msgspec

from oxidicom.dimse.commands import MAX_COMMAND_SET_LENGTH, Command, CommandError, decode_command
from oxidicom.support.extensions import load_compiled
from oxidicom.ul.events import DataFragment


class CommandReceived(msgspec.Struct, frozen=True, gc=False):
    """A complete command set and the presentation context it came on."""

    context_id: int
    command: Command


class MessageAssemblerPy:
    """Checks the order of command and data set fragments of one association (the
    pure-Python reference: see :data:`MessageAssembler` for the class in use)."""

    def __init__(self, max_command_length: int = MAX_COMMAND_SET_LENGTH) -> None:
        self.max_command_length = max_command_length
        self._command = bytearray()
        self._command_context: int | None = None
        #: Presentation context of the data set being received, None when none is due.
        self.dataset_context: int | None = None

    @property
    def idle(self) -> bool:
        """True between messages: no command or data set is partly received."""
        return self._command_context is None and self.dataset_context is None

    def feed(self, fragment: DataFragment) -> CommandReceived | DataFragment | None:
        """A complete command, a data set fragment to store, or None (command incomplete).

        Raises :class:`CommandError` when the peer breaks the message structure.
        """
        if not fragment.is_command:
            if fragment.context_id != self.dataset_context:
                if self.dataset_context is None:
                    raise CommandError("data set fragment without a command announcing it")
                raise CommandError(
                    f"data set fragment on context {fragment.context_id}, "
                    f"expected {self.dataset_context}"
                )
            if fragment.is_last:
                self.dataset_context = None
            return fragment
        if self.dataset_context is not None:
            raise CommandError("command fragment while a data set is still being received")
        if self._command_context is None:
            self._command_context = fragment.context_id
        elif fragment.context_id != self._command_context:
            raise CommandError("command fragments on two presentation contexts")
        if len(self._command) + len(fragment.data) > self.max_command_length:
            raise CommandError(f"command set longer than {self.max_command_length} bytes")
        if not fragment.is_last:
            self._command += fragment.data
            return None
        if self._command:
            self._command += fragment.data
            command = decode_command(self._command)
            self._command = bytearray()
        else:
            command = decode_command(fragment.data)
        context: int = self._command_context
        self._command_context = None
        if command.has_dataset:
            self.dataset_context = context
        return CommandReceived(context, command)


# The compiled twin (oxidicom/dimse/_assembler_c.pyx): the state in C fields
# (``_AssemblerState``, the first base of ``MessageAssemblerC``) and ``feed``.
MessageAssembler: type[MessageAssemblerPy] = MessageAssemblerPy
_c = load_compiled("oxidicom.dimse._assembler_c")
if _c is not None:
    _c.bind(sys.modules[__name__], MessageAssemblerPy)

    class MessageAssemblerC(_c._AssemblerState, MessageAssemblerPy):  # type: ignore[misc,name-defined]
        """:class:`MessageAssemblerPy` with its state in C fields and ``feed`` compiled."""

    MessageAssembler = MessageAssemblerC
