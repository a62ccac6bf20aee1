"""Settings from the environment, parsed and validated once at start.

The variables and defaults of the reference receiver (CONTRACT section 1) come
first; ours follow. :data:`SETTINGS` is the one list: the parser, ``--help`` and
the table of docs/settings.md are all made from it.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import msgspec

from oxidicom.dicomweb.auth import Users, parse_token_file, parse_users_file
from oxidicom.notify.broker_url import parse_broker_url
from oxidicom.scp.access import (
    AllowedPeers,
    ClientAETitles,
    check_ae_title,
    parse_allowed_peers,
    parse_client_aets,
)
from oxidicom.scp.request_rate import RequestRate, parse_request_rate
from oxidicom.support.durations import parse_duration

#: Where the embedded default stores everything, relative to the current directory.
EMBEDDED_DATA_DIR = "oxidicom-data"


class SettingsError(ValueError):
    """A bad value: one line naming the variable, the value and what would be valid."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Every setting, typed. Durations are in seconds."""

    files_root: str
    celery_broker: str | None
    queue_name: str
    nats_address: str | None
    root_subject: str
    progress_interval: float
    scp_aet: str
    scp_strict: bool
    scp_uncompressed_only: bool
    scp_promiscuous: bool
    scp_max_pdu_length: int
    max_associations: int
    listener_port: int
    dev_sleep: float | None
    listener_address: str
    outbox_dir: str
    artim_timeout: float
    idle_timeout: float
    pdu_hard_cap: int
    max_command_set_length: int
    max_pending_connections: int
    #: Bytes per second; 0 disables preemption.
    min_transfer_rate: int
    #: A-ASSOCIATE-RQs one address may send (a token bucket per address); None: no limit.
    max_association_rate: RequestRate | None
    fsync: bool
    #: Receiver processes; None: auto (oxidicom/app/worker_count.py decides).
    workers: int | None = None
    tls_certificate: str | None
    tls_key: str | None
    tls_client_ca: str | None
    shutdown_timeout: float
    log_level: str
    log_format: str = "auto"
    scp_allowed_peers: AllowedPeers | None = None
    scp_check_called_aet: bool = False
    tls_client_aets: ClientAETitles | None = None
    #: Seconds a series must be quiet before it is registered; 0: per association.
    series_settle: float = 2.0
    #: Where replicas on several hosts hold series (a redis:// URL); None: the Celery
    #: broker's URL when it is Redis; "none": no store (holds shared by one host's outbox).
    series_store: str | None = None
    #: How long a replica's hold on a series outlives its last renewal in the store.
    series_lease: float = 30.0
    #: DICOMweb STOW-RS (oxidicom/dicomweb); no listener when the port is None.
    dicomweb_port: int | None = None
    dicomweb_address: str = "0.0.0.0"
    dicomweb_pacs_name: str = "DICOMWEB"
    dicomweb_max_request_size: int = 4 * 1024**3
    dicomweb_users: Users | None = None
    #: The bearer token itself (read from OXIDICOM_DICOMWEB_TOKEN_FILE at start).
    dicomweb_token: str | None = None
    dicomweb_allow_anonymous: bool = False
    dicomweb_header_timeout: float = 10.0
    dicomweb_keepalive_timeout: float = 15.0
    dicomweb_max_parts: int = 10_000
    #: Not an environment variable: fitted to the descriptor limit at start
    #: (oxidicom.app.descriptors).
    listen_backlog: int = 512

    @property
    def embedded(self) -> bool:
        """True when no broker is configured (registrations stay in the outbox)."""
        return self.celery_broker is None


_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _bool(text: str) -> bool:
    try:
        return _BOOLEANS[text.strip().lower()]
    except KeyError:
        raise ValueError("expected true/false/1/0/yes/no") from None


def _int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError(f"expected a whole number from {low} to {high}") from None
        if not low <= value <= high:
            raise ValueError(f"expected a whole number from {low} to {high}")
        return value

    return parse


