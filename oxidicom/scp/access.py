"""Who may associate: calling AE title, its host, its TLS certificate, the called AE title. Pure.

Built once at start from ``OXIDICOM_SCP_ALLOWED_PEERS``, ``OXIDICOM_SCP_CHECK_CALLED_AET``
and ``OXIDICOM_TLS_CLIENT_AETS`` (the parsers here turn each into a value; host names
are resolved then, never per association). :meth:`AccessPolicy.check` answers an
A-ASSOCIATE-RQ before anything else is done with it, so a refused peer holds no
association slot. Everything is off by default, as in the reference receiver: anyone
who reaches the port may store.

AE titles are compared as PS3.5 6.2 (VR AE) says: leading and trailing spaces are not
significant (the PDU reader strips them), and otherwise byte for byte, so case matters.
dcmtk compares the same way; Orthanc ignores case unless ``StrictAetComparison`` is
true. We keep case because the calling AE title names the PACS folder in CUBE's storage:
``PACS`` and ``pacs`` write to different folders, so they are different peers.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Mapping

import msgspec

from oxidicom.ul.constants import RejectResult, RejectSource, UserRejectReason
from oxidicom.ul.pdu import AssociateRJ

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: Host name -> its addresses (raises OSError when it does not resolve).
Resolver = Callable[[str], Iterable[str]]

#: The calling AE title of ``oxidicom echo`` (the container's health check): defined
#: here, not by the command, because the policy warns at start when it would refuse it.
DEFAULT_CALLING_AE_TITLE = "OXIDICOM-ECHO"
ALLOWED_PEERS = "OXIDICOM_SCP_ALLOWED_PEERS"
CLIENT_AETS = "OXIDICOM_TLS_CLIENT_AETS"
CHECK_CALLED_AET = "OXIDICOM_SCP_CHECK_CALLED_AET"

#: Values of the metric attribute ``oxidicom.reject.reason`` for the refusals made here.
CALLED_AE_TITLE_NOT_RECOGNIZED = "called_ae_title_not_recognized"
CALLING_AE_TITLE_NOT_RECOGNIZED = "calling_ae_title_not_recognized"
PEER_HOST_NOT_ALLOWED = "peer_host_not_allowed"
CERTIFICATE_NOT_LISTED = "certificate_not_listed"
AE_TITLE_NOT_BOUND_TO_CERTIFICATE = "ae_title_not_bound_to_certificate"

_MAPPED_IPV4 = ipaddress.IPv6Network("::ffff:0:0/96")
_HOST_NAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?")
_NUMERIC = re.compile(r"[0-9.]+")


def check_ae_title(text: str) -> str:
    """An AE title as the standard allows it (PS3.5 VR AE), spaces around it dropped."""
    title = text.strip()
    if not 1 <= len(title) <= 16 or not title.isascii() or "\\" in title:
        raise ValueError("expected 1 to 16 ASCII characters without a backslash")
    if not title.isprintable():
        raise ValueError("expected printable ASCII characters")
    return title


# -- OXIDICOM_SCP_ALLOWED_PEERS ------------------------------------------------------------


class AllowedPeers(msgspec.Struct, frozen=True):
    """Each allowed calling AE title -> the networks it may call from (None: any host)."""

    hosts: Mapping[str, tuple[IPNetwork, ...] | None]
    #: Each AE title's entries as the operator wrote them, for the log.
    written: Mapping[str, tuple[str, ...]]


def resolve_host(name: str) -> list[str]:
    """Every address of ``name`` (blocking: called once at start)."""
    return sorted(
        {str(info[4][0]) for info in socket.getaddrinfo(name, None, 0, socket.SOCK_STREAM)}
    )


def parse_allowed_peers(text: str, resolve: Resolver = resolve_host) -> AllowedPeers:
    """``AET`` or ``AET@HOST`` entries, comma-separated; HOST an address, CIDR or name.

    An AE title may contain ``@``: the host is what follows the last one, so such a
    title must be written with a host (``A@B@0.0.0.0/0``).
    """
    hosts: dict[str, tuple[IPNetwork, ...] | None] = {}
    written: dict[str, tuple[str, ...]] = {}
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue  # a trailing comma is harmless
        title_text, at, host = entry.rpartition("@")
        if not at:
            title_text, host = entry, ""
        try:
            title = check_ae_title(title_text)
        except ValueError as error:
            raise ValueError(f"entry {entry!r}: AE title {title_text.strip()!r}: {error}") from None
        written[title] = (*written.get(title, ()), entry)
        if not at:
            hosts[title] = None  # any host, whatever other entries say
            continue
        networks = _host_networks(entry, host.strip(), resolve)
        if title not in hosts:
            hosts[title] = networks
        elif (known := hosts[title]) is not None:
            hosts[title] = (*known, *networks)
    if not hosts:
        raise ValueError("expected at least one AET or AET@HOST entry")
    return AllowedPeers(hosts, written)


def _host_networks(entry: str, host: str, resolve: Resolver) -> tuple[IPNetwork, ...]:
    literal = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not literal:
        raise ValueError(f"entry {entry!r}: expected a host after '@'")
    if "/" in literal or ":" in literal or _NUMERIC.fullmatch(literal):
        try:
            return (_unmapped(ipaddress.ip_network(literal, strict=True)),)
        except ValueError as error:
            hint = ""
            if "host bits set" in str(error):
                network = ipaddress.ip_network(literal, strict=False)
                hint = f" (the network is {network})"
            raise ValueError(
                f"entry {entry!r}: {literal!r} is not an IP address or network{hint}"
            ) from None
    if not _HOST_NAME.fullmatch(literal) or len(literal) > 253:
        raise ValueError(f"entry {entry!r}: {literal!r} is not an address, a CIDR or a host name")
    try:
        addresses = list(resolve(literal))
    except (OSError, UnicodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise ValueError(
            f"entry {entry!r}: host name {literal!r} does not resolve: {reason}"
        ) from None
    if not addresses:
        raise ValueError(f"entry {entry!r}: host name {literal!r} has no address")
    return tuple(_unmapped(ipaddress.ip_network(address.split("%", 1)[0])) for address in addresses)


def _unmapped(network: IPNetwork) -> IPNetwork:
    """``::ffff:a.b.c.d/n`` (n >= 96) as the IPv4 network it stands for."""
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_MAPPED_IPV4):
        mapped = network.network_address.ipv4_mapped
        assert mapped is not None
        return ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    return network


def peer_ip(address: str) -> IPAddress | None:
    """The peer's IP address, an IPv4-mapped IPv6 one as IPv4; None if it is not one."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


