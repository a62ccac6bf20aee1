"""The ``oxidicom`` command: start the receiver; ``--help`` lists every setting by subject.

Every setting is an environment variable (:data:`~oxidicom.app.settings.SETTINGS`). The
flags dcmtk's ``storescp`` users reach for (``[port]``, ``--aet``, ``--output-dir``,
``-v``/``-d``, ``--version``) each override one of them, and are parsed and judged by that
setting's own parser, so a bad value is the same one-line error, exit status 2.
Subcommands (``oxidicom echo ...``) come first on the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import NoReturn

from oxidicom.app.settings import (
    GROUPS,
    SETTINGS,
    Override,
    Setting,
    SettingsError,
    group_of,
    load_settings,
)
from oxidicom.scp.access import health_check_address
from oxidicom.telemetry import logs

_PORT = next(s for s in SETTINGS if s.field == "listener_port")
_ADDRESS = next(s for s in SETTINGS if s.field == "listener_address")
_AE_TITLE = next(s for s in SETTINGS if s.field == "scp_aet")


@dataclass(frozen=True)
class Flag:
    """A command-line option that overrides one environment variable."""

    options: tuple[str, ...]
    env: str
    #: The argparse destination (errors name the flag by its first spelling).
    dest: str
    metavar: str | None
    help: str
    #: For a switch (no value): the value it gives its variable.
    const: str | None = None


#: storescp's habits. dcmtk spells the AE title and output folder with one dash
#: (``-aet``, ``-od``); both spellings are accepted.
FLAGS: tuple[Flag, ...] = (
    Flag(("--port",), "OXIDICOM_LISTENER_PORT", "port_flag", "N", "TCP port to listen on"),
    Flag(("--aet", "--aetitle", "-aet"), "OXIDICOM_SCP_AET", "aet", "TITLE", "our AE title"),
    Flag(
        ("--output-dir", "--output-directory", "-od"),
        "OXIDICOM_FILES_ROOT",
        "output_dir",
        "DIR",
        "where received files go (CUBE's storage: files under DIR/SERVICES/PACS/)",
    ),
    Flag(("-v", "--verbose"), "OXIDICOM_LOG_LEVEL", "verbose", None, "log level INFO", "INFO"),
    Flag(("-d", "--debug"), "OXIDICOM_LOG_LEVEL", "debug", None, "log level DEBUG", "DEBUG"),
)
#: The command-line name of the positional port (as ``storescp 11112``).
PORT_ARGUMENT = "port"
#: Listed first in their subject in --help; the others follow in the table's order.
_HELP_FIRST = (
    "OXIDICOM_LISTENER_PORT",
    "OXIDICOM_LISTENER_ADDRESS",
    "OXIDICOM_SCP_AET",
    "OXIDICOM_CELERY_BROKER",
    "OXIDICOM_QUEUE_NAME",
    "OXIDICOM_NATS_ADDRESS",
    "OXIDICOM_LISTENER_THREADS",
)
#: Subcommands: each parses its own arguments and returns an exit status.
COMMANDS = ("echo",)


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, like bad settings, with exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _setting(env: str) -> Setting:
    return next(s for s in SETTINGS if s.env == env)


def _default_text(setting: Setting) -> str:
    return setting.default_help or setting.default or "(empty)"


def _flags_of(setting: Setting) -> list[str]:
    names = [f.options[0] for f in FLAGS if f.env == setting.env]
    if setting.env == _PORT.env:
        names.append(f"the {PORT_ARGUMENT} argument")
    return names


def settings_help(settings: Sequence[Setting] = SETTINGS) -> str:
    """Every setting with its default and meaning, under the heading of its subject."""
    lines = [
        "commands:",
        "  echo [host] [port]  send a C-ECHO (DICOM ping) to a receiver; exit 0 if it answers",
        "                      (oxidicom echo --help)",
        "",
        "settings: each is an environment variable; a flag above overrides its variable.",
    ]
    indent = " " * 6
    for group, heading in GROUPS:
        members = sorted(
            (s for s in settings if group_of(s) == group),
            key=lambda s: _HELP_FIRST.index(s.env) if s.env in _HELP_FIRST else len(_HELP_FIRST),
        )
        if not members:
            continue
        lines.extend(["", f"{heading}:"])
        for setting in members:
            aliases = "".join(f" (alias {alias})" for alias in setting.aliases)
            flags = _flags_of(setting)
            flag_text = f" (flag: {', '.join(flags)})" if flags else ""
            lines.append(f"  {setting.env}{aliases}{flag_text}")
            lines.append(f"      default: {_default_text(setting)}")
            lines.extend(
                textwrap.wrap(setting.help, 74, initial_indent=indent, subsequent_indent=indent)
            )
    return "\n".join(lines)


def version() -> str:
    """``oxidicom X.Y.Z``, as installed."""
    try:
        return f"oxidicom {metadata.version('oxidicom')}"
    except metadata.PackageNotFoundError:  # run from a checkout that is not installed
        return "oxidicom (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The receiver's command line (subcommands have their own: :func:`build_echo_parser`)."""
    parser = _Parser(
        prog="oxidicom",
        usage=(
            "oxidicom [-h] [--version] [--port N] [--aet TITLE] [--output-dir DIR] [-v | -d]"
            " [port]\n       oxidicom echo [host] [port] [--aet AET] [--aec AEC]"
        ),
        description=textwrap.fill(
            "A DICOM C-STORE receiver for ChRIS: stores every instance a PACS pushes as a"
            " file in CUBE's storage layout and tells CUBE about each received series."
            f" With no settings at all it listens on port {_PORT.default} and stores under"
            " ./oxidicom-data/.",
            80,
        ),
        epilog=settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=version())
    parser.add_argument(
        PORT_ARGUMENT,
        nargs="?",
        default=None,
        help=f"TCP port to listen on, as storescp takes it (default: ${_PORT.env} or"
        f" {_PORT.default})",
    )
    flags = parser.add_argument_group("flags (each overrides the variable named)")
    levels = flags.add_mutually_exclusive_group()
    for flag in FLAGS:
        setting = _setting(flag.env)
        where = levels if flag.const is not None else flags
        text = f"{flag.help} (${flag.env}"
        text += ")" if flag.const is not None else f", default: {_default_text(setting)})"
        if flag.const is None:
            where.add_argument(*flag.options, dest=flag.dest, metavar=flag.metavar, help=text)
        else:
            where.add_argument(
                *flag.options, dest=flag.dest, action="store_const", const=flag.const, help=text
            )
    # Internal: a worker started by the supervisor, CHANNEL_FD:INDEX:COUNT:PORT
    # (oxidicom/app/workers.py).
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return parser


