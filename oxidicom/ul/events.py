"""What the Upper Layer core tells its user: a closed union of small immutable values."""

from __future__ import annotations

import msgspec

from oxidicom.ul.constants import AbortReason, AbortSource
from oxidicom.ul.pdu import AssociateRQ


class _Event(msgspec.Struct, frozen=True, gc=False):
    pass


class AssociationRequested(_Event):
    """A-ASSOCIATE indication: answer with ``Connection.accept`` or ``Connection.reject``."""

    request: AssociateRQ


class DataFragment(_Event):
    """A piece of one PDV's data (P-DATA indication, streamed).

    PDV data is handed on in the pieces it arrived in, without copying. ``is_last``
    is true only for the piece that ends a PDV whose message control header has
    the "last fragment" bit (PS3.8 Annex E.2): the command or data set is then
    complete. ``data`` stays valid: it is a view of bytes nobody mutates.
    """

    context_id: int
    is_command: bool
    is_last: bool
    data: memoryview


class ReleaseRequested(_Event):
    """A-RELEASE indication: finish pending work, then call ``Connection.release``."""


class PeerAborted(_Event):
    """The peer sent A-ABORT; the association is over and the transport must close."""

    source: int
    reason: int


class AbortSent(_Event):
    """We sent A-ABORT because the peer broke the protocol (or a local decision)."""

    source: AbortSource
    reason: AbortReason
    detail: str


class TimedOut(_Event):
    """A timer expired: ARTIM (no request, or no close after release) or the idle timer."""

    timer: str


class ConnectionClosed(_Event):
    """The transport is gone (peer closed, or closed by us); nothing more will happen."""


Event = (
    AssociationRequested
    | DataFragment
    | ReleaseRequested
    | PeerAborted
    | AbortSent
    | TimedOut
    | ConnectionClosed
)
