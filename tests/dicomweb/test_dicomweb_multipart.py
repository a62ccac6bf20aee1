"""Which request bodies STOW-RS takes, and the chunks of one part (dicomweb/multipart.py)."""

from __future__ import annotations

import asyncio

import pytest

from oxidicom.dicomweb.multipart import (
    Budget,
    ClientStalled,
    RequestTooLarge,
    check_content_type,
    part_chunks,
)


@pytest.mark.parametrize(
    "value",
    [
        'multipart/related; type="application/dicom"; boundary=abc',
        'Multipart/Related; type=application/dicom; boundary="a b"',
        "multipart/related; boundary=abc",  # no type: each part's own type is checked
    ],
)
def test_dicom_multipart_is_taken(value: str) -> None:
    assert check_content_type(value) is None


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "application/dicom",
        "multipart/form-data; boundary=abc",
        'multipart/related; type="application/dicom+json"; boundary=abc',
        'multipart/related; type="application/dicom+xml"; boundary=abc',
    ],
)
def test_other_media_types_get_415(value: str | None) -> None:
    problem = check_content_type(value)
    assert problem is not None and problem.status == 415


def test_multipart_without_boundary_gets_400() -> None:
    problem = check_content_type('multipart/related; type="application/dicom"')
    assert problem is not None and problem.status == 400


class FakePart:
    """A BodyPartReader stand-in: hands out ``chunks``, then waits ``stall`` s once."""

    def __init__(self, chunks: list[bytes], stall: float = 0.0) -> None:
        self.chunks = list(chunks)
        self.stall = stall

    async def read_chunk(self, size: int = 8192) -> bytes:
        if not self.chunks and self.stall:
            await asyncio.sleep(self.stall)  # the stalled client, not synchronisation
        return self.chunks.pop(0) if self.chunks else b""


async def collect(part: FakePart, budget: Budget, idle: float = 5.0) -> list[bytes]:
    return [chunk async for chunk in part_chunks(part, budget, idle)]


async def test_chunks_arrive_in_order_and_are_counted() -> None:
    budget = Budget(100)
    assert await collect(FakePart([b"abc", b"de"]), budget) == [b"abc", b"de"]
    assert budget.used == 5


async def test_a_request_over_the_budget_raises_too_large() -> None:
    budget = Budget(4)
    with pytest.raises(RequestTooLarge):
        await collect(FakePart([b"abc", b"de"]), budget)


async def test_a_part_that_stops_sending_raises_stalled() -> None:
    with pytest.raises(ClientStalled):
        await collect(FakePart([b"abc"], stall=30), Budget(100), idle=0.05)


async def test_a_73_character_boundary_as_orthanc_sends_it_is_read() -> None:
    from aiohttp.streams import StreamReader

    from oxidicom.dicomweb.multipart import StowMultipartReader

    class Protocol:  # what StreamReader needs of its protocol: flow control it ignores
        _reading_paused = False

        def pause_reading(self, **_: object) -> None: ...

        def resume_reading(self, **_: object) -> None: ...

    boundary = "f28b9a62-62bc-4984-bd21-321768b41446-f28b9a62-62bc-4984-bd21-321768b41446"
    assert len(boundary) == 73
    body = (
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\nDATA\r\n--{boundary}--\r\n"
    ).encode()
    stream = StreamReader(Protocol(), 2**16, loop=asyncio.get_running_loop())  # type: ignore[arg-type]
    stream.feed_data(body)
    stream.feed_eof()
    headers = {"Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'}
    reader = StowMultipartReader(headers, stream)
    part = await reader.next()
    assert part is not None
    assert await collect(part, Budget(100)) == [b"DATA"]  # type: ignore[arg-type]
    assert await reader.next() is None