def overrides_of(args: argparse.Namespace) -> dict[str, Override]:
    """The settings given on the command line, by variable name."""
    given: dict[str, Override] = {}
    for flag in FLAGS:
        value = getattr(args, flag.dest)
        if value is not None:
            given[flag.env] = Override(flag.options[0], value)
    port = getattr(args, PORT_ARGUMENT)
    if port is not None:
        if _PORT.env in given and given[_PORT.env].value != port:
            raise SettingsError(
                f"the port is given twice: {PORT_ARGUMENT}={port!r} and"
                f" {given[_PORT.env].flag}={given[_PORT.env].value!r}"
            )
        given[_PORT.env] = Override(PORT_ARGUMENT, port)
    return given


def _configured(setting: Setting) -> object:
    """One setting as the receiver reads it; its default when unset, empty or invalid.

    Only the settings the echo command needs: a bad value of another setting must not
    make the health check fail.
    """
    raw = os.environ.get(setting.env, "").strip()
    if raw:
        try:
            return setting.parse(raw)
        except ValueError:
            pass
    return setting.parse(setting.default or "")


def _default_host() -> str:
    """The receiver's own address, as configured; loopback when it listens everywhere."""
    return health_check_address(str(_configured(_ADDRESS)))


def _default_port() -> int:
    port = _configured(_PORT)
    # Port 0 (any free port) cannot be reached by number.
    return port if isinstance(port, int) and port > 0 else int(_PORT.default or 0)