def _workers(text: str) -> int | None:
    value = text.strip().lower()
    if value == "auto":
        return None
    return _int_between(1, MAX_WORKERS)(value)


#: More worker processes than this is a typo, not a plan.
MAX_WORKERS = 64


def _ae_title(text: str) -> str:
    return check_ae_title(text)


_RATE_UNITS = {"": 1, "b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2}


def _byte_rate(text: str) -> int:
    """``8KiB/s``, ``64 kB/s``, ``1MiB``, ``500`` (bytes per second; ``/s`` optional)."""
    value = text.strip().lower().removesuffix("/s").strip()
    number = value.rstrip("abcdefghijklmnopqrstuvwxyz").strip()
    unit = value[len(number) :].strip()
    try:
        rate = float(number) * _RATE_UNITS[unit]
    except (KeyError, ValueError):
        raise ValueError("expected a rate such as 8KiB/s, 64kB/s, 1MiB/s or 0") from None
    if not 0 <= rate <= 1024**3:
        raise ValueError("expected a rate from 0 to 1GiB/s")
    return round(rate)


_SIZE_UNITS = {"": 1, "b": 1, "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}


def _byte_size(text: str) -> int:
    """``4GiB``, ``512MiB``, ``1048576`` (bytes)."""
    value = text.strip().lower()
    number = value.rstrip("abcdefghijklmnopqrstuvwxyz").strip()
    try:
        size = round(float(number) * _SIZE_UNITS[value[len(number) :].strip()])
    except (KeyError, ValueError):
        raise ValueError("expected a size such as 4GiB, 512MiB or 1048576") from None
    if not 1024 <= size <= 1024**5:
        raise ValueError("expected a size from 1KiB to 1PiB")
    return size


def _broker_url(text: str) -> str:
    return parse_broker_url(_text(text)).url


def _users_file(text: str) -> Users:
    return parse_users_file(_text(text))


def _token_file(text: str) -> str:
    return parse_token_file(_text(text))


def _duration(text: str) -> float:
    return parse_duration(text)


def _duration_or_zero(text: str) -> float:
    return 0.0 if text.strip() == "0" else parse_duration(text)


def _series_store(text: str) -> str:
    value = text.strip()
    if value.lower() == "none":
        return "none"
    try:
        url = parse_broker_url(value)
    except ValueError:
        url = None
    if url is None or url.kind != "redis":
        raise ValueError("expected a redis:// or rediss:// URL (Redis, DragonflyDB), or none")
    return url.url


def _text(text: str) -> str:
    if not text.strip():
        raise ValueError("expected a non-empty value")
    return text.strip()


def _log_format(text: str) -> str:
    value = text.strip().lower()
    if value not in ("auto", "json", "text"):
        raise ValueError("expected auto, json or text")
    return value


def _log_level(text: str) -> str:
    level = text.strip().upper()
    if level not in _LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(_LOG_LEVELS)}")
    return level


@dataclass(frozen=True)
class Setting:
    """One environment variable: its field, parser, default (as text) and meaning."""

    env: str
    field: str
    parse: Callable[[str], object]
    default: str | None
    help: str
    aliases: tuple[str, ...] = ()
    #: Shown instead of ``default`` in help when the default is computed.
    default_help: str | None = None
    #: The subject it is listed under in ``--help`` (one of :data:`GROUPS`).
    group: str = ""


#: The subjects of ``--help``, in order: (name, heading).
GROUPS: tuple[tuple[str, str], ...] = (
    ("listener", "the DICOM listener (port, AE title, what it accepts, processes)"),
    ("storage", "storage (CUBE's files, the registration outbox)"),
    ("CUBE", "telling CUBE (the Celery broker; LONK progress over NATS)"),
    ("limits", "limits and timeouts"),
    ("TLS", "DICOM TLS"),
    ("access", "access control (which peers may associate)"),
    ("DICOMweb", "the DICOMweb STOW-RS listener"),
    ("telemetry", "logs and telemetry (OpenTelemetry export: the standard OTEL_* variables)"),
    ("other", "other settings"),
)
_GROUP_NAMES = frozenset(name for name, _ in GROUPS)
#: For a row added without a group: its subject guessed from its name, else "other".
_PREFIX_GROUPS = (
    ("OXIDICOM_DICOMWEB_", "DICOMweb"),
    ("OXIDICOM_TLS_", "TLS"),
    ("OXIDICOM_CELERY_", "CUBE"),
    ("OXIDICOM_NATS_", "CUBE"),
    ("OXIDICOM_AMQP_", "CUBE"),
    ("OXIDICOM_LOG_", "telemetry"),
    ("OXIDICOM_MAX_", "limits"),
)


def group_of(setting: Setting) -> str:
    """The ``--help`` subject of a setting: its own, else one its name implies, else other."""
    if setting.group in _GROUP_NAMES:
        return setting.group
    for prefix, group in _PREFIX_GROUPS:
        if setting.env.startswith(prefix):
            return group
    return "other"


_KIB = 1024
SETTINGS: tuple[Setting, ...] = (
    Setting(
        "OXIDICOM_FILES_ROOT",
        "files_root",
        _text,
        None,
        "directory where CUBE's storage is mounted; files go under SERVICES/PACS/",
        default_help=f"./{EMBEDDED_DATA_DIR}/files",
        group="storage",
    ),
    Setting(
        "OXIDICOM_CELERY_BROKER",
        "celery_broker",
        _broker_url,
        None,
        "URL of the broker of CUBE's Celery workers (CUBE's CELERY_BROKER_URL):"
        " redis://[[user]:password@]host[:port][/db] or rediss:// for Redis or DragonflyDB,"
        " amqp:// or amqps:// for RabbitMQ; unset: registrations stay in the outbox",
        aliases=("OXIDICOM_AMQP_ADDRESS",),
        default_help="unset",
        group="CUBE",
    ),
    Setting(
        "OXIDICOM_QUEUE_NAME",
        "queue_name",
        _text,
        "main2",
        "Celery queue of the registration task",
        group="CUBE",
    ),
    Setting(
        "OXIDICOM_NATS_ADDRESS",
        "nats_address",
        _text,
        None,
        "NATS server for LONK progress messages; unset: none are sent",
        default_help="unset",
        group="CUBE",
    ),
    Setting(
        "OXIDICOM_ROOT_SUBJECT",
        "root_subject",
        _text,
        "oxidicom",
        "first token of every NATS subject",
        group="CUBE",
    ),
    Setting(
        "OXIDICOM_PROGRESS_INTERVAL",
        "progress_interval",
        _duration,
        "500ms",
        "minimum gap between optional progress messages of one series (humantime)",
        group="CUBE",
    ),
    Setting(
        "OXIDICOM_SERIES_SETTLE",
        "series_settle",
        _duration_or_zero,
        "2s",
        "a series is registered (and gets its LONK done) once no association stores into"
        " it and it has been quiet this long, so one sent over several associations is"
        " registered once, whole (humantime); 0: when each association ends, its part of"
        " the series (the Rust receiver's behaviour)",
        group="CUBE",
    ),
    Setting(
        "OXIDICOM_SERIES_STORE",
        "series_store",
        _series_store,
        None,
        "Redis-protocol server (redis:// or rediss:// URL; Redis, DragonflyDB) where replicas"
        " on several hosts hold the series they receive, so that a series split across"
        " replicas is registered once, whole; default: the Celery broker's URL when it is"
        " Redis (redis:// or rediss://), otherwise none; none: no store (series are then"
        " shared only by processes with one outbox, which one replica alone needs)",
        default_help="the broker if Redis",
        group="CUBE",
    ),
    Setting(
        "OXIDICOM_SERIES_LEASE",
        "series_lease",
        _duration,
        "30s",
        "with a series store: a replica's hold on a series lasts this long past its last"
        " renewal (renewed every third of it); a replica silent longer is taken for dead"
        " and another registers its series (humantime)",
        group="CUBE",
    ),
    Setting("OXIDICOM_SCP_AET", "scp_aet", _ae_title, "ChRIS", "our AE title", group="listener"),
    Setting(
        "OXIDICOM_SCP_ALLOWED_PEERS",
        "scp_allowed_peers",
        parse_allowed_peers,
        None,
        "comma-separated AET or AET@HOST (HOST: an address, a CIDR or a host name,"
        " resolved at start): only these calling AE titles, from these hosts, may"
        " associate; others get A-ASSOCIATE-RJ (calling AE title not recognized);"
        " unset: anyone",
        default_help="unset",
        group="access",
    ),
    Setting(
        "OXIDICOM_SCP_CHECK_CALLED_AET",
        "scp_check_called_aet",
        _bool,
        "false",
        "reject a called AE title other than OXIDICOM_SCP_AET (A-ASSOCIATE-RJ, called"
        " AE title not recognized)",
        group="access",
    ),
    Setting(
        "OXIDICOM_SCP_STRICT",
        "scp_strict",
        _bool,
        "false",
        "abort when a P-DATA-TF PDU exceeds the maximum length we advertised",
        group="limits",
    ),
    Setting(
        "OXIDICOM_SCP_UNCOMPRESSED_ONLY",
        "scp_uncompressed_only",
        _bool,
        "false",
        "accept only implicit and explicit VR little endian",
        group="listener",
    ),
    Setting(
        "OXIDICOM_SCP_PROMISCUOUS",
        "scp_promiscuous",
        _bool,
        "false",
        "accept abstract syntaxes that are not standard storage SOP classes",
        group="listener",
    ),
    Setting(
        "OXIDICOM_SCP_MAX_PDU_LENGTH",
        "scp_max_pdu_length",
        _int_between(4 * _KIB, 16 * _KIB * _KIB),
        str(128 * _KIB),
        "maximum PDU length we advertise (bytes)",
        group="limits",
    ),
    Setting(
        "OXIDICOM_LISTENER_THREADS",
        "max_associations",
        _int_between(1, 100_000),
        "8",
        "maximum number of concurrent associations; one more preempts the slowest below"
        " OXIDICOM_MIN_TRANSFER_RATE, else gets A-ASSOCIATE-RJ (transient, local limit"
        " exceeded)",
        group="limits",
    ),
    Setting(
        "OXIDICOM_LISTENER_PORT",
        "listener_port",
        _int_between(0, 65535),
        "11111",
        "TCP port (0: any free port)",
        group="listener",
    ),
    Setting(
        "OXIDICOM_DEV_SLEEP",
        "dev_sleep",
        _duration,
        None,
        "delay after each NATS message, for UI development only",
        default_help="unset",
        group="CUBE",
    ),
    Setting(
        "OXIDICOM_LISTENER_ADDRESS",
        "listener_address",
        _text,
        "0.0.0.0",
        "address to listen on",
        group="listener",
    ),
    Setting(
        "OXIDICOM_OUTBOX_DIR",
        "outbox_dir",
        _text,
        None,
        "directory of the registration outbox (must not be inside FILES_ROOT)",
        default_help=f"./{EMBEDDED_DATA_DIR}/outbox",
        group="storage",
    ),
    Setting(
        "OXIDICOM_ARTIM_TIMEOUT",
        "artim_timeout",
        _duration,
        "30s",
        "ARTIM: time allowed for the association request after connect, and for the"
        " peer to close after release or abort",
        group="limits",
    ),
    Setting(
        "OXIDICOM_IDLE_TIMEOUT",
        "idle_timeout",
        _duration,
        "60s",
        "an established association must complete a PDU at least this often",
        group="limits",
    ),
    Setting(
        "OXIDICOM_PDU_HARD_CAP",
        "pdu_hard_cap",
        _int_between(4 * _KIB, 0xFFFFFFFF),
        str(16 * _KIB * _KIB),
        "largest P-DATA-TF accepted when not strict (bytes)",
        group="limits",
    ),
    Setting(
        "OXIDICOM_MAX_COMMAND_SET_LENGTH",
        "max_command_set_length",
        _int_between(_KIB, 16 * _KIB * _KIB),
        str(64 * _KIB),
        "largest DIMSE command set accepted (bytes); beyond it A-ABORT",
        group="limits",
    ),
    Setting(
        "OXIDICOM_MAX_PENDING_CONNECTIONS",
        "max_pending_connections",
        _int_between(1, 100_000),
        "64",
        "connections without an association (in the TLS handshake, not yet requested,"
        " rejected, ended) kept open at once, and as many HTTP connections without a running"
        " request; beyond it the oldest is closed; lowered at start if the descriptor limit"
        " (raised to its hard limit) cannot hold them",
        group="limits",
    ),
    Setting(
        "OXIDICOM_MIN_TRANSFER_RATE",
        "min_transfer_rate",
        _byte_rate,
        "8KiB/s",
        "when every association slot is taken, a new association request preempts"
        " (A-ABORT) the running association receiving least, if it received less than this"
        " over the last 10 s (B/s, kB/s, KiB/s, MB/s, MiB/s), else an association of the"
        " host holding most slots (young ones too) if the newcomer's host holds at least"
        " two fewer; 0: never, reject instead",
        group="limits",
    ),
    Setting(
        "OXIDICOM_MAX_ASSOCIATION_RATE",
        "max_association_rate",
        parse_request_rate,
        "100/s",
        "association requests one address may send: N/s or N/min, at most N at once and"
        " then N per second (minute); beyond, A-ASSOCIATE-RJ (transient, temporary"
        " congestion) before any slot is looked at; 0: no limit",
        group="limits",
    ),
    Setting(
        "OXIDICOM_FSYNC",
        "fsync",
        _bool,
        "true",
        "fsync each file before answering success (survives a power cut;"
        " skipped on tmpfs, where it does nothing)",
        group="storage",
    ),
    Setting(
        "OXIDICOM_WORKERS",
        "workers",
        _workers,
        "auto",
        "receiver processes sharing the listening port; auto: one per CPU this process"
        " may use (its cgroup's quota included), but one alone when LONK progress goes"
        " to NATS without a series store to count a series across processes; at most"
        " one per 4 association slots, each holding its part of them",
        group="listener",
    ),
    Setting(
        "OXIDICOM_TLS_CERTIFICATE",
        "tls_certificate",
        _text,
        None,
        "PEM certificate (chain) of a DICOM TLS listener; unset: plain TCP",
        default_help="unset",
        group="TLS",
    ),
    Setting(
        "OXIDICOM_TLS_KEY",
        "tls_key",
        _text,
        None,
        "PEM private key of the certificate; unset: read from the certificate file",
        default_help="unset",
        group="TLS",
    ),
    Setting(
        "OXIDICOM_TLS_CLIENT_CA",
        "tls_client_ca",
        _text,
        None,
        "PEM CA certificate(s); when set, clients must present a certificate it signed",
        default_help="unset",
        group="TLS",
    ),
    Setting(
        "OXIDICOM_TLS_CLIENT_AETS",
        "tls_client_aets",
        parse_client_aets,
        None,
        "comma-separated IDENTITY=AET (IDENTITY: a client certificate's subject CN or"
        " subjectAltName DNS name): the calling AE titles each certificate may use;"
        " others get A-ASSOCIATE-RJ (calling AE title not recognized); needs"
        " OXIDICOM_TLS_CLIENT_CA; unset: any",
        default_help="unset",
        group="access",
    ),
    Setting(
        "OXIDICOM_DICOMWEB_PORT",
        "dicomweb_port",
        _int_between(0, 65535),
        None,
        "TCP port of the DICOMweb STOW-RS listener (POST /dicom-web/studies); unset: none"
        " (0: any free port)",
        default_help="unset",
        group="DICOMweb",
    ),
    Setting(
        "OXIDICOM_DICOMWEB_ADDRESS",
        "dicomweb_address",
        _text,
        "0.0.0.0",
        "address of the DICOMweb listener; other than loopback, it needs"
        " OXIDICOM_DICOMWEB_USERS_FILE or OXIDICOM_DICOMWEB_TOKEN_FILE, or"
        " OXIDICOM_DICOMWEB_ALLOW_ANONYMOUS=true",
        group="DICOMweb",
    ),
    Setting(
        "OXIDICOM_DICOMWEB_PACS_NAME",
        "dicomweb_pacs_name",
        _ae_title,
        "DICOMWEB",
        "pacs_name (the {pacs} folder) of what arrives over DICOMweb, unless a user of"
        " OXIDICOM_DICOMWEB_USERS_FILE sent it: then the user's name",
        group="DICOMweb",
    ),
    Setting(
        "OXIDICOM_DICOMWEB_MAX_REQUEST_SIZE",
        "dicomweb_max_request_size",
        _byte_size,
        "4GiB",
        "largest STOW-RS request body (KiB, MiB, GiB); above it: 413",
        group="DICOMweb",
    ),
    Setting(
        "OXIDICOM_DICOMWEB_MAX_PARTS",
        "dicomweb_max_parts",
        _int_between(1, 1_000_000),
        "10000",
        "most parts (instances) in one STOW-RS request; the parts before are stored and"
        " answered, the request ends with 413",
        group="DICOMweb",
    ),
    Setting(
        "OXIDICOM_DICOMWEB_HEADER_TIMEOUT",
        "dicomweb_header_timeout",
        _duration,
        "10s",
        "a new HTTP connection must send its request line and headers within this, else it"
        " is closed",
        group="DICOMweb",
    ),
    Setting(
        "OXIDICOM_DICOMWEB_KEEPALIVE_TIMEOUT",
        "dicomweb_keepalive_timeout",
        _duration,
        "15s",
        "after a response, the connection is closed unless the next request's line and"
        " headers arrive within this",
        group="DICOMweb",
    ),
    Setting(
        "OXIDICOM_DICOMWEB_USERS_FILE",
        "dicomweb_users",
        _users_file,
        None,
        "file of name:hash lines (bcrypt or argon2) for HTTP Basic authentication; the"
        " name must be a valid AE title and becomes the pacs_name",
        default_help="unset",
        group="DICOMweb",
    ),
    Setting(
        "OXIDICOM_DICOMWEB_TOKEN_FILE",
        "dicomweb_token",
        _token_file,
        None,
        "file holding a bearer token (its first line, at least 32 characters) that"
        " authenticates as OXIDICOM_DICOMWEB_PACS_NAME",
        default_help="unset",
        group="DICOMweb",
    ),
    Setting(
        "OXIDICOM_DICOMWEB_ALLOW_ANONYMOUS",
        "dicomweb_allow_anonymous",
        _bool,
        "false",
        "let a DICOMweb listener on a non-loopback address run without authentication",
        group="DICOMweb",
    ),
    Setting(
        "OXIDICOM_SHUTDOWN_TIMEOUT",
        "shutdown_timeout",
        _duration,
        "30s",
        "on SIGTERM/SIGINT, how long running associations may take to finish",
        group="listener",
    ),
    Setting(
        "OXIDICOM_LOG_LEVEL",
        "log_level",
        _log_level,
        "INFO",
        "DEBUG, INFO, WARNING or ERROR",
        group="telemetry",
    ),
    Setting(
        "OXIDICOM_LOG_FORMAT",
        "log_format",
        _log_format,
        "auto",
        "json (one JSON object a line), text, or auto: text on a terminal, json otherwise",
        group="telemetry",
    ),
)


def _computed_defaults(values: dict[str, object], cwd: Path) -> None:
    data = cwd / EMBEDDED_DATA_DIR
    if values["files_root"] is None:
        values["files_root"] = str(data / "files")
    if values["outbox_dir"] is None:
        values["outbox_dir"] = str(data / "outbox")


@dataclass(frozen=True)
class Override:
    """A setting given on the command line: it wins over the environment variable."""

    #: How the operator wrote it, for messages (``--port``, ``port``).
    flag: str
    value: str


def load_settings(
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    overrides: Mapping[str, Override] | None = None,
) -> Settings:
    """Read every setting; raise :class:`SettingsError` on the first bad value.

    ``overrides``: values from the command line, by variable name; each is parsed and
    judged exactly as its variable would be, and named as the operator wrote it.
    """
    env = os.environ if environ is None else environ
    given = overrides or {}
    values: dict[str, object] = {}
    names: dict[str, str] = {}
    for setting in SETTINGS:
        name = setting.env
        raw = env.get(name)
        for alias in setting.aliases:
            if raw is None and env.get(alias) is not None:
                name, raw = alias, env[alias]
        override = given.get(setting.env)
        if override is not None:
            name, raw = override.flag, override.value
        elif raw is None or (raw == "" and setting.default is None):
            raw = setting.default
            name = f"{name} (default)"
        names[setting.field] = name
        if raw is None:
            values[setting.field] = None
            continue
        try:
            values[setting.field] = setting.parse(raw)
        except ValueError as error:
            raise SettingsError(f"{name}={raw!r} is not valid: {error}") from None
    _computed_defaults(values, cwd or Path.cwd())
    settings = Settings(**values)  # type: ignore[arg-type]
    _check_together(settings, names)
    return settings


def _check_together(settings: Settings, names: Mapping[str, str]) -> None:
    root = Path(settings.files_root).resolve()
    outbox = Path(settings.outbox_dir).resolve()
    if outbox == root or root in outbox.parents:
        raise SettingsError(
            f"{names['outbox_dir']}={settings.outbox_dir!r} is not valid: it is inside"
            f" {names['files_root']}={settings.files_root!r}, which is CUBE's storage"
            " (set OXIDICOM_OUTBOX_DIR to a folder outside it)"
        )
    if settings.tls_certificate is None and (settings.tls_key or settings.tls_client_ca):
        variable = "OXIDICOM_TLS_KEY" if settings.tls_key else "OXIDICOM_TLS_CLIENT_CA"
        raise SettingsError(f"{variable} is set but OXIDICOM_TLS_CERTIFICATE is not")
    if settings.tls_client_aets is not None and settings.tls_client_ca is None:
        raise SettingsError("OXIDICOM_TLS_CLIENT_AETS is set but OXIDICOM_TLS_CLIENT_CA is not")
    _check_dicomweb(settings)
    if settings.pdu_hard_cap < settings.scp_max_pdu_length:
        raise SettingsError(
            f"OXIDICOM_PDU_HARD_CAP={settings.pdu_hard_cap} is not valid: it is smaller than"
            f" OXIDICOM_SCP_MAX_PDU_LENGTH={settings.scp_max_pdu_length}"
        )


def _check_dicomweb(settings: Settings) -> None:
    if settings.dicomweb_port is None:
        return
    authenticated = settings.dicomweb_users is not None or settings.dicomweb_token is not None
    anonymous_ok = settings.dicomweb_allow_anonymous or is_loopback(settings.dicomweb_address)
    if not authenticated and not anonymous_ok:
        raise SettingsError(
            f"OXIDICOM_DICOMWEB_ADDRESS={settings.dicomweb_address!r} is not valid without"
            " authentication: set OXIDICOM_DICOMWEB_USERS_FILE or"
            " OXIDICOM_DICOMWEB_TOKEN_FILE, listen on 127.0.0.1, or set"
            " OXIDICOM_DICOMWEB_ALLOW_ANONYMOUS=true"
        )


def is_loopback(address: str) -> bool:
    """True for an address only this host can reach (127.0.0.0/8, ::1, localhost)."""
    if address.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip()).is_loopback
    except ValueError:
        return False


def describe_settings() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) for every setting, for --help and docs/settings.md."""
    rows = []
    for setting in SETTINGS:
        default = setting.default_help or setting.default or ""
        name = setting.env + "".join(f" (alias {alias})" for alias in setting.aliases)
        rows.append((name, default, setting.help))
    return rows
