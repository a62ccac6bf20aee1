"""The command line as an operator meets it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from oxidicom.app.settings import SETTINGS, describe_settings
from tests.integration.receiver import start_receiver

ROOT = Path(__file__).resolve().parents[2]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OXIDICOM_")}
    env.update(extra)
    return env


def test_help_lists_every_setting_with_its_default() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "oxidicom", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    for setting, (_, default, _) in zip(SETTINGS, describe_settings(), strict=True):
        assert setting.env in result.stdout
        assert f"default: {default}" in result.stdout


def test_bad_setting_is_one_line_and_exit_status_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "oxidicom"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=_env(OXIDICOM_LISTENER_PORT="http"),
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "OXIDICOM_LISTENER_PORT='http'" in lines[0]
    assert not (tmp_path / "oxidicom-data").exists()


def test_port_in_use_is_one_line_and_exit_status_1(tmp_path: Path) -> None:
    running = start_receiver(tmp_path / "first")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "oxidicom"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
            env=_env(
                OXIDICOM_LISTENER_PORT=str(running.port), OXIDICOM_LISTENER_ADDRESS="127.0.0.1"
            ),
        )
    finally:
        running.stop()
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert re.search(rf"cannot listen on 127\.0\.0\.1:{running.port}", result.stderr)
    # The failed start leaves no folder of its own behind (temporary files, journal).
    data = tmp_path / "oxidicom-data"
    assert list((data / "files" / ".oxidicom-tmp").iterdir()) == []
    assert list((data / "outbox" / ".journal").iterdir()) == []


def test_embedded_default_start_line_and_clean_sigterm(tmp_path: Path) -> None:
    running = start_receiver(tmp_path, {"OXIDICOM_FILES_ROOT": "", "OXIDICOM_OUTBOX_DIR": ""})
    start = running.wait_for_log("listening on")
    assert start is not None
    line = next(line for line in running.lines if "listening on" in line)
    assert "as AE title 'ChRIS'" in line
    assert str(tmp_path / "oxidicom-data" / "files") in line
    assert "no Celery broker" in line and "no NATS" in line
    assert running.stop() == 0
    assert (tmp_path / "oxidicom-data" / "files").is_dir()


def test_module_and_console_script_are_the_same_program() -> None:
    script = Path(sys.executable).parent / "oxidicom"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "OXIDICOM_FILES_ROOT" in result.stdout


def test_a_broker_of_the_wrong_protocol_stops_the_start_with_one_line(tmp_path: Path) -> None:
    """Never a retry loop against the wrong protocol: one line, exit status 2, at once."""
    for url, says in (
        ("kafka://broker:9092", "'kafka://' is not a broker this receiver speaks"),
        ("redis://dragonflydb:6379/zero", "the database 'zero' is not a number"),
        ("dragonflydb:6379", "no scheme"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "oxidicom"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
            env=_env(OXIDICOM_CELERY_BROKER=url),
        )
        assert result.returncode == 2, result.stderr
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith(f"oxidicom: OXIDICOM_CELERY_BROKER={url!r} is not valid: ")
        assert says in line
        assert (
            "amqp://, amqps:// (RabbitMQ) or redis://, rediss:// (Redis, DragonflyDB)" in line
            or ("database" in says)
        )
