"""The acceptance policy: A-ASSOCIATE-RQ in, AC or RJ out (PS3.8 9.3.3, 9.3.4)."""

from __future__ import annotations

import pytest

from oxidicom.dicom.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from oxidicom.scp.acceptance import AcceptancePolicy, Accepted, negotiate, reject_busy
from oxidicom.ul.constants import (
    ACSERejectReason,
    ContextResult,
    PresentationRejectReason,
    RejectResult,
    RejectSource,
    UserRejectReason,
)
from oxidicom.ul.pdu import (
    AssociateRJ,
    AssociateRQ,
    AsynchronousOperationsWindow,
    ExtendedNegotiation,
    PresentationContextRQ,
    RoleSelection,
    UserIdentity,
    UserInformation,
)

MR = "1.2.840.10008.5.1.4.1.1.4"
CT = "1.2.840.10008.5.1.4.1.1.2"
VERIFICATION = "1.2.840.10008.1.1"
FIND = "1.2.840.10008.5.1.4.1.2.2.1"
IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
BIG_ENDIAN = "1.2.840.10008.1.2.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
SIEMENS_CSA = "1.3.12.2.1107.5.9.1"

POLICY = AcceptancePolicy(ae_title="ChRIS", max_pdu_length=131072)


def request(*contexts: PresentationContextRQ, **changes: object) -> AssociateRQ:
    fields: dict[str, object] = {
        "called_ae_title": "ANYTHING",
        "calling_ae_title": "PACS",
        "application_context": "1.2.840.10008.3.1.1.1",
        "presentation_contexts": contexts,
        "user_information": UserInformation(maximum_length=16384),
    }
    fields.update(changes)
    return AssociateRQ(**fields)  # type: ignore[arg-type]


def accepted(rq: AssociateRQ, policy: AcceptancePolicy = POLICY) -> Accepted:
    answer = negotiate(rq, policy)
    assert isinstance(answer, Accepted)
    return answer


def results(answer: Accepted) -> list[tuple[int, int, str]]:
    return [
        (c.context_id, c.result, c.transfer_syntax) for c in answer.response.presentation_contexts
    ]


def test_every_context_gets_a_result() -> None:
    answer = accepted(
        request(
            PresentationContextRQ(1, MR, (EXPLICIT, IMPLICIT)),
            PresentationContextRQ(3, VERIFICATION, (IMPLICIT,)),
            PresentationContextRQ(5, FIND, (IMPLICIT,)),
            PresentationContextRQ(7, CT, ("1.2.3.4.5.6",)),
            PresentationContextRQ(9, SIEMENS_CSA, (IMPLICIT,)),
        )
    )
    assert results(answer) == [
        (1, ContextResult.ACCEPTANCE, EXPLICIT),
        (3, ContextResult.ACCEPTANCE, IMPLICIT),
        (5, ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED, IMPLICIT),
        (7, ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED, "1.2.3.4.5.6"),
        (9, ContextResult.ACCEPTANCE, IMPLICIT),
    ]
    assert sorted(answer.contexts) == [1, 3, 9]
    assert answer.contexts[1].transfer_syntax == EXPLICIT


def test_the_senders_preference_is_kept() -> None:
    answer = accepted(request(PresentationContextRQ(1, MR, (JPEG_BASELINE, BIG_ENDIAN, IMPLICIT))))
    assert answer.contexts[1].transfer_syntax == JPEG_BASELINE


@pytest.mark.parametrize("syntax", [BIG_ENDIAN, DEFLATED, JPEG_BASELINE])
def test_uncompressed_only_refuses_everything_else(syntax: str) -> None:
    policy = AcceptancePolicy(ae_title="ChRIS", max_pdu_length=16384, uncompressed_only=True)
    answer = accepted(request(PresentationContextRQ(1, MR, (syntax, IMPLICIT))), policy)
    assert answer.contexts[1].transfer_syntax == IMPLICIT
    only_other = accepted(request(PresentationContextRQ(1, MR, (syntax,))), policy)
    assert results(only_other) == [(1, ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED, syntax)]


def test_promiscuous_accepts_unknown_abstract_syntaxes() -> None:
    policy = AcceptancePolicy(ae_title="ChRIS", max_pdu_length=16384, promiscuous=True)
    answer = accepted(request(PresentationContextRQ(1, "1.2.3.999", (IMPLICIT,))), policy)
    assert results(answer) == [(1, ContextResult.ACCEPTANCE, IMPLICIT)]


def test_even_and_repeated_context_ids() -> None:
    answer = accepted(
        request(
            PresentationContextRQ(1, MR, (IMPLICIT,)),
            PresentationContextRQ(2, CT, (IMPLICIT,)),
            PresentationContextRQ(1, CT, (EXPLICIT,)),
        )
    )
    assert results(answer) == [
        (1, ContextResult.ACCEPTANCE, IMPLICIT),
        (2, ContextResult.NO_REASON, IMPLICIT),
    ]
    assert answer.contexts[1].abstract_syntax == MR


def test_user_information_answer() -> None:
    info = UserInformation(
        maximum_length=0,
        implementation_class_uid="1.2.3",
        asynchronous_operations_window=AsynchronousOperationsWindow(5, 5),
        role_selections=(RoleSelection(MR, True, True),),
        extended_negotiations=(ExtendedNegotiation(MR, b"\x01"),),
        user_identity=UserIdentity(1, True, b"alice"),
    )
    answer = accepted(request(PresentationContextRQ(1, MR, (IMPLICIT,)), user_information=info))
    ac = answer.response
    assert ac.called_ae_title == "ChRIS"
    assert ac.calling_ae_title == "PACS"
    assert ac.user_information == UserInformation(
        maximum_length=131072,
        implementation_class_uid=IMPLEMENTATION_CLASS_UID,
        implementation_version_name=IMPLEMENTATION_VERSION_NAME,
        asynchronous_operations_window=AsynchronousOperationsWindow(1, 1),
        role_selections=(RoleSelection(MR, True, False),),
    )


def test_no_async_window_answer_unless_asked() -> None:
    answer = accepted(request(PresentationContextRQ(1, MR, (IMPLICIT,))))
    assert answer.response.user_information.asynchronous_operations_window is None


def test_rejections() -> None:
    ctx = PresentationContextRQ(1, MR, (IMPLICIT,))
    assert negotiate(request(ctx, protocol_version=2), POLICY) == AssociateRJ(
        RejectResult.PERMANENT,
        RejectSource.SERVICE_PROVIDER_ACSE,
        ACSERejectReason.PROTOCOL_VERSION_NOT_SUPPORTED,
    )
    assert negotiate(request(ctx, application_context="1.2.3"), POLICY) == AssociateRJ(
        RejectResult.PERMANENT,
        RejectSource.SERVICE_USER,
        UserRejectReason.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED,
    )
    assert reject_busy() == AssociateRJ(
        RejectResult.TRANSIENT,
        RejectSource.SERVICE_PROVIDER_PRESENTATION,
        PresentationRejectReason.LOCAL_LIMIT_EXCEEDED,
    )


def test_too_many_contexts_is_a_permanent_rejection() -> None:
    contexts = tuple(PresentationContextRQ(1, MR, (IMPLICIT,)) for _ in range(129))
    answer = negotiate(request(*contexts), POLICY)
    assert isinstance(answer, AssociateRJ)
    assert answer.result == RejectResult.PERMANENT