# -- OXIDICOM_TLS_CLIENT_AETS --------------------------------------------------------------


class ClientAETitles(msgspec.Struct, frozen=True):
    """Certificate identity (lower case) -> the calling AE titles it may use."""

    titles: Mapping[str, frozenset[str]]


def parse_client_aets(text: str) -> ClientAETitles:
    """``IDENTITY=AET`` entries, comma-separated; an identity listed again adds titles.

    IDENTITY is a certificate's subject common name or one of its subjectAltName DNS
    names, compared without regard to case (DNS names are case-insensitive). The
    identity ends at the first ``=``.
    """
    titles: dict[str, frozenset[str]] = {}
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        identity, equals, title_text = entry.partition("=")
        identity = identity.strip().lower()
        if not equals or not identity:
            raise ValueError(f"entry {entry!r}: expected IDENTITY=AET")
        try:
            title = check_ae_title(title_text)
        except ValueError as error:
            raise ValueError(f"entry {entry!r}: AE title {title_text.strip()!r}: {error}") from None
        titles[identity] = titles.get(identity, frozenset()) | {title}
    if not titles:
        raise ValueError("expected at least one IDENTITY=AET entry")
    return ClientAETitles(titles)


def certificate_identities(peercert: Mapping[str, object] | None) -> tuple[str, ...]:
    """The subject CNs and subjectAltName DNS names of ``ssl.getpeercert()``'s answer."""
    if not peercert:
        return ()
    names: list[str] = []
    for rdn in peercert.get("subject", ()):  # type: ignore[attr-defined]
        names.extend(value for key, value in rdn if key == "commonName")
    names.extend(value for kind, value in peercert.get("subjectAltName", ()) if kind == "DNS")  # type: ignore[attr-defined]
    return tuple(dict.fromkeys(names))


# -- the policy ----------------------------------------------------------------------------


class Refusal(msgspec.Struct, frozen=True):
    """Why an association is refused: the RJ reason, a metric label, a line for the log."""

    user_reason: UserRejectReason
    reason: str
    detail: str

    @property
    def reject(self) -> AssociateRJ:
        """PS3.8 Table 9-21: permanent, from the service user."""
        return AssociateRJ(RejectResult.PERMANENT, RejectSource.SERVICE_USER, self.user_reason)


