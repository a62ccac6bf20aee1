from __future__ import annotations

from pathlib import Path

import pytest

from oxidicom.app.settings import SETTINGS, SettingsError, load_settings
from oxidicom.support.durations import parse_duration


def test_empty_environment_gives_the_embedded_default(tmp_path: Path) -> None:
    settings = load_settings({}, cwd=tmp_path)
    assert settings.files_root == str(tmp_path / "oxidicom-data" / "files")
    assert settings.outbox_dir == str(tmp_path / "oxidicom-data" / "outbox")
    assert settings.celery_broker is None
    assert settings.embedded
    assert settings.listener_port == 11111
    assert settings.scp_aet == "ChRIS"
    assert settings.queue_name == "main2"
    assert settings.root_subject == "oxidicom"
    assert settings.progress_interval == 0.5
    assert settings.max_associations == 8
    assert settings.scp_strict is False
    assert settings.nats_address is None
    assert settings.dev_sleep is None


def test_reference_variables_are_read(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "OXIDICOM_FILES_ROOT": "/data",
            "OXIDICOM_AMQP_ADDRESS": "amqp://guest:guest@rabbit:5672",
            "OXIDICOM_QUEUE_NAME": "q",
            "OXIDICOM_NATS_ADDRESS": "nats:4222",
            "OXIDICOM_ROOT_SUBJECT": "root",
            "OXIDICOM_PROGRESS_INTERVAL": "1m 30s",
            "OXIDICOM_SCP_AET": "OXI",
            "OXIDICOM_SCP_STRICT": "YES",
            "OXIDICOM_SCP_UNCOMPRESSED_ONLY": "1",
            "OXIDICOM_SCP_PROMISCUOUS": "True",
            "OXIDICOM_SCP_MAX_PDU_LENGTH": "65536",
            "OXIDICOM_LISTENER_THREADS": "32",
            "OXIDICOM_LISTENER_PORT": "4242",
            "OXIDICOM_DEV_SLEEP": "5ms",
        },
        cwd=tmp_path,
    )
    assert settings.files_root == "/data"
    assert settings.celery_broker == "amqp://guest:guest@rabbit:5672"
    assert settings.queue_name == "q"
    assert settings.nats_address == "nats:4222"
    assert settings.root_subject == "root"
    assert settings.progress_interval == 90.0
    assert settings.scp_aet == "OXI"
    assert settings.scp_strict and settings.scp_uncompressed_only and settings.scp_promiscuous
    assert settings.scp_max_pdu_length == 65536
    assert settings.max_associations == 32
    assert settings.listener_port == 4242
    assert settings.dev_sleep == pytest.approx(0.005)


def test_celery_broker_is_the_setting_and_amqp_address_its_alias(tmp_path: Path) -> None:
    settings = load_settings({"OXIDICOM_CELERY_BROKER": "amqp://b"}, cwd=tmp_path)
    assert settings.celery_broker == "amqp://b"
    settings = load_settings({"OXIDICOM_AMQP_ADDRESS": "amqp://old"}, cwd=tmp_path)
    assert settings.celery_broker == "amqp://old"
    both = {"OXIDICOM_CELERY_BROKER": "redis://new/0", "OXIDICOM_AMQP_ADDRESS": "amqp://old"}
    assert load_settings(both, cwd=tmp_path).celery_broker == "redis://new/0"


def test_a_broker_url_of_another_scheme_is_refused_naming_the_variable(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"^OXIDICOM_CELERY_BROKER='kafka://k:9092' is not"):
        load_settings({"OXIDICOM_CELERY_BROKER": "kafka://k:9092"}, cwd=tmp_path)
    with pytest.raises(SettingsError, match=r"^OXIDICOM_AMQP_ADDRESS='dragonflydb:6379' is not"):
        load_settings({"OXIDICOM_AMQP_ADDRESS": "dragonflydb:6379"}, cwd=tmp_path)


@pytest.mark.parametrize(
    ("name", "value", "hint"),
    [
        ("OXIDICOM_SCP_STRICT", "maybe", "true/false"),
        ("OXIDICOM_LISTENER_PORT", "70000", "0 to 65535"),
        ("OXIDICOM_LISTENER_PORT", "eleven", "whole number"),
        ("OXIDICOM_PROGRESS_INTERVAL", "500", "500ms"),
        ("OXIDICOM_SCP_AET", "A_TITLE_LONGER_THAN_16", "16"),
        ("OXIDICOM_SCP_MAX_PDU_LENGTH", "100", "4096"),
        ("OXIDICOM_LOG_LEVEL", "loud", "INFO"),
    ],
)
def test_bad_values_name_the_variable_the_value_and_what_is_valid(
    tmp_path: Path, name: str, value: str, hint: str
) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings({name: value}, cwd=tmp_path)
    message = str(error.value)
    assert name in message and repr(value) in message and hint in message
    assert "\n" not in message


def test_outbox_inside_files_root_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="CUBE's storage"):
        load_settings(
            {"OXIDICOM_FILES_ROOT": str(tmp_path), "OXIDICOM_OUTBOX_DIR": str(tmp_path / "o")},
            cwd=tmp_path,
        )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5ms", 0.005), ("2s", 2.0), ("1m 30s", 90.0), ("1h30m", 5400.0), ("500ms", 0.5)],
)
def test_humantime_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "ms", "5 parsecs", "-1s", "1.5s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_every_setting_has_a_unique_variable_and_field() -> None:
    assert len({s.env for s in SETTINGS}) == len(SETTINGS)
    assert len({s.field for s in SETTINGS}) == len(SETTINGS)


@pytest.mark.parametrize(
    ("environment", "store"),
    [
        ({}, None),
        ({"OXIDICOM_CELERY_BROKER": "redis://dragonflydb:6379/0"}, "redis://dragonflydb:6379/0"),
        ({"OXIDICOM_CELERY_BROKER": "rediss://cache:6380/2"}, "rediss://cache:6380/2"),
        ({"OXIDICOM_CELERY_BROKER": "amqp://guest:guest@rabbitmq:5672"}, None),
        (
            {
                "OXIDICOM_CELERY_BROKER": "redis://dragonflydb:6379/0",
                "OXIDICOM_SERIES_STORE": "none",
            },
            None,
        ),
        (
            {"OXIDICOM_CELERY_BROKER": "redis://a:6379/0", "OXIDICOM_SERIES_STORE": "redis://b/1"},
            "redis://b/1",
        ),
        ({"OXIDICOM_SERIES_STORE": "NONE"}, None),
    ],
    ids=["nothing", "redis-broker", "rediss-broker", "amqp-broker", "none", "another", "NONE"],
)
def test_the_series_store_is_the_redis_broker_unless_said_otherwise(
    tmp_path: Path, environment: dict[str, str], store: str | None
) -> None:
    from oxidicom.notify.broker_url import series_store_url

    assert series_store_url(load_settings(environment, cwd=tmp_path)) == store
