"""The supervisor's accept loop (oxidicom/app/dispatch.py): which worker, and handing over.

The order is a pure function of the workers' reports. The dispatcher runs here on a real
listening socket and real channels, with this test as both workers: it sees what a
worker would receive, and reports what a worker would.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable

import pytest

from oxidicom.aio.handoff import LOAD, Load
from oxidicom.app.dispatch import Dispatcher, WorkerChannel, dispatch_order


def channel(index: int, slots: int, load: Load | None, sent: int = 0) -> WorkerChannel:
    made = WorkerChannel(index, slots, socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET))
    made.sock.close()
    made.load, made.sent = load, sent
    return made


def order(*channels: WorkerChannel, turn: int = 0) -> list[int]:
    return [c.index for c in dispatch_order(channels, turn)]


def test_the_fewest_connections_per_slot_first_then_the_first_worker() -> None:
    assert order(channel(0, 4, Load(0, 2, 2, 0)), channel(1, 4, Load(0, 1, 1, 0))) == [1, 0]
    assert order(channel(0, 4, Load(0, 1, 1, 0)), channel(1, 4, Load(0, 1, 1, 0))) == [0, 1]
    # Per slot: one connection for three slots leaves more room than one for two.
    assert order(channel(0, 2, Load(0, 1, 1, 0)), channel(1, 3, Load(0, 1, 1, 0))) == [1, 0]


def test_equal_workers_take_turns() -> None:
    """One peer's associations one after the other: each worker in turn (and so each
    worker's part of that peer's request rate)."""
    idle = [channel(i, 4, Load(0, 0, 0, 0)) for i in range(3)]
    assert [order(*idle, turn=turn)[0] for turn in range(5)] == [0, 1, 2, 0, 1]
    # Only between equals: the emptier still goes first whatever the turn.
    idle[1].load = Load(0, 1, 1, 0)
    assert [order(*idle, turn=turn)[0] for turn in range(3)] == [0, 2, 2]


def test_connections_passed_but_not_yet_taken_count() -> None:
    busy = channel(0, 4, Load(taken=5, open=0, associations=0, preemptible=0), sent=8)
    assert order(busy, channel(1, 4, Load(0, 2, 2, 0))) == [1, 0]


def test_a_free_slot_before_fewer_pending_connections() -> None:
    """Worker 0 holds its two slots; worker 1 one slot and many connections waiting for
    nothing (a flood of idle connections): the newcomer goes where a slot is free."""
    full = channel(0, 2, Load(0, 2, 2, 0))
    crowded = channel(1, 2, Load(0, 30, 1, 0))
    assert order(full, crowded) == [1, 0]


def test_when_all_are_full_a_worker_with_a_slow_association_first() -> None:
    fast = channel(0, 2, Load(0, 2, 2, 0))
    slow = channel(1, 2, Load(0, 3, 2, 1))
    assert order(fast, slow) == [1, 0]


def test_a_worker_that_has_not_reported_gets_nothing() -> None:
    assert order(channel(0, 4, None), channel(1, 4, Load(0, 4, 4, 0))) == [1]


@pytest.fixture
async def listener() -> AsyncIterator[socket.socket]:
    sock = socket.create_server(("127.0.0.1", 0))
    yield sock
    sock.close()


async def receive_fd(worker: socket.socket) -> socket.socket:
    """What a worker gets: one descriptor, as a socket."""
    loop = asyncio.get_running_loop()
    got: asyncio.Future[socket.socket] = loop.create_future()

    def readable() -> None:
        _, fds, _, _ = socket.recv_fds(worker, 16, 4)
        got.set_result(socket.socket(fileno=fds[0]))

    loop.add_reader(worker.fileno(), readable)
    try:
        return await asyncio.wait_for(got, 10)
    finally:
        loop.remove_reader(worker.fileno())


async def test_the_first_accept_waits_for_every_worker_then_the_emptiest_gets_it(
    listener: socket.socket,
) -> None:
    dispatcher = Dispatcher(listener, workers=2)
    first, second = dispatcher.attach(0, 2), dispatcher.attach(1, 2)
    port = listener.getsockname()[1]
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        first.send(LOAD.pack(0, 0, 0, 0))  # the first worker serves, the second not yet
        await until(lambda: dispatcher.channels[0].load is not None)
        assert not dispatcher.accepting
        assert (dispatcher.channels[0].sent, dispatcher.channels[1].sent) == (0, 0)
        first.send(LOAD.pack(0, 3, 0, 0))  # and it is the busier
        second.send(LOAD.pack(0, 0, 0, 0))
        handed = await receive_fd(second)
        with handed:
            assert handed.getpeername() == writer.get_extra_info("sockname")
        assert dispatcher.channels[1].sent == 1
        first.send(LOAD.pack(0, 0, 0, 0))
        # The second has one connection in flight: the next goes to the first.
        _, writer2 = await asyncio.open_connection("127.0.0.1", port)
        handed = await receive_fd(first)
        with handed:
            assert handed.getpeername() == writer2.get_extra_info("sockname")
        writer.close()
        writer2.close()
    finally:
        dispatcher.close()
        first.close()
        second.close()


async def test_once_started_one_serving_worker_is_enough(listener: socket.socket) -> None:
    """A worker restarting (it died) does not stop the others from getting connections."""
    dispatcher = Dispatcher(listener, workers=2)
    first, second = dispatcher.attach(0, 2), dispatcher.attach(1, 2)
    try:
        first.send(LOAD.pack(0, 0, 0, 0))
        second.send(LOAD.pack(0, 0, 0, 0))
        await until(lambda: dispatcher.accepting)
        second.close()  # it died; attached again, it has not reported yet
        await until(lambda: 1 not in dispatcher.channels)
        replacement = dispatcher.attach(1, 2)
        assert dispatcher.accepting
        _, writer = await asyncio.open_connection("127.0.0.1", listener.getsockname()[1])
        with await receive_fd(first):
            pass
        writer.close()
        replacement.close()
    finally:
        dispatcher.close()
        first.close()


async def until(condition: Callable[[], bool]) -> None:
    """Until the dispatcher, on this loop, has done what ``condition`` says."""
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0)


async def test_a_worker_whose_channel_ends_is_forgotten(listener: socket.socket) -> None:
    dispatcher = Dispatcher(listener, workers=1)
    worker = dispatcher.attach(0, 4)
    ended = asyncio.get_running_loop().create_future()
    try:
        worker.send(LOAD.pack(0, 0, 0, 0))
        worker.close()  # the worker stops (or dies)
        original = dispatcher.detach

        def detach(index: int) -> None:
            original(index)
            if not ended.done():
                ended.set_result(index)

        dispatcher.detach = detach  # type: ignore[method-assign]
        assert await asyncio.wait_for(ended, 10) == 0
        assert dispatcher.channels == {}
    finally:
        dispatcher.close()


async def test_a_full_channel_is_skipped_not_taken_for_a_dead_worker(
    listener: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker that does not keep up (its channel full) keeps its channel: the next
    worker gets the connection; when every channel is full the connection is closed,
    with a warning."""
    dispatcher = Dispatcher(listener, workers=2)
    slow, other = dispatcher.attach(0, 4), dispatcher.attach(1, 4)
    port = listener.getsockname()[1]
    try:
        slow.send(LOAD.pack(0, 0, 0, 0))
        other.send(LOAD.pack(0, 0, 0, 0))
        await until(lambda: dispatcher.accepting)
        fill(dispatcher.channels[0].sock)  # what a worker that stopped reading leaves
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        with await receive_fd(other) as handed:  # the slow one came first, and was full
            assert handed.getpeername() == writer.get_extra_info("sockname")
        writer.close()
        fill(dispatcher.channels[1].sock)
        with caplog.at_level("WARNING", logger="oxidicom.workers"):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert await asyncio.wait_for(reader.read(), 10) == b""  # closed
        writer.close()
        assert "no worker could take a connection from 127.0.0.1" in caplog.text
        assert set(dispatcher.channels) == {0, 1}  # both still there
    finally:
        dispatcher.close()
        slow.close()
        other.close()


def fill(channel: socket.socket) -> None:
    """Messages into ``channel`` until it takes no more."""
    while True:
        try:
            channel.send(b"x" * LOAD.size)
        except BlockingIOError:
            return
