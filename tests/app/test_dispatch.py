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

from oxidicom.aio.channel import (
    CONNECTION,
    CONNECTION_OVER_RATE,
    Load,
    decode_holds_elsewhere,
    encode_load,
)
from oxidicom.app.dispatch import Dispatcher, WorkerChannel, dispatch_order
from oxidicom.scp.request_rate import RequestRate


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


def test_when_all_are_full_the_worker_where_the_host_share_rule_frees_a_slot_first() -> None:
    """10.0.0.2 holds all 4 slots of worker 0; worker 1's 4 are split between 10.0.0.3
    and 10.0.0.4. A newcomer from 10.0.0.4 (2 slots) goes to worker 0, busier as it is:
    there a host holding 2 more than its own gives one up; in worker 1 none would."""
    holds = {"10.0.0.2": 4, "10.0.0.3": 2, "10.0.0.4": 2}
    crowded = channel(0, 4, Load(0, 9, 4, 0, {"10.0.0.2": 4}))
    split = channel(1, 4, Load(0, 4, 4, 0, {"10.0.0.3": 2, "10.0.0.4": 2}))
    assert [c.index for c in dispatch_order([split, crowded], 0, "10.0.0.4", holds)] == [0, 1]
    # A host holding 3 is 1 short of 10.0.0.2's "two more": the emptier goes first.
    holds["10.0.0.4"] = 3
    assert [c.index for c in dispatch_order([split, crowded], 0, "10.0.0.4", holds)] == [1, 0]
    # The receiver-wide count decides, not the worker's: 10.0.0.3 holds 2 here, 4 in all.
    holds = {"10.0.0.2": 4, "10.0.0.3": 4, "10.0.0.4": 2}
    split.load = Load(0, 4, 4, 0, {"10.0.0.3": 2, "10.0.0.4": 2})
    crowded.load = Load(0, 9, 4, 0, {"10.0.0.3": 2, "10.0.0.2": 2})
    assert [c.index for c in dispatch_order([split, crowded], 0, "10.0.0.5", holds)] == [1, 0]


@pytest.fixture
async def listener() -> AsyncIterator[socket.socket]:
    sock = socket.create_server(("127.0.0.1", 0))
    yield sock
    sock.close()


async def receive_fd(worker: socket.socket) -> socket.socket:
    """What a worker gets: one descriptor, as a socket."""
    return (await receive_connection(worker))[1]


async def receive_connection(worker: socket.socket) -> tuple[bytes, socket.socket]:
    """The next connection a worker gets: its message, and its descriptor as a socket
    (tables of holds before it are skipped)."""
    loop = asyncio.get_running_loop()
    got: asyncio.Future[tuple[bytes, socket.socket]] = loop.create_future()

    def readable() -> None:
        data, fds, _, _ = socket.recv_fds(worker, 65536, 4)
        if fds and not got.done():
            got.set_result((data, socket.socket(fileno=fds[0])))

    loop.add_reader(worker.fileno(), readable)
    try:
        return await asyncio.wait_for(got, 10)
    finally:
        loop.remove_reader(worker.fileno())


async def receive_table(worker: socket.socket) -> dict[str, int]:
    """The next table of slots held elsewhere a worker gets."""
    loop = asyncio.get_running_loop()
    got: asyncio.Future[dict[str, int]] = loop.create_future()

    def readable() -> None:
        data, fds, _, _ = socket.recv_fds(worker, 65536, 4)
        for fd in fds:
            socket.close(fd)
        if not fds and not got.done():
            got.set_result(decode_holds_elsewhere(data))

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
        first.send(encode_load(Load(0, 0, 0, 0)))  # the first worker serves, the second not yet
        await until(lambda: dispatcher.channels[0].load is not None)
        assert not dispatcher.accepting
        assert (dispatcher.channels[0].sent, dispatcher.channels[1].sent) == (0, 0)
        first.send(encode_load(Load(0, 3, 0, 0)))  # and it is the busier
        second.send(encode_load(Load(0, 0, 0, 0)))
        handed = await receive_fd(second)
        with handed:
            assert handed.getpeername() == writer.get_extra_info("sockname")
        assert dispatcher.channels[1].sent == 1
        first.send(encode_load(Load(0, 0, 0, 0)))
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
        first.send(encode_load(Load(0, 0, 0, 0)))
        second.send(encode_load(Load(0, 0, 0, 0)))
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
        worker.send(encode_load(Load(0, 0, 0, 0)))
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
        slow.send(encode_load(Load(0, 0, 0, 0)))
        other.send(encode_load(Load(0, 0, 0, 0)))
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
            channel.send(b"x" * 32)
        except BlockingIOError:
            return


async def test_the_request_rate_is_counted_for_the_whole_receiver(
    listener: socket.socket,
) -> None:
    """2/min: one address's first two connections go to the workers as they are, the
    third is marked over the rate, whichever worker gets it."""
    dispatcher = Dispatcher(listener, workers=2, rate=RequestRate(2, 60.0))
    workers = [dispatcher.attach(0, 4), dispatcher.attach(1, 4)]
    port = listener.getsockname()[1]
    writers = []
    try:
        for worker in workers:
            worker.send(encode_load(Load(0, 0, 0, 0)))
        await until(lambda: dispatcher.accepting)
        messages = []
        for n in range(3):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writers.append(writer)
            # Equal workers take turns: the first connection to worker 0, and so on.
            message, handed = await receive_connection(workers[n % 2])
            handed.close()
            messages.append(message)
        assert messages == [CONNECTION, CONNECTION, CONNECTION_OVER_RATE]
    finally:
        for writer in writers:
            writer.close()
        dispatcher.close()
        for worker in workers:
            worker.close()


async def test_each_worker_is_told_the_slots_held_in_the_others(listener: socket.socket) -> None:
    dispatcher = Dispatcher(listener, workers=2)
    first, second = dispatcher.attach(0, 4), dispatcher.attach(1, 4)
    try:
        first.send(encode_load(Load(0, 3, 3, 0, {"10.0.0.2": 2, "10.0.0.3": 1})))
        second.send(encode_load(Load(0, 1, 1, 0, {"10.0.0.2": 1})))
        assert await receive_table(second) == {"10.0.0.2": 2, "10.0.0.3": 1}
        assert await receive_table(first) == {"10.0.0.2": 1}
        assert dispatcher.holds == {"10.0.0.2": 3, "10.0.0.3": 1}
        second.send(encode_load(Load(0, 0, 0, 0)))  # its association ended
        assert await receive_table(first) == {}
        first.close()  # worker 0 is gone: what it held is held nowhere
        assert await receive_table(second) == {}
        assert dispatcher.holds == {}
    finally:
        dispatcher.close()
        second.close()
