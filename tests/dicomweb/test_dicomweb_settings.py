"""The DICOMweb settings: off by default, never open to the network by accident."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import bcrypt
import pytest

from oxidicom.app.settings import SettingsError, is_loopback, load_settings

TOKEN = "0123456789abcdef0123456789abcdef"


def settings(tmp_path: Path, **env: str) -> object:
    return load_settings({f"OXIDICOM_{k}": v for k, v in env.items()}, cwd=tmp_path)


def test_off_unless_the_port_is_set(tmp_path: Path) -> None:
    s = settings(tmp_path)
    assert s.dicomweb_port is None  # type: ignore[attr-defined]


def test_loopback_needs_no_authentication(tmp_path: Path) -> None:
    s = settings(tmp_path, DICOMWEB_PORT="8042", DICOMWEB_ADDRESS="127.0.0.1")
    assert (s.dicomweb_port, s.dicomweb_pacs_name) == (8042, "DICOMWEB")  # type: ignore[attr-defined]


def test_the_network_without_authentication_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="OXIDICOM_DICOMWEB_ALLOW_ANONYMOUS"):
        settings(tmp_path, DICOMWEB_PORT="8042")  # default address: 0.0.0.0


def test_the_network_with_authentication_or_explicit_consent_is_allowed(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN)
    users = tmp_path / "users"
    users.write_text(f"LAB:{bcrypt.hashpw(b'x', bcrypt.gensalt(4)).decode()}\n")
    s = settings(tmp_path, DICOMWEB_PORT="8042", DICOMWEB_TOKEN_FILE=str(token))
    assert s.dicomweb_token == TOKEN  # type: ignore[attr-defined]
    s = settings(tmp_path, DICOMWEB_PORT="8042", DICOMWEB_USERS_FILE=str(users))
    assert list(s.dicomweb_users.hashes) == ["LAB"]  # type: ignore[attr-defined]
    s = settings(tmp_path, DICOMWEB_PORT="8042", DICOMWEB_ALLOW_ANONYMOUS="true")
    assert s.dicomweb_allow_anonymous  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DICOMWEB_PORT": "70000"}, "OXIDICOM_DICOMWEB_PORT='70000' is not valid"),
        ({"DICOMWEB_MAX_REQUEST_SIZE": "lots"}, "OXIDICOM_DICOMWEB_MAX_REQUEST_SIZE"),
        ({"DICOMWEB_PACS_NAME": "X" * 17}, "OXIDICOM_DICOMWEB_PACS_NAME"),
        ({"DICOMWEB_USERS_FILE": "/nonexistent"}, "OXIDICOM_DICOMWEB_USERS_FILE.*cannot read"),
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        settings(tmp_path, **env)


def test_dicomweb_with_several_workers_is_a_valid_setting(tmp_path: Path) -> None:
    """The first worker runs it (tests/integration/test_workers.py)."""
    s = settings(tmp_path, DICOMWEB_PORT="1", DICOMWEB_ADDRESS="::1", WORKERS="2")
    assert s.dicomweb_port == 1 and s.workers == 2  # type: ignore[attr-defined]


def test_max_request_size_units(tmp_path: Path) -> None:
    s = settings(tmp_path, DICOMWEB_MAX_REQUEST_SIZE="512MiB")
    assert s.dicomweb_max_request_size == 512 * 1024**2  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("pacs.example.org", False),
    ],
)
def test_is_loopback(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


def test_the_program_exits_2_with_one_line(tmp_path: Path) -> None:
    env = {"OXIDICOM_DICOMWEB_PORT": "8042", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "oxidicom"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "OXIDICOM_DICOMWEB_ADDRESS" in done.stderr
