"""The access policy (oxidicom/scp/access.py): parsing the settings, and each decision."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from pathlib import Path

import pytest

from oxidicom.app.settings import SettingsError, load_settings
from oxidicom.scp.access import (
    AE_TITLE_NOT_BOUND_TO_CERTIFICATE,
    CALLED_AE_TITLE_NOT_RECOGNIZED,
    CALLING_AE_TITLE_NOT_RECOGNIZED,
    CERTIFICATE_NOT_LISTED,
    PEER_HOST_NOT_ALLOWED,
    AccessPolicy,
    certificate_identities,
    health_check_warning,
    parse_allowed_peers,
    parse_client_aets,
    peer_ip,
)
from oxidicom.ul.constants import RejectResult, RejectSource, UserRejectReason
from oxidicom.ul.pdu import AssociateRJ

HOSTS = {"pacs.example.test": ["10.1.2.3", "2001:db8::7"], "mr.example.test": ["192.0.2.9"]}


def fake_resolve(name: str) -> Iterable[str]:
    """A resolver that knows two names (no DNS in unit tests)."""
    try:
        return HOSTS[name]
    except KeyError:
        raise OSError(-2, "Name or service not known") from None


def peers(text: str) -> AccessPolicy:
    return AccessPolicy("ChRIS", allowed_peers=parse_allowed_peers(text, fake_resolve))


def reason(policy: AccessPolicy, calling: str, address: str, called: str = "ChRIS") -> str | None:
    refusal = policy.check(calling, called, address)
    return None if refusal is None else refusal.reason


# -- parsing OXIDICOM_SCP_ALLOWED_PEERS ----------------------------------------------------


def test_entries_parse_into_networks_per_ae_title() -> None:
    parsed = parse_allowed_peers(
        " PACS@10.0.0.0/8 , MR, CT@192.0.2.1,CT@[2001:db8::/32], US@pacs.example.test,",
        fake_resolve,
    )
    net = ipaddress.ip_network
    assert parsed.hosts == {
        "PACS": (net("10.0.0.0/8"),),
        "MR": None,
        "CT": (net("192.0.2.1/32"), net("2001:db8::/32")),
        "US": (net("10.1.2.3/32"), net("2001:db8::7/128")),
    }
    assert parsed.written["CT"] == ("CT@192.0.2.1", "CT@[2001:db8::/32]")


def test_an_entry_without_host_admits_any_host_whatever_else_is_listed() -> None:
    assert parse_allowed_peers("PACS@10.0.0.1,PACS").hosts == {"PACS": None}
    assert parse_allowed_peers("PACS,PACS@10.0.0.1").hosts == {"PACS": None}


def test_an_ae_title_with_an_at_sign_is_written_with_a_host() -> None:
    parsed = parse_allowed_peers("A@B@0.0.0.0/0")
    assert parsed.hosts == {"A@B": (ipaddress.ip_network("0.0.0.0/0"),)}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected at least one"),
        (" , ", "expected at least one"),
        ("@10.0.0.1", "AE title ''"),
        ("SEVENTEEN_CHARS_X@10.0.0.1", "1 to 16 ASCII characters"),
        ("BACK\\SLASH", "without a backslash"),
        ("PACS@", "expected a host"),
        ("PACS@10.0.0.1/8", "(the network is 10.0.0.0/8)"),
        ("PACS@10.0.0.256", "not an IP address or network"),
        ("PACS@10.1", "not an IP address or network"),
        ("PACS@2001:db8::zz", "not an IP address or network"),
        ("PACS@10.0.0.0/33", "not an IP address or network"),
        ("PACS@bad host", "not an address, a CIDR or a host name"),
        ("PACS@unknown.example.test", "host name 'unknown.example.test' does not resolve"),
    ],
)
def test_bad_entries_are_refused_with_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_allowed_peers(text, fake_resolve)
    assert message in str(caught.value)


def test_a_bad_entry_stops_the_start_naming_the_variable(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"OXIDICOM_SCP_ALLOWED_PEERS": "PACS@10.0.0.1/8"}, cwd=tmp_path)
    assert str(caught.value) == (
        "OXIDICOM_SCP_ALLOWED_PEERS='PACS@10.0.0.1/8' is not valid: entry 'PACS@10.0.0.1/8':"
        " '10.0.0.1/8' is not an IP address or network (the network is 10.0.0.0/8)"
    )


def test_host_names_are_resolved_at_start(tmp_path: Path) -> None:
    settings = load_settings({"OXIDICOM_SCP_ALLOWED_PEERS": "PACS@localhost"}, cwd=tmp_path)
    assert settings.scp_allowed_peers is not None
    networks = settings.scp_allowed_peers.hosts["PACS"]
    assert networks is not None
    assert any(ipaddress.ip_address("127.0.0.1") in network for network in networks)


def test_everything_is_off_by_default(tmp_path: Path) -> None:
    settings = load_settings({}, cwd=tmp_path)
    assert settings.scp_allowed_peers is None
    assert settings.scp_check_called_aet is False
    assert settings.tls_client_aets is None
    assert not AccessPolicy("ChRIS").restricted
    assert AccessPolicy("ChRIS").check("ANYONE", "ANYTHING", "203.0.113.5") is None


# -- deciding ------------------------------------------------------------------------------


def test_calling_ae_titles_not_listed_are_refused() -> None:
    policy = peers("PACS, MR@10.0.0.0/8")
    assert reason(policy, "PACS", "203.0.113.5") is None
    assert reason(policy, "OTHER", "10.0.0.1") == CALLING_AE_TITLE_NOT_RECOGNIZED


def test_ae_titles_are_case_sensitive() -> None:
    assert reason(peers("PACS"), "pacs", "10.0.0.1") == CALLING_AE_TITLE_NOT_RECOGNIZED


def test_a_listed_ae_title_from_another_host_is_refused() -> None:
    policy = peers("PACS@10.0.0.0/8,PACS@192.0.2.7")
    assert reason(policy, "PACS", "10.200.0.1") is None
    assert reason(policy, "PACS", "192.0.2.7") is None
    assert reason(policy, "PACS", "192.0.2.8") == PEER_HOST_NOT_ALLOWED
    assert reason(policy, "PACS", "127.0.0.1") == PEER_HOST_NOT_ALLOWED
    refusal = policy.check("PACS", "ChRIS", "127.0.0.1")
    assert refusal is not None
    assert refusal.detail == (
        "calling AE title not recognized: 'PACS' is allowed only as"
        " PACS@10.0.0.0/8, PACS@192.0.2.7, not from 127.0.0.1"
    )


def test_ipv6_peers_and_networks() -> None:
    policy = peers("PACS@2001:db8::/32,MR@::1")
    assert reason(policy, "PACS", "2001:db8:1::5") is None
    assert reason(policy, "PACS", "2001:db9::5") == PEER_HOST_NOT_ALLOWED
    assert reason(policy, "MR", "::1") is None
    assert reason(policy, "MR", "fe80::1%eth0") == PEER_HOST_NOT_ALLOWED
    # An IPv6 peer never matches an IPv4 network, nor the reverse.
    assert reason(peers("PACS@0.0.0.0/0"), "PACS", "2001:db8::1") == PEER_HOST_NOT_ALLOWED
    assert reason(peers("PACS@::/0"), "PACS", "10.0.0.1") == PEER_HOST_NOT_ALLOWED


def test_ipv4_mapped_peers_match_ipv4_entries() -> None:
    # A listener on "::" sees IPv4 peers as ::ffff:a.b.c.d.
    policy = peers("PACS@10.0.0.0/8,MR@::ffff:192.0.2.0/120")
    assert reason(policy, "PACS", "::ffff:10.9.8.7") is None
    assert reason(policy, "PACS", "::ffff:11.9.8.7") == PEER_HOST_NOT_ALLOWED
    assert reason(policy, "MR", "192.0.2.77") is None
    assert peer_ip("::ffff:10.9.8.7") == ipaddress.ip_address("10.9.8.7")


def test_host_name_entries_match_each_resolved_address() -> None:
    policy = peers("PACS@pacs.example.test")
    assert reason(policy, "PACS", "10.1.2.3") is None
    assert reason(policy, "PACS", "2001:db8::7") is None
    assert reason(policy, "PACS", "10.1.2.4") == PEER_HOST_NOT_ALLOWED


def test_an_address_that_is_not_ip_never_matches_a_host() -> None:
    assert reason(peers("PACS@10.0.0.0/8"), "PACS", "") == PEER_HOST_NOT_ALLOWED


def test_refusals_are_permanent_from_the_service_user() -> None:
    refusal = peers("PACS").check("OTHER", "ChRIS", "10.0.0.1")
    assert refusal is not None
    assert refusal.reject == AssociateRJ(
        RejectResult.PERMANENT,
        RejectSource.SERVICE_USER,
        UserRejectReason.CALLING_AE_TITLE_NOT_RECOGNIZED,
    )


def test_the_called_ae_title_is_checked_only_when_asked() -> None:
    checking = AccessPolicy("ChRIS", check_called_ae_title=True)
    assert reason(checking, "ANY", "10.0.0.1", called="ChRIS") is None
    assert reason(checking, "ANY", "10.0.0.1", called="CHRIS") == CALLED_AE_TITLE_NOT_RECOGNIZED
    refusal = checking.check("ANY", "OTHER", "10.0.0.1")
    assert refusal is not None and refusal.reject.reason == 7
    assert reason(AccessPolicy("ChRIS"), "ANY", "10.0.0.1", called="OTHER") is None


def test_the_called_ae_title_is_checked_before_the_calling_one() -> None:
    policy = AccessPolicy(
        "ChRIS", check_called_ae_title=True, allowed_peers=parse_allowed_peers("PACS")
    )
    assert reason(policy, "OTHER", "10.0.0.1", called="OTHER") == CALLED_AE_TITLE_NOT_RECOGNIZED


# -- TLS: certificates bound to AE titles --------------------------------------------------


def peercert(cn: str, *dns: str) -> dict[str, object]:
    """What ssl.SSLSocket.getpeercert() returns, in the parts we read."""
    return {
        "subject": ((("countryName", "BE"),), (("commonName", cn),)),
        "subjectAltName": (*(("DNS", name) for name in dns), ("IP Address", "10.0.0.1")),
    }


def test_certificate_identities_are_the_cn_and_the_dns_names() -> None:
    assert certificate_identities(peercert("pacs1", "pacs1.example.test", "pacs1")) == (
        "pacs1",
        "pacs1.example.test",
    )
    assert certificate_identities(None) == ()
    assert certificate_identities({}) == ()


def test_client_aets_parse_identity_to_titles() -> None:
    parsed = parse_client_aets("pacs1=PACS1, PACS1=PACS1B ,mr.example.test=MR,")
    assert parsed.titles == {
        "pacs1": frozenset({"PACS1", "PACS1B"}),
        "mr.example.test": frozenset({"MR"}),
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected at least one"),
        ("pacs1", "expected IDENTITY=AET"),
        ("=PACS", "expected IDENTITY=AET"),
        ("pacs1=", "AE title ''"),
        ("pacs1=SEVENTEEN_CHARS_X", "1 to 16 ASCII characters"),
    ],
)
def test_bad_client_aets_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_client_aets(text)
    assert message in str(caught.value)


def test_client_aets_need_a_client_ca(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="OXIDICOM_TLS_CLIENT_AETS is set but"):
        load_settings(
            {
                "OXIDICOM_TLS_CERTIFICATE": "server.pem",
                "OXIDICOM_TLS_CLIENT_AETS": "pacs1=PACS1",
            },
            cwd=tmp_path,
        )


def test_a_certificate_may_use_only_its_ae_titles() -> None:
    policy = AccessPolicy("ChRIS", client_ae_titles=parse_client_aets("pacs1=PACS1,Mr.Test=MR"))

    def check(calling: str, cert: dict[str, object] | None) -> str | None:
        refusal = policy.check(calling, "ChRIS", "10.0.0.1", cert)
        return None if refusal is None else refusal.reason

    assert check("PACS1", peercert("pacs1")) is None
    assert check("MR", peercert("device-42", "mr.test")) is None  # by DNS name, any case
    assert check("MR", peercert("pacs1")) == AE_TITLE_NOT_BOUND_TO_CERTIFICATE
    assert check("PACS1", peercert("stranger")) == CERTIFICATE_NOT_LISTED
    assert check("PACS1", None) == CERTIFICATE_NOT_LISTED


def test_peers_and_certificates_must_both_agree() -> None:
    policy = AccessPolicy(
        "ChRIS",
        allowed_peers=parse_allowed_peers("PACS1@10.0.0.0/8"),
        client_ae_titles=parse_client_aets("pacs1=PACS1"),
    )
    assert policy.check("PACS1", "ChRIS", "10.0.0.1", peercert("pacs1")) is None
    refused = policy.check("PACS1", "ChRIS", "192.0.2.1", peercert("pacs1"))
    assert refused is not None and refused.reason == PEER_HOST_NOT_ALLOWED


# -- the health check ----------------------------------------------------------------------


def test_a_policy_that_rejects_the_health_check_is_warned_about() -> None:
    warning = health_check_warning(peers("PACS"), "0.0.0.0", tls=False)
    assert warning is not None
    assert "list OXIDICOM-ECHO@127.0.0.1 in OXIDICOM_SCP_ALLOWED_PEERS" in warning
    assert health_check_warning(peers("PACS,OXIDICOM-ECHO@127.0.0.1"), "0.0.0.0", False) is None
    assert health_check_warning(peers("PACS,OXIDICOM-ECHO@::1"), "::", False) is None
    assert health_check_warning(peers("PACS,OXIDICOM-ECHO@10.0.0.5"), "10.0.0.5", False) is None
    assert health_check_warning(AccessPolicy("ChRIS"), "0.0.0.0", False) is None
    assert health_check_warning(peers("PACS"), "0.0.0.0", tls=True) is None


def test_the_conformance_statement_names_real_settings() -> None:
    from oxidicom.app.conformance import ACCESS_REJECTIONS
    from oxidicom.app.settings import SETTINGS

    names = {setting.env for setting in SETTINGS}
    assert {setting.split("=")[0] for setting, _, _ in ACCESS_REJECTIONS} <= names
