"""Association acceptance policy: A-ASSOCIATE-RQ in, A-ASSOCIATE-AC or -RJ out. Pure.

PS3.8 9.3.3 and 9.3.4 give the answers; PS3.7 Annex D.3.3 the user information
sub-items we negotiate. Extended negotiation and user identity sub-items are
accepted and ignored: no answer is sent for them, which PS3.7 D.3.3.5 and
D.3.3.7 allow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from oxidicom.dicom.uids import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    STORAGE_SOP_CLASSES,
    TRANSFER_SYNTAXES,
    UNCOMPRESSED_TRANSFER_SYNTAXES,
    VERIFICATION_SOP_CLASS,
)
from oxidicom.ul.constants import (
    DICOM_APPLICATION_CONTEXT,
    PROTOCOL_VERSION,
    ACSERejectReason,
    ContextResult,
    PresentationRejectReason,
    RejectResult,
    RejectSource,
    UserRejectReason,
)
from oxidicom.ul.pdu import (
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    AsynchronousOperationsWindow,
    PresentationContextAC,
    RoleSelection,
    UserInformation,
)

if TYPE_CHECKING:
    from oxidicom.app.settings import Settings

#: PS3.8 9.3.2.2: presentation context IDs are odd numbers from 1 to 255.
MAX_PRESENTATION_CONTEXTS = 128


class AcceptancePolicy(msgspec.Struct, frozen=True):
    """What this receiver accepts; built once from the settings."""

    ae_title: str
    max_pdu_length: int
    promiscuous: bool = False
    uncompressed_only: bool = False
    max_presentation_contexts: int = MAX_PRESENTATION_CONTEXTS

    @classmethod
    def from_settings(cls, settings: Settings) -> AcceptancePolicy:
        """The policy the settings ask for: the same for DIMSE and for STOW-RS."""
        return cls(
            ae_title=settings.scp_aet,
            max_pdu_length=settings.scp_max_pdu_length,
            promiscuous=settings.scp_promiscuous,
            uncompressed_only=settings.scp_uncompressed_only,
        )

    @property
    def transfer_syntaxes(self) -> frozenset[str]:
        return UNCOMPRESSED_TRANSFER_SYNTAXES if self.uncompressed_only else TRANSFER_SYNTAXES

    def accepts_abstract_syntax(self, uid: str) -> bool:
        return (
            uid == VERIFICATION_SOP_CLASS
            or uid in STORAGE_SOP_CLASSES
            or (self.promiscuous and bool(uid))
        )


class AcceptedContext(msgspec.Struct, frozen=True, gc=False):
    """A presentation context usable for the rest of the association."""

    context_id: int
    abstract_syntax: str
    transfer_syntax: str


class Accepted(msgspec.Struct, frozen=True):
    """The AC to send and the contexts it accepted, by context ID."""

    response: AssociateAC
    contexts: dict[int, AcceptedContext]


def reject_busy() -> AssociateRJ:
    """PS3.8 Table 9-21: too many associations is transient, local limit exceeded."""
    return AssociateRJ(
        RejectResult.TRANSIENT,
        RejectSource.SERVICE_PROVIDER_PRESENTATION,
        PresentationRejectReason.LOCAL_LIMIT_EXCEEDED,
    )


def reject_congested() -> AssociateRJ:
    """PS3.8 Table 9-21: a peer asking too often is transient, temporary congestion."""
    return AssociateRJ(
        RejectResult.TRANSIENT,
        RejectSource.SERVICE_PROVIDER_PRESENTATION,
        PresentationRejectReason.TEMPORARY_CONGESTION,
    )


def negotiate(request: AssociateRQ, policy: AcceptancePolicy) -> Accepted | AssociateRJ:
    """Answer one A-ASSOCIATE-RQ."""
    if not request.protocol_version & PROTOCOL_VERSION:
        return AssociateRJ(
            RejectResult.PERMANENT,
            RejectSource.SERVICE_PROVIDER_ACSE,
            ACSERejectReason.PROTOCOL_VERSION_NOT_SUPPORTED,
        )
    if request.application_context != DICOM_APPLICATION_CONTEXT:
        return AssociateRJ(
            RejectResult.PERMANENT,
            RejectSource.SERVICE_USER,
            UserRejectReason.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED,
        )
    if len(request.presentation_contexts) > policy.max_presentation_contexts:
        return AssociateRJ(
            RejectResult.PERMANENT, RejectSource.SERVICE_USER, UserRejectReason.NO_REASON_GIVEN
        )
    supported = policy.transfer_syntaxes
    answers: list[PresentationContextAC] = []
    accepted: dict[int, AcceptedContext] = {}
    seen: set[int] = set()
    for proposed in request.presentation_contexts:
        context_id = proposed.context_id
        if context_id in seen:
            continue  # a repeated ID cannot be answered twice; the first one stands
        seen.add(context_id)
        if not context_id & 1:
            result, transfer = ContextResult.NO_REASON, ""
        elif not policy.accepts_abstract_syntax(proposed.abstract_syntax):
            result, transfer = ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED, ""
        else:
            # The sender's order is its preference; we store what arrives, untranscoded.
            transfer = next((t for t in proposed.transfer_syntaxes if t in supported), "")
            result = ContextResult.ACCEPTANCE
            if not transfer:
                result = ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED
        if result is ContextResult.ACCEPTANCE:
            accepted[context_id] = AcceptedContext(context_id, proposed.abstract_syntax, transfer)
        else:
            # PS3.8 9.3.3.2: the transfer syntax sub-item is present but not significant.
            transfer = transfer or (proposed.transfer_syntaxes or ("",))[0]
        answers.append(PresentationContextAC(context_id, result, transfer))
    info = request.user_information
    response = AssociateAC(
        called_ae_title=policy.ae_title,
        calling_ae_title=request.calling_ae_title,
        application_context=DICOM_APPLICATION_CONTEXT,
        presentation_contexts=tuple(answers),
        user_information=UserInformation(
            maximum_length=policy.max_pdu_length,
            implementation_class_uid=IMPLEMENTATION_CLASS_UID,
            implementation_version_name=IMPLEMENTATION_VERSION_NAME,
            # We perform one operation at a time (PS3.7 D.3.3.3).
            asynchronous_operations_window=(
                AsynchronousOperationsWindow(1, 1)
                if info.asynchronous_operations_window is not None
                else None
            ),
            # The requestor may act as SCU; we never act as SCU, so it cannot be SCP.
            role_selections=tuple(
                RoleSelection(role.sop_class_uid, role.scu_role, False)
                for role in info.role_selections
            ),
        ),
        protocol_version=PROTOCOL_VERSION,
    )
    return Accepted(response, accepted)
