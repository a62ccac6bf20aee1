"""What a supervisor and its workers say over a worker's channel. Pure.

The channel is a Unix ``SOCK_SEQPACKET`` pair (:mod:`oxidicom.aio.handoff` is the
worker's end, :mod:`oxidicom.app.dispatch` the supervisor's), so each message arrives
whole. The supervisor sends two kinds, told apart by their first byte:

- a connection: one descriptor (``SCM_RIGHTS``) with :data:`CONNECTION`, or with
  :data:`CONNECTION_OVER_RATE` when its address asked more often than
  ``OXIDICOM_MAX_ASSOCIATION_RATE`` allows (the supervisor counts every connection to
  the receiver, so the rate holds for the receiver as a whole);
- :data:`HOLDS_ELSEWHERE` and the slots each peer address holds in the other workers
  (:func:`encode_holds_elsewhere`), whenever that changes, so that the host-share rule
  of :mod:`oxidicom.scp.fairness` is judged over the whole receiver.

A worker sends its :class:`Load`: whenever a connection opens or closes or a slot is
taken or freed, and every second.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import NamedTuple

import msgspec

CONNECTION = b"c"
CONNECTION_OVER_RATE = b"r"
HOLDS_ELSEWHERE = b"h"
#: Peer addresses a table carries at most: the ones holding most slots. An address left
#: out counts as holding none elsewhere (only with many thousands of slots).
MAX_HOSTS = 2048
#: Bytes a receiver reads of one message: a table of MAX_HOSTS IPv6 addresses fits.
MAX_MESSAGE = 128 * 1024

#: The fixed part of a load: four unsigned 64-bit integers in native byte order.
_COUNTS = struct.Struct("=QQQQ")
_encoder = msgspec.msgpack.Encoder()
_holds = msgspec.msgpack.Decoder(dict[str, int])


class Load(NamedTuple):
    """One report of a worker."""

    #: Descriptors taken from the channel so far.
    taken: int
    #: Connections open now (with an association or pending, TLS handshakes too).
    open: int
    #: Association slots held now.
    associations: int
    #: Associations the rate rule would preempt for a newcomer now.
    preemptible: int
    #: Slots held now, per peer address.
    holds: Mapping[str, int] = {}


class ChannelError(ValueError):
    """A message that is not one this module writes."""


def encode_load(load: Load) -> bytes:
    return _COUNTS.pack(load.taken, load.open, load.associations, load.preemptible) + (
        _encoder.encode(_largest(load.holds)) if load.holds else b""
    )


def decode_load(data: bytes) -> Load:
    if len(data) < _COUNTS.size:
        raise ChannelError(f"a load of {len(data)} bytes")
    holds = _decode_holds(data[_COUNTS.size :]) if len(data) > _COUNTS.size else {}
    return Load(*_COUNTS.unpack_from(data), holds)


def encode_holds_elsewhere(holds: Mapping[str, int]) -> bytes:
    return HOLDS_ELSEWHERE + _encoder.encode(_largest(holds))


def decode_holds_elsewhere(data: bytes) -> dict[str, int]:
    if data[:1] != HOLDS_ELSEWHERE:
        raise ChannelError(f"not a table of holds: {data[:1]!r}")
    return _decode_holds(data[1:])


def _decode_holds(data: bytes) -> dict[str, int]:
    try:
        return _holds.decode(data)
    except msgspec.DecodeError as error:
        raise ChannelError(f"a table of holds: {error}") from None


def _largest(holds: Mapping[str, int]) -> Mapping[str, int]:
    if len(holds) <= MAX_HOSTS:
        return holds
    return dict(sorted(holds.items(), key=lambda item: -item[1])[:MAX_HOSTS])