def build_echo_parser() -> argparse.ArgumentParser:
    """``oxidicom echo``: the C-ECHO client, also the container's health check."""
    # Here, not at the top: the receiver's command line (a supervisor of several workers
    # above all) need not import the DICOM dictionary it brings.
    from oxidicom.app.echo import DEFAULT_CALLING_AE_TITLE

    echo_parser = _Parser(
        prog="oxidicom echo",
        description=(
            "Associate with a DICOM receiver, send one C-ECHO-RQ and release. Prints one"
            " line and exits 0 when the answer is success, 1 otherwise. The defaults reach"
            " this receiver as configured (OXIDICOM_LISTENER_PORT, OXIDICOM_SCP_AET), which"
            " makes it the container's health check."
        ),
    )
    echo_parser.add_argument(
        "host",
        nargs="?",
        default=_default_host(),
        help="default: $OXIDICOM_LISTENER_ADDRESS, or 127.0.0.1 when that is 0.0.0.0 or unset",
    )
    echo_parser.add_argument(
        "port",
        nargs="?",
        type=int,
        default=_default_port(),
        help=f"default: ${_PORT.env} or {_PORT.default}",
    )
    echo_parser.add_argument(
        "--aet", default=DEFAULT_CALLING_AE_TITLE, help="our (calling) AE title"
    )
    echo_parser.add_argument(
        "--aec",
        default=str(_configured(_AE_TITLE)),
        help=f"the called AE title (default: ${_AE_TITLE.env} or {_AE_TITLE.default})",
    )
    echo_parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds for the whole exchange (default 10)"
    )
    echo_parser.add_argument(
        "--busy-ok",
        action="store_true",
        help="count a rejection for too many associations as alive (for liveness checks)",
    )
    return echo_parser


def run_echo(args: argparse.Namespace) -> int:
    """The ``echo`` subcommand: one line on stdout on success, on stderr otherwise."""
    from oxidicom.app.echo import EchoBusy, EchoError, echo

    try:
        result = echo(
            args.host,
            args.port,
            calling_ae_title=args.aet,
            called_ae_title=args.aec,
            timeout=args.timeout,
        )
    except EchoBusy as busy:
        if args.busy_ok:
            print(f"busy but alive: {busy}")
            return 0
        print(f"oxidicom echo: {busy}", file=sys.stderr)
        return 1
    except EchoError as error:
        print(f"oxidicom echo: {error}", file=sys.stderr)
        return 1
    print(
        f"C-ECHO {args.aec}@{args.host}:{args.port}: success"
        f" (status {result.status:04X}, {result.seconds * 1000:.1f} ms)"
    )
    return 0


def configure_logging(level: str, log_format: str = "auto", worker: int | None = None) -> None:
    logs.configure(level, log_format, worker=worker)


def _run(coroutine_factory: object) -> None:
    try:
        import uvloop
    except ImportError:  # uvloop is a dependency, but not on every platform
        asyncio.run(coroutine_factory())  # type: ignore[operator]
        return
    uvloop.run(coroutine_factory())  # type: ignore[operator]


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and arguments[0] in COMMANDS:
        return run_echo(build_echo_parser().parse_args(arguments[1:]))
    args = build_parser().parse_args(arguments)
    try:
        overrides = overrides_of(args)
        settings = load_settings(overrides=overrides)
    except SettingsError as error:
        print(f"oxidicom: {error}", file=sys.stderr)
        return 2
    from oxidicom import telemetry

    problem = telemetry.environment_problem()
    if problem is not None:
        print(f"oxidicom: {problem}", file=sys.stderr)
        return 2
    handoff = None
    if args.worker is not None:
        from oxidicom.app.workers import parse_worker_argument

        handoff = parse_worker_argument(args.worker)
    worker = handoff.share.index + 1 if handoff is not None else None
    configure_logging(settings.log_level, settings.log_format, worker)
    from oxidicom.app.worker_count import WorkerCount, worker_count

    # A worker started by its supervisor is one process, whatever the setting says.
    workers = worker_count(settings) if args.worker is None else WorkerCount(1)
    if workers.note is not None:
        logging.getLogger("oxidicom.workers").log(workers.level, "%s", workers.note)
    if workers.count > 1:
        from oxidicom.aio.tls import TLSSetupError, server_tls_context
        from oxidicom.app.workers import supervise

        try:  # here, once, before the port is bound: not once per worker after
            server_tls_context(settings)
        except TLSSetupError as error:
            print(f"oxidicom: {error}", file=sys.stderr)
            return 1

        # The workers read the environment: they get the flags as the variables they set.
        flags_env = {name: override.value for name, override in overrides.items()}
        return supervise(settings, workers.count, environ={**os.environ, **flags_env})
    # Not needed by the echo subcommand.
    from oxidicom.app.startup import StartError, serve

    try:
        _run(lambda: serve(settings, handoff=handoff))
    except StartError as error:
        print(f"oxidicom: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
