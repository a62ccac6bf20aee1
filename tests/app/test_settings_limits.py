"""The robustness settings: defaults, ranges, and the TLS settings that go together."""

from __future__ import annotations

from pathlib import Path

import pytest

from oxidicom.app.settings import SettingsError, load_settings


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings({}, cwd=tmp_path)
    assert settings.max_command_set_length == 64 * 1024
    assert settings.max_pending_connections == 64
    assert settings.fsync is True
    assert settings.tls_certificate is None
    assert settings.tls_key is None
    assert settings.tls_client_ca is None


def test_values_are_read(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "OXIDICOM_MAX_COMMAND_SET_LENGTH": "2048",
            "OXIDICOM_MAX_PENDING_CONNECTIONS": "5",
            "OXIDICOM_FSYNC": "no",
            "OXIDICOM_TLS_CERTIFICATE": "/etc/oxidicom/cert.pem",
            "OXIDICOM_TLS_KEY": "/etc/oxidicom/key.pem",
            "OXIDICOM_TLS_CLIENT_CA": "/etc/oxidicom/ca.pem",
        },
        cwd=tmp_path,
    )
    assert settings.max_command_set_length == 2048
    assert settings.max_pending_connections == 5
    assert settings.fsync is False
    assert settings.tls_certificate == "/etc/oxidicom/cert.pem"
    assert settings.tls_key == "/etc/oxidicom/key.pem"
    assert settings.tls_client_ca == "/etc/oxidicom/ca.pem"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"OXIDICOM_MAX_COMMAND_SET_LENGTH": "10"}, "OXIDICOM_MAX_COMMAND_SET_LENGTH='10'"),
        ({"OXIDICOM_MAX_PENDING_CONNECTIONS": "0"}, "OXIDICOM_MAX_PENDING_CONNECTIONS='0'"),
        ({"OXIDICOM_FSYNC": "maybe"}, "OXIDICOM_FSYNC='maybe'"),
        ({"OXIDICOM_MIN_TRANSFER_RATE": "fast"}, "OXIDICOM_MIN_TRANSFER_RATE='fast'"),
        ({"OXIDICOM_MIN_TRANSFER_RATE": "-1KiB/s"}, "expected a rate from 0 to 1GiB/s"),
        ({"OXIDICOM_TLS_KEY": "k.pem"}, "OXIDICOM_TLS_KEY is set but OXIDICOM_TLS_CERTIFICATE"),
        ({"OXIDICOM_TLS_CLIENT_CA": "c.pem"}, "OXIDICOM_TLS_CLIENT_CA is set but"),
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, environ: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        load_settings(environ, cwd=tmp_path)


@pytest.mark.parametrize(
    ("text", "bytes_per_second"),
    [
        (None, 8 * 1024),
        ("0", 0),
        ("500", 500),
        ("64kB/s", 64_000),
        ("8 KiB/s", 8 * 1024),
        ("1.5MiB", 1536 * 1024),
        ("2MB/s", 2_000_000),
    ],
)
def test_the_minimum_transfer_rate_takes_units(
    tmp_path: Path, text: str | None, bytes_per_second: int
) -> None:
    environ = {} if text is None else {"OXIDICOM_MIN_TRANSFER_RATE": text}
    assert load_settings(environ, cwd=tmp_path).min_transfer_rate == bytes_per_second
