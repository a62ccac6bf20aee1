"""The Storage SCP as a service: who may associate, what is negotiated, one association.

No asyncio transport here: :class:`Association` takes Upper Layer events and answers
through its :class:`~oxidicom.ul.connection.Connection`; what it needs of the process
(slots, policies, storage, notifier) is :class:`Services`, which :class:`ScpService`
implements.
"""

from oxidicom.scp.acceptance import (
    AcceptancePolicy,
    Accepted,
    AcceptedContext,
    negotiate,
    reject_busy,
)
from oxidicom.scp.access import (
    AccessPolicy,
    AllowedPeers,
    ClientAETitles,
    Refusal,
    check_ae_title,
    parse_allowed_peers,
    parse_client_aets,
)
from oxidicom.scp.association import Association
from oxidicom.scp.interfaces import Link, PendingConnection, Services, SlotHolder
from oxidicom.scp.services import ScpService
from oxidicom.scp.transfer_rate import GRACE, WINDOW, TransferMeter

__all__ = [
    "GRACE",
    "WINDOW",
    "AcceptancePolicy",
    "Accepted",
    "AcceptedContext",
    "AccessPolicy",
    "AllowedPeers",
    "Association",
    "ClientAETitles",
    "Link",
    "PendingConnection",
    "Refusal",
    "ScpService",
    "Services",
    "SlotHolder",
    "TransferMeter",
    "check_ae_title",
    "negotiate",
    "parse_allowed_peers",
    "parse_client_aets",
    "reject_busy",
]
