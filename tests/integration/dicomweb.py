"""The receiver with its DICOMweb listener, and plain HTTP to it (for the STOW-RS tests)."""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.integration.receiver import RunningReceiver, start_receiver

_AT = re.compile(r"DICOMweb STOW-RS at https?://[^:]+:(?P<port>\d+)/dicom-web/studies")


@dataclass
class StowReceiver:
    receiver: RunningReceiver
    http_port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/dicom-web"

    def stored_files(self) -> list[Path]:
        return [p for p in self.receiver.stored_files() if p.suffix == ".dcm"]

    def temporary_files(self) -> list[Path]:
        tmp = self.receiver.files_root / ".oxidicom-tmp"
        return [p for p in tmp.rglob("*.part")] if tmp.exists() else []

    def wait_registrations(self, count: int) -> None:
        """Until ``count`` registrations were written to the outbox (the log says so)."""
        self.receiver.wait_for_log_count(r"registration of series .* in the outbox", count)


def start_stow_receiver(
    tmp: Path, env: dict[str, str] | None = None, command: list[str] | None = None
) -> StowReceiver:
    receiver = start_receiver(
        tmp,
        {
            "OXIDICOM_DICOMWEB_PORT": "0",
            "OXIDICOM_DICOMWEB_ADDRESS": "127.0.0.1",
            **(env or {}),
        },
        command=command,
    )
    match = receiver.wait_for_log(_AT.pattern)
    return StowReceiver(receiver, int(match.group("port")))


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def post(
    port: int,
    path: str,
    body: bytes | Iterable[bytes],
    headers: dict[str, str],
    timeout: float = 120,
) -> Answer:
    """One POST; ``body`` may be an iterable of chunks (sent as they come)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    finally:
        connection.close()


def referenced_and_failed(module: dict[str, Any]) -> tuple[list[str], list[int]]:
    """(stored SOPInstanceUIDs, FailureReasons) of a Store Instances Response."""
    stored = [item["00081155"]["Value"][0] for item in module.get("00081199", {}).get("Value", [])]
    failed = [item["00081197"]["Value"][0] for item in module.get("00081198", {}).get("Value", [])]
    return stored, failed