class AccessPolicy(msgspec.Struct, frozen=True):
    """Who may associate; every part is off when unset."""

    ae_title: str
    check_called_ae_title: bool = False
    allowed_peers: AllowedPeers | None = None
    client_ae_titles: ClientAETitles | None = None

    @property
    def restricted(self) -> bool:
        """True when any check is on."""
        return (
            self.check_called_ae_title
            or self.allowed_peers is not None
            or self.client_ae_titles is not None
        )

    def check(
        self,
        calling_ae_title: str,
        called_ae_title: str,
        peer_address: str,
        peercert: Mapping[str, object] | None = None,
    ) -> Refusal | None:
        """None when the peer may associate; otherwise why not.

        The called AE title is checked first (is the request meant for us at all, as
        Orthanc does), then the calling AE title and its host, then its certificate.
        """
        if self.check_called_ae_title and called_ae_title != self.ae_title:
            return Refusal(
                UserRejectReason.CALLED_AE_TITLE_NOT_RECOGNIZED,
                CALLED_AE_TITLE_NOT_RECOGNIZED,
                f"called AE title not recognized: {called_ae_title!r} is not ours"
                f" ({self.ae_title!r}, {CHECK_CALLED_AET})",
            )
        peers = self.allowed_peers
        if peers is not None:
            refusal = _check_peer(peers, calling_ae_title, peer_address)
            if refusal is not None:
                return refusal
        bindings = self.client_ae_titles
        if bindings is not None:
            return _check_certificate(bindings, calling_ae_title, peercert)
        return None


def _calling_refusal(reason: str, detail: str) -> Refusal:
    return Refusal(UserRejectReason.CALLING_AE_TITLE_NOT_RECOGNIZED, reason, detail)


def _check_peer(peers: AllowedPeers, calling: str, peer_address: str) -> Refusal | None:
    if calling not in peers.hosts:
        return _calling_refusal(
            CALLING_AE_TITLE_NOT_RECOGNIZED,
            f"calling AE title not recognized: {calling!r} is not in {ALLOWED_PEERS}",
        )
    networks = peers.hosts[calling]
    if networks is None:
        return None
    ip = peer_ip(peer_address)
    if ip is not None and any(ip in network for network in networks):
        return None
    listed = ", ".join(peers.written[calling])
    return _calling_refusal(
        PEER_HOST_NOT_ALLOWED,
        f"calling AE title not recognized: {calling!r} is allowed only as {listed},"
        f" not from {peer_address}",
    )


def _check_certificate(
    bindings: ClientAETitles, calling: str, peercert: Mapping[str, object] | None
) -> Refusal | None:
    identities = certificate_identities(peercert)
    shown = ", ".join(identities) or "none"
    allowed: set[str] = set()
    listed = False
    for identity in identities:
        titles = bindings.titles.get(identity.lower())
        if titles is not None:
            listed = True
            allowed |= titles
    if not listed:
        return _calling_refusal(
            CERTIFICATE_NOT_LISTED,
            f"calling AE title not recognized: no identity of the client certificate"
            f" ({shown}) is in {CLIENT_AETS}",
        )
    if calling not in allowed:
        return _calling_refusal(
            AE_TITLE_NOT_BOUND_TO_CERTIFICATE,
            f"calling AE title not recognized: {calling!r} is not bound to the client"
            f" certificate ({shown}) in {CLIENT_AETS}",
        )
    return None


def health_check_address(listener_address: str) -> str:
    """Where ``oxidicom echo`` connects by default (and so the address it comes from).

    The listening address; loopback when the receiver listens on every address.
    """
    if listener_address in ("", "0.0.0.0"):
        return "127.0.0.1"
    return "::1" if listener_address == "::" else listener_address


def describe(policy: AccessPolicy) -> str | None:
    """One start line saying which checks are on; None when anyone may associate."""
    if not policy.restricted:
        return None
    parts = []
    if policy.allowed_peers is not None:
        parts.append(
            f"{len(policy.allowed_peers.hosts)} calling AE title(s) allowed ({ALLOWED_PEERS})"
        )
    if policy.client_ae_titles is not None:
        count = len(policy.client_ae_titles.titles)
        parts.append(f"{count} client certificate identit(ies) bound to AE titles ({CLIENT_AETS})")
    if policy.check_called_ae_title:
        parts.append(f"called AE title must be {policy.ae_title!r} ({CHECK_CALLED_AET})")
    return "access control: " + "; ".join(parts)


def health_check_warning(policy: AccessPolicy, listener_address: str, tls: bool) -> str | None:
    """A warning when the policy would reject ``oxidicom echo`` with its defaults.

    Not with TLS: the echo command speaks plain TCP, so it cannot check a TLS listener.
    """
    if tls or not policy.restricted:
        return None
    address = health_check_address(listener_address)
    refusal = policy.check(DEFAULT_CALLING_AE_TITLE, policy.ae_title, address)
    if refusal is None:
        return None
    return (
        f"the health check (oxidicom echo: {DEFAULT_CALLING_AE_TITLE}@{address}) will be"
        f" rejected ({refusal.detail}); list {DEFAULT_CALLING_AE_TITLE}@{address} in"
        f" {ALLOWED_PEERS}"
    )
