"""The ``oxidicom`` command: start the receiver; ``--help`` lists every setting."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import textwrap
from collections.abc import Sequence

from oxidicom.app.echo import DEFAULT_CALLING_AE_TITLE, EchoBusy, EchoError, echo
from oxidicom.app.settings import SettingsError, describe_settings, load_settings
from oxidicom.telemetry import logs


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
            " With no settings at all it listens on port 11111 and stores under"
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


def _default_host() -> str:
    """The receiver's own address, as configured; loopback when it listens everywhere."""
    address = os.environ.get("OXIDICOM_LISTENER_ADDRESS", "").strip()
    if address in ("", "0.0.0.0"):
        return "127.0.0.1"
    return "::1" if address == "::" else address


def _default_port() -> int:
    port = os.environ.get("OXIDICOM_LISTENER_PORT", "").strip()
    return int(port) if port.isdigit() and 0 < int(port) < 65536 else 11111


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
        help="default: $OXIDICOM_LISTENER_PORT or 11111",
    )
    echo_parser.add_argument(
        "--aet", default=DEFAULT_CALLING_AE_TITLE, help="our (calling) AE title"
    )
    echo_parser.add_argument(
        "--aec",
        default=os.environ.get("OXIDICOM_SCP_AET", "").strip() or "ChRIS",
        help="the called AE title (default: $OXIDICOM_SCP_AET or ChRIS)",
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
