"""The LONK message policy (CONTRACT section 4), with time passed in and a recording sink."""

from __future__ import annotations

import struct

from oxidicom.notify import lonk
from oxidicom.notify.progress import ProgressPolicy
from oxidicom.storage.series import SeriesRecord

UID = "1.2.3.4"
SUBJECT = "root.PACS.1_2_3_4"


class Sink:
    """Records what the policy hands over; refuses optional messages when told to."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.room = True
        self.refuse_all = False

    def send(self, subject: str, payload: bytes, required: bool) -> bool:
        if self.refuse_all:
            return False
        self.messages.append((subject, payload, required))
        return True

    def payloads(self, subject: str = SUBJECT) -> list[str]:
        out = []
        for s, payload, _ in self.messages:
            if s != subject:
                continue
            if payload[0] == lonk.PROGRESS:
                out.append(str(struct.unpack_from("<I", payload, 1)[0]))
            elif payload == lonk.DONE:
                out.append("done")
            else:
                out.append("error:" + payload[1:].decode())
        return out


def make(interval: float = 0.5) -> tuple[ProgressPolicy, Sink]:
    sink = Sink()
    return ProgressPolicy("root", interval, sink.send, lambda: sink.room), sink


def record(association: str = "a-1", uid: str = UID, pacs: str = "PACS") -> SeriesRecord:
    return SeriesRecord(association, pacs, uid)


def store(policy: ProgressPolicy, rec: SeriesRecord, times: list[float]) -> None:
    for now in times:
        rec.count += 1
        policy.stored(rec, now)


def test_first_progress_always_then_at_most_one_per_interval_then_final_and_done() -> None:
    policy, sink = make(interval=0.5)
    rec = record()
    store(policy, rec, [10.0, 10.1, 10.2, 10.5, 10.6, 10.99, 11.0, 11.1])
    policy.ended(rec)
    assert sink.payloads() == ["1", "4", "7", "8", "done"]
    required = [r for _, _, r in sink.messages]
    assert required == [True, False, False, True, True]


def test_final_progress_is_not_repeated_when_the_last_one_had_the_total() -> None:
    policy, sink = make(interval=0.5)
    rec = record()
    store(policy, rec, [10.0, 10.6])
    policy.ended(rec)
    assert sink.payloads() == ["1", "2", "done"]  # counts strictly increase
    one = record(association="a-2")
    store(policy, one, [20.0])
    policy.ended(one)
    assert sink.payloads() == ["1", "2", "done", "1", "done"]


def test_long_interval_sends_only_first_final_and_done() -> None:
    policy, sink = make(interval=3600)
    rec = record()
    store(policy, rec, [float(t) for t in range(100)])
    policy.ended(rec)
    assert sink.payloads() == ["1", "100", "done"]


def test_zero_interval_sends_every_count() -> None:
    policy, sink = make(interval=0)
    rec = record()
    store(policy, rec, [1.0, 1.0, 1.0])
    policy.ended(rec)
    assert sink.payloads() == ["1", "2", "3", "done"]


def test_no_room_for_optional_messages_drops_them_but_not_first_or_final() -> None:
    policy, sink = make(interval=0)
    sink.room = False
    rec = record()
    store(policy, rec, [1.0, 2.0, 3.0])
    policy.ended(rec)
    assert sink.payloads() == ["1", "3", "done"]


def test_a_dropped_message_does_not_count_as_sent() -> None:
    policy, sink = make(interval=0)
    rec = record()
    store(policy, rec, [1.0])
    sink.refuse_all = True
    store(policy, rec, [2.0])  # "2" refused by the buffer
    sink.refuse_all = False
    policy.ended(rec)
    assert sink.payloads() == ["1", "2", "done"]  # the final 2 is still sent


def test_series_and_associations_are_limited_separately() -> None:
    policy, sink = make(interval=0.5)
    a, b = record(uid="1.1"), record(uid="2.2")
    other = record(association="a-2", uid="1.1")
    for now in (1.0, 1.1, 1.6):
        for rec in (a, b, other):
            store(policy, rec, [now])
    policy.ended(a)
    policy.ended(b)
    policy.ended(other)
    a_subject, b_subject = "root.PACS.1_1", "root.PACS.2_2"
    assert sink.payloads(b_subject) == ["1", "3", "done"]
    # Two associations on one subject: each has its own first message and its own pace.
    assert sink.payloads(a_subject) == ["1", "1", "3", "3", "done", "done"]


def test_errors_are_always_sent_on_their_series_subject() -> None:
    policy, sink = make(interval=3600)
    policy.failed("PACS", UID, "required attribute StudyDate (0008,0020) is missing")
    policy.failed("PACS", None, "no SeriesInstanceUID")
    policy.failed("PACS", UID, "again")
    assert sink.payloads() == [
        "error:required attribute StudyDate (0008,0020) is missing",
        "error:again",
    ]
    assert sink.payloads("root.PACS.UNKNOWN") == ["error:no SeriesInstanceUID"]
    assert len(sink.messages) == 3


def test_subject_uses_the_calling_ae_title() -> None:
    policy, sink = make()
    rec = record(pacs="MY PACS")
    store(policy, rec, [1.0])
    assert sink.messages[0][0] == "root.MY_PACS.1_2_3_4"


# -- the bounded queue in front of NATS ----------------------------------------------------


async def test_lonk_queue_refuses_optional_first_then_everything_and_counts() -> None:
    from oxidicom.notify.nats import LonkPublisher

    publisher = LonkPublisher("nats://127.0.0.1:1", optional_limit=2, required_limit=3)
    assert publisher.offer("s", b"\x01", required=False)
    assert publisher.offer("s", b"\x01", required=False)
    assert not publisher.room_for_optional()
    assert not publisher.offer("s", b"\x01", required=False)  # optional: over 2
    assert publisher.offer("s", b"\x00", required=True)  # required: up to 3
    assert not publisher.offer("s", b"\x00", required=True)
    assert publisher.dropped == 2
    await publisher.stop(0)  # never started: nothing to do, and no error
