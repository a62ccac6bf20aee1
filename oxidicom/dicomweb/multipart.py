"""The request body of a Store Transaction: ``multipart/related; type="application/dicom"``.

PS3.18 10.5.1: the payload is a multipart/related message (RFC 2387) whose parts are
each one Part-10 instance. aiohttp's MultipartReader does the framing; this module
decides which bodies we take (:func:`check_content_type`) and turns one part into the
byte chunks the ingest reads (:func:`part_chunks`), counting them against the request
limit and giving up on a client that stops sending.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Final, Protocol, TypeVar

from aiohttp.helpers import parse_mimetype
from aiohttp.multipart import MultipartReader

from oxidicom.scp.transfer_rate import TransferMeter

#: Bytes asked of the multipart reader at a time. Below glibc's mmap threshold (128 KiB)
#: on purpose: larger chunks raise the threshold and settle in the heap, where they left
#: the receiver 5-8 MiB higher at the peak for the same throughput (64 KiB with 1 MiB
#: batches: 60.6 MiB peak after three 256 MiB parts; 256 KiB with 4 MiB: 68.1 MiB).
CHUNK_SIZE: Final = 64 * 1024


@dataclass(frozen=True)
class BodyProblem:
    """Why a request body is not taken: the HTTP status and a line for the client."""

    status: int
    reason: str


def check_content_type(value: str | None) -> BodyProblem | None:
    """None when the Content-Type announces DICOM parts we store, else the answer.

    415 for anything but multipart/related (or a ``type`` other than application/dicom:
    the JSON and XML metadata-and-bulk-data forms are not supported); 400 for a
    multipart/related header without a boundary. A missing ``type`` parameter is
    tolerated (some clients leave it out): each part's own Content-Type is then checked.
    """
    if not value:
        return BodyProblem(
            415, "no Content-Type: expected multipart/related; type=application/dicom"
        )
    mime = parse_mimetype(value)
    if (mime.type, mime.subtype) != ("multipart", "related"):
        return BodyProblem(
            415, f"Content-Type {mime.type}/{mime.subtype}: expected multipart/related"
        )
    kind = mime.parameters.get("type", "").strip().lower()
    if kind not in ("", "application/dicom"):
        return BodyProblem(
            415, f"multipart/related of type {kind}: only application/dicom is supported"
        )
    if not mime.parameters.get("boundary"):
        return BodyProblem(400, "multipart/related without a boundary parameter")
    return None


#: Longest boundary taken. RFC 2046 says 70 characters and aiohttp enforces that, but
#: Orthanc's DICOMweb plugin (1.7, Debian's) sends 73: refusing it protects nothing, as
#: the reader looks for the boundary in a window of its own size either way.
MAX_BOUNDARY: Final = 256


class StowMultipartReader(MultipartReader):
    """aiohttp's streaming multipart reader, with boundaries up to :data:`MAX_BOUNDARY`."""

    def _get_boundary(self) -> str:
        boundary: str = self._mimetype.parameters["boundary"]
        if len(boundary) > MAX_BOUNDARY:
            raise ValueError(f"boundary is too long ({MAX_BOUNDARY} characters at most)")
        return boundary


class RequestTooLarge(Exception):
    """The body went over OXIDICOM_DICOMWEB_MAX_REQUEST_SIZE: 413."""


class ClientStalled(Exception):
    """No byte of the body arrived for the idle timeout: 408."""


class Budget:
    """Bytes of the request body left before it is too large."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, size: int) -> None:
        self.used += size
        if self.used > self.limit:
            raise RequestTooLarge(f"the request body is larger than {self.limit} bytes")


_T = TypeVar("_T")


class BodyReads:
    """The reads of one request body: each given up after the idle timeout, and all of
    them ended at once by :meth:`stop` (its slot goes to another request).

    Counts the bytes read in ``meter`` when one is given (what the rate rule judges).
    """

    def __init__(self, idle_timeout: float, meter: TransferMeter | None = None) -> None:
        self.idle_timeout = idle_timeout
        self.meter = meter
        #: Why the body is no longer read (stop's reason), once stopped.
        self.stopped: str | None = None
        self._timeout: asyncio.Timeout | None = None

    async def wait(self, read: Awaitable[_T]) -> _T:
        """``await read``, or ClientStalled (stopped, or nothing for the idle timeout)."""
        if self.stopped is not None:
            if asyncio.iscoroutine(read):
                read.close()  # never awaited: no warning about it
            raise ClientStalled(self.stopped)
        try:
            async with asyncio.timeout(self.idle_timeout) as timeout:
                self._timeout = timeout
                return await read
        except TimeoutError:
            raise ClientStalled(self.stopped or f"no data for {self.idle_timeout:g} s") from None
        finally:
            self._timeout = None

    def count(self, size: int) -> None:
        if self.meter is not None:
            self.meter.add(size, asyncio.get_running_loop().time())

    def stop(self, reason: str) -> None:
        """End the read under way now, and every read after it, with ClientStalled."""
        self.stopped = reason
        if self._timeout is not None:
            self._timeout.reschedule(asyncio.get_running_loop().time())


class ChunkSource(Protocol):
    """What :func:`part_chunks` needs of aiohttp's BodyPartReader."""

    async def read_chunk(self, size: int = ...) -> bytes: ...


async def part_chunks(
    part: ChunkSource, budget: Budget, reads: BodyReads | float
) -> AsyncIterator[bytes]:
    """The bytes of one part, as they arrive; raises RequestTooLarge or ClientStalled.

    ``reads``: the request's :class:`BodyReads`, or just the idle timeout.
    """
    if not isinstance(reads, BodyReads):
        reads = BodyReads(reads)
    while True:
        chunk = await reads.wait(part.read_chunk(CHUNK_SIZE))
        if not chunk:
            return
        reads.count(len(chunk))
        budget.take(len(chunk))
        yield chunk
