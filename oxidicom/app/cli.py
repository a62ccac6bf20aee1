"""The ``oxidicom`` command: start the receiver; ``--help`` lists every setting."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import textwrap
from collections.abc import Sequence

from oxidicom.app.echo import DEFAULT_CALLING_AE_TITLE, EchoBusy, EchoError, echo
from oxidicom.app.settings import SETTINGS, Setting, SettingsError, describe_settings, load_settings
from oxidicom.scp.access import health_check_address
from oxidicom.telemetry import logs

_PORT = next(s for s in SETTINGS if s.field == "listener_port")
_ADDRESS = next(s for s in SETTINGS if s.field == "listener_address")
_AE_TITLE = next(s for s in SETTINGS if s.field == "scp_aet")


def _settings_help() -> str:
    lines = ["settings (environment variables, with their defaults):", ""]
    for name, default, meaning in describe_settings():
        lines.append(f"  {name}")
        lines.append(f"      default: {default or '(empty)'}")
        indent = " " * 6
        lines.extend(textwrap.wrap(meaning, 74, initial_indent=indent, subsequent_indent=indent))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oxidicom",
        description=(
            "A DICOM C-STORE receiver for ChRIS: stores every instance a PACS pushes as a"
            " file in CUBE's storage layout and tells CUBE about each received series."
            f" With no settings at all it listens on port {_PORT.default} and stores under"
            " ./oxidicom-data/."
        ),
        epilog=_settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # Internal: a worker started by the supervisor accepts on the socket it inherited.
    parser.add_argument("--listen-fd", type=int, default=None, help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", metavar="{echo}")
    _add_echo(commands)
    return parser


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


def _add_echo(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    echo_parser = commands.add_parser(
        "echo",
        help="send a C-ECHO (DICOM ping) to a receiver; exit 0 if it answers",
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


def run_echo(args: argparse.Namespace) -> int:
    """The ``echo`` subcommand: one line on stdout on success, on stderr otherwise."""
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


def configure_logging(level: str, log_format: str = "auto") -> None:
    logs.configure(level, log_format)


def _run(coroutine_factory: object) -> None:
    try:
        import uvloop
    except ImportError:  # uvloop is a dependency, but not on every platform
        asyncio.run(coroutine_factory())  # type: ignore[operator]
        return
    uvloop.run(coroutine_factory())  # type: ignore[operator]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "echo":
        return run_echo(args)
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"oxidicom: {error}", file=sys.stderr)
        return 2
    from oxidicom import telemetry

    problem = telemetry.environment_problem()
    if problem is not None:
        print(f"oxidicom: {problem}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    if args.listen_fd is None and settings.workers > 1:
        from oxidicom.app.workers import supervise

        return supervise(settings)
    from oxidicom.app.startup import StartError, serve  # not needed by the echo subcommand

    try:
        _run(lambda: serve(settings, listen_fd=args.listen_fd))
    except StartError as error:
        print(f"oxidicom: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
