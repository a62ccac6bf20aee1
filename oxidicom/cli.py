"""The ``oxidicom`` command: start the receiver; ``--help`` lists every setting."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import textwrap
from collections.abc import Sequence

from oxidicom.app import StartError, serve
from oxidicom.settings import SettingsError, describe_settings, load_settings


def _settings_help() -> str:
    lines = ["settings (environment variables, with their defaults):", ""]
    for name, default, meaning in describe_settings():
        lines.append(f"  {name}")
        lines.append(f"      default: {default or '(empty)'}")
        indent = " " * 6
        lines.extend(textwrap.wrap(meaning, 74, initial_indent=indent, subsequent_indent=indent))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
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


class _AssociationDefault(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "association"):
            record.association = "-"
        return True


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(_AssociationDefault())
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(association)s] %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def _run(coroutine_factory: object) -> None:
    try:
        import uvloop
    except ImportError:  # uvloop is a dependency, but not on every platform
        asyncio.run(coroutine_factory())  # type: ignore[operator]
        return
    uvloop.run(coroutine_factory())  # type: ignore[operator]


def main(argv: Sequence[str] | None = None) -> int:
    build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"oxidicom: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    try:
        _run(lambda: serve(settings))
    except StartError as error:
        print(f"oxidicom: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
