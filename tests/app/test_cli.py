"""The command line as an operator meets it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from oxidicom.app.cli import FLAGS, build_parser, overrides_of, settings_help
from oxidicom.app.settings import (
    GROUPS,
    SETTINGS,
    Setting,
    SettingsError,
    describe_settings,
    group_of,
    load_settings,
)
from tests.dicom_factory import mr_instance, write_part10
from tests.integration.conftest import ECHOSCU, echoscu, require_tool
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


def _help() -> str:
    result = subprocess.run(
        [sys.executable, "-m", "oxidicom", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_help_lists_each_setting_once_under_the_heading_of_its_subject() -> None:
    text = _help()
    headings = {heading: group for group, heading in GROUPS}
    found: dict[str, str] = {}
    group = None
    for line in text.splitlines():
        if line.endswith(":") and line[:-1] in headings:
            group = headings[line[:-1]]
        match = re.match(r"  (OXIDICOM_\w+)", line)
        if match:
            assert match.group(1) not in found, f"{match.group(1)} listed twice"
            found[match.group(1)] = group or "(before any subject)"
    assert found == {s.env: group_of(s) for s in SETTINGS}
    # The subjects come in the order of GROUPS, the listener's port first of all.
    positions = [text.index(f"\n{heading}:\n") for _, heading in GROUPS if heading in text]
    assert positions == sorted(positions)
    listener = text.split(f"\n{GROUPS[0][1]}:\n")[1]
    assert listener.startswith("  OXIDICOM_LISTENER_PORT (flag: --port, the port argument)")


def test_every_setting_names_a_subject_of_its_own() -> None:
    known = {name for name, _ in GROUPS} - {"other"}
    assert [s.env for s in SETTINGS if s.group not in known] == []


def test_a_setting_added_without_a_subject_is_still_listed() -> None:
    extra = (
        Setting("OXIDICOM_SOMETHING_NEW", "something_new", str, "x", "a new knob"),
        Setting("OXIDICOM_DICOMWEB_NEW_LIMIT", "dicomweb_new", str, "1", "a new DICOMweb knob"),
    )
    text = settings_help((*SETTINGS, *extra))
    other = text.split("\nother settings:\n")[1]
    assert other.startswith("  OXIDICOM_SOMETHING_NEW\n      default: x\n      a new knob")
    dicomweb = text.split("\nthe DICOMweb STOW-RS listener:\n")[1].split("\n\n")[0]
    assert "OXIDICOM_DICOMWEB_NEW_LIMIT" in dicomweb


def test_help_shows_the_flags_with_their_variables_and_defaults() -> None:
    text = _help()
    assert text.startswith("usage: oxidicom [-h] [--version] [--port N] [--aet TITLE]")
    for flag in FLAGS:
        assert flag.options[0] in text
    assert re.search(
        r"--port N\s+TCP port to listen on \(\$OXIDICOM_LISTENER_PORT,\s+default: 11111\)", text
    )
    assert "our AE title ($OXIDICOM_SCP_AET, default: ChRIS)" in text
    assert "echo [host] [port]" in text


def test_flags_override_their_variables(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        ["104", "-aet", "STORESCP", "-od", str(tmp_path / "store"), "-d"]
    )
    environ = {
        "OXIDICOM_LISTENER_PORT": "11112",
        "OXIDICOM_SCP_AET": "FROMENV",
        "OXIDICOM_FILES_ROOT": str(tmp_path / "env"),
        "OXIDICOM_LOG_LEVEL": "WARNING",
    }
    settings = load_settings(environ, tmp_path, overrides_of(args))
    assert settings.listener_port == 104
    assert settings.scp_aet == "STORESCP"
    assert settings.files_root == str(tmp_path / "store")
    assert settings.log_level == "DEBUG"
    long_form = build_parser().parse_args(["--port", "105", "--aetitle", "A", "--verbose"])
    settings = load_settings(environ, tmp_path, overrides_of(long_form))
    assert (settings.listener_port, settings.scp_aet, settings.log_level) == (105, "A", "INFO")
    # Without flags the environment rules, as before.
    settings = load_settings(environ, tmp_path, overrides_of(build_parser().parse_args([])))
    assert (settings.listener_port, settings.scp_aet) == (11112, "FROMENV")


def test_the_port_given_twice_differently_is_refused() -> None:
    args = build_parser().parse_args(["104", "--port", "105"])
    with pytest.raises(SettingsError, match="the port is given twice"):
        overrides_of(args)
    same = build_parser().parse_args(["104", "--port", "104"])
    assert overrides_of(same)["OXIDICOM_LISTENER_PORT"].value == "104"


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["http"], "port='http' is not valid: expected a whole number from 0 to 65535"),
        (["--port", "70000"], "--port='70000' is not valid: expected a whole number"),
        (["-aet", "A\\B"], "--aet='A\\\\B' is not valid: expected 1 to 16 ASCII"),
        (["--output-dir", ""], "--output-dir='' is not valid: expected a non-empty value"),
        (["--output-dir", "."], "inside --output-dir='.', which is CUBE's storage"),
        (["-v", "-d"], "not allowed with argument -v/--verbose"),
        (["--colour"], "unrecognized arguments: --colour"),
    ],
)
def test_bad_flag_is_one_line_and_exit_status_2(
    tmp_path: Path, arguments: list[str], expected: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "oxidicom", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=_env(),
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("oxidicom: ")
    assert expected in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "oxidicom", "--version"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert result.stdout == f"oxidicom {metadata.version('oxidicom')}\n"


def test_storescp_style_command_line_serves_as_given(tmp_path: Path) -> None:
    """``oxidicom 0 -aet X -od DIR``: the flags win even over a variable that is invalid."""
    require_tool(ECHOSCU)
    store = tmp_path / "store"
    command = [sys.executable, "-m", "oxidicom", "0", "-aet", "FLAGGED", "-od", str(store)]
    running = start_receiver(
        tmp_path,
        {"OXIDICOM_LISTENER_PORT": "http", "OXIDICOM_SCP_CHECK_CALLED_AET": "true"},
        command=command,
    )
    try:
        line = running.wait_for_log("listening on").string
        refused = echoscu(running.port)  # called AE title ChRIS: not ours any more
        answered = subprocess.run(
            [ECHOSCU, "-aec", "FLAGGED", "127.0.0.1", str(running.port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        assert running.stop() == 0
    assert "as AE title 'FLAGGED'" in line and f"files under {store}" in line
    assert refused.returncode != 0
    assert answered.returncode == 0, answered.stderr
    assert store.is_dir()


def test_flags_reach_every_worker(tmp_path: Path) -> None:
    """Workers read the environment: the supervisor hands them the flags as variables."""
    require_tool(ECHOSCU)
    command = [sys.executable, "-m", "oxidicom", "--port", "0", "--aet", "WORKERS"]
    running = start_receiver(
        tmp_path,
        {"OXIDICOM_WORKERS": "2", "OXIDICOM_SCP_CHECK_CALLED_AET": "true"},
        command=command,
    )
    try:
        running.wait_for_log_count(r"listening on 127\.0\.0\.1:\d+ as AE title 'WORKERS'", 2)
        answers = [
            subprocess.run(
                [ECHOSCU, "-aec", "WORKERS", "127.0.0.1", str(running.port)],
                capture_output=True,
                text=True,
                timeout=60,
            )
            for _ in range(4)
        ]
    finally:
        assert running.stop() == 0
    assert [a.returncode for a in answers] == [0] * 4, [a.stderr for a in answers]


def test_echo_subcommand_still_comes_first(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "oxidicom", "echo", "127.0.0.1", "1", "--timeout", "5"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
    )
    assert result.returncode == 1
    assert result.stderr == "oxidicom echo: cannot connect to 127.0.0.1:1: Connection refused\n"


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
    # The failed start leaves no folder of its own behind (temporary files, journal);
    # with several workers, the port is bound before any is made.
    data = tmp_path / "oxidicom-data"
    for folder in (data / "files" / ".oxidicom-tmp", data / "outbox" / ".journal"):
        assert not folder.exists() or list(folder.iterdir()) == []


STORESCU = "/usr/bin/storescu"


def test_a_second_start_tells_the_truth_about_the_outbox(tmp_path: Path) -> None:
    """The registrations a running receiver keeps are not "from an earlier run"."""
    require_tool(STORESCU)
    uid = "1.2.826.0.1.3680043.8.498.23"
    series = tmp_path / "series"
    series.mkdir()
    write_part10(mr_instance(instance_number=1, series_uid=uid), series / "1.dcm")
    data = tmp_path / "data"
    env = {"OXIDICOM_SERIES_SETTLE": "0"}  # no broker: the registration stays in the outbox
    first = start_receiver(data, env)
    try:
        sent = subprocess.run(
            [STORESCU, "-aec", "ChRIS", "127.0.0.1", str(first.port), str(series / "1.dcm")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert sent.returncode == 0, sent.stderr
        first.wait_for_log(rf"registration of series {re.escape(uid)} .*in the outbox")
        # The same port: it cannot start, and says nothing of the first one's outbox.
        same_port = subprocess.run(
            [sys.executable, "-m", "oxidicom"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
            env=_env(
                OXIDICOM_FILES_ROOT=str(first.files_root),
                OXIDICOM_OUTBOX_DIR=str(first.outbox_dir),
                OXIDICOM_LISTENER_PORT=str(first.port),
                OXIDICOM_LISTENER_ADDRESS="127.0.0.1",
                OXIDICOM_LOG_FORMAT="text",
            ),
        )
        # Another port, the same outbox: it starts, and says whose they may be.
        beside = start_receiver(data, env)
        try:
            beside.wait_for_log(
                # The first receiver's processes (its workers, and this one's other).
                r"1 registration\(s\) wait in the outbox .*, which \d+ other running receiver"
                r" process\(es\) share: theirs, or from an earlier run"
            )
        finally:
            assert beside.stop() == 0
    finally:
        assert first.stop() == 0
    assert same_port.returncode == 1
    assert f"cannot listen on 127.0.0.1:{first.port}" in same_port.stderr
    assert "registration" not in same_port.stderr, same_port.stderr
    assert "from an earlier run wait" not in beside.log()
    # Once the first is gone, they are an earlier run's indeed; each of this one's
    # workers says so (a sibling worker is not another receiver).
    after = start_receiver(data, env)
    try:
        after.wait_for_log_count(
            r"1 registration\(s\) from an earlier run wait in the outbox", after.processes()
        )
    finally:
        assert after.stop() == 0
    assert "other running receiver" not in after.log()


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
