"""The Storage SCP as a service: who may associate, what is negotiated, one association.

No asyncio transport here: :class:`Association` takes Upper Layer events and answers
through its :class:`~oxidicom.ul.connection.Connection`; what it needs of the process
(slots, policies, storage, notifier) is :class:`Services`, which :class:`ScpService`
implements.
"""

from typing import TYPE_CHECKING

from oxidicom.support.lazy import lazy_exports

if TYPE_CHECKING:
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

# Imported on first use (oxidicom.support.lazy).
_WHERE = {
    "AcceptancePolicy": "oxidicom.scp.acceptance",
    "Accepted": "oxidicom.scp.acceptance",
    "AcceptedContext": "oxidicom.scp.acceptance",
    "negotiate": "oxidicom.scp.acceptance",
    "reject_busy": "oxidicom.scp.acceptance",
    "AccessPolicy": "oxidicom.scp.access",
    "AllowedPeers": "oxidicom.scp.access",
    "ClientAETitles": "oxidicom.scp.access",
    "Refusal": "oxidicom.scp.access",
    "check_ae_title": "oxidicom.scp.access",
    "parse_allowed_peers": "oxidicom.scp.access",
    "parse_client_aets": "oxidicom.scp.access",
    "Association": "oxidicom.scp.association",
    "Link": "oxidicom.scp.interfaces",
    "PendingConnection": "oxidicom.scp.interfaces",
    "Services": "oxidicom.scp.interfaces",
    "SlotHolder": "oxidicom.scp.interfaces",
    "ScpService": "oxidicom.scp.services",
    "GRACE": "oxidicom.scp.transfer_rate",
    "WINDOW": "oxidicom.scp.transfer_rate",
    "TransferMeter": "oxidicom.scp.transfer_rate",
}
__getattr__ = lazy_exports(__name__, _WHERE)


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
