"""Debian's Orthanc as the PACS: our own instance, config, ports and storage per test."""

from __future__ import annotations

import http.client
import json
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.integration.conftest import require_tool
from tests.integration.services import LoggedProcess

ORTHANC = "/usr/sbin/Orthanc"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Orthanc(LoggedProcess):
    """An Orthanc whose AE title is ``ae_title``, knowing the receiver as modality
    ``oxidicom``."""

    def __init__(
        self,
        directory: Path,
        ae_title: str,
        receiver_port: int,
        extra_config: dict[str, Any] | None = None,
    ) -> None:
        require_tool(ORTHANC)
        directory.mkdir(parents=True, exist_ok=True)
        self.http_port = free_port()
        config = {
            "Name": "oxidicom-test",
            "StorageDirectory": str(directory / "storage"),
            "IndexDirectory": str(directory / "index"),
            "StorageCompression": False,
            "HttpPort": self.http_port,
            "DicomPort": free_port(),
            "DicomAet": ae_title,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "Plugins": [],
            "ConcurrentJobs": 2,
            "SaveJobs": False,
            # Release each association right after its store job (default: 5 s later).
            "DicomAssociationCloseDelay": 0,
            "DicomModalities": {"oxidicom": ["ChRIS", "127.0.0.1", receiver_port]},
            **(extra_config or {}),
        }
        path = directory / "orthanc.json"
        path.write_text(json.dumps(config, indent=2))
        # Debian's dcmtk (inside Orthanc) leaves Nagle on unless told.
        env = {**os.environ, "TCP_NODELAY": "1"}
        super().__init__([ORTHANC, str(path)], env=env, cwd=directory)
        self.wait_for(r"Orthanc has started", timeout=60)

    def request(
        self, method: str, url: str, body: bytes | None = None, timeout: float = 120
    ) -> Any:
        connection = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout)
        try:
            connection.request(method, url, body=body)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        if response.status != 200:
            raise AssertionError(f"Orthanc {method} {url}: {response.status} {data[:300]!r}")
        return json.loads(data) if data else None

    def upload(self, files: list[Path]) -> None:
        """POST /instances for each file (a few at a time)."""

        def one(path: Path) -> str:
            return str(self.request("POST", "/instances", path.read_bytes())["Status"])

        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(one, files))
        assert set(statuses) <= {"Success", "AlreadyStored"}, set(statuses)

    def series_id(self, series_instance_uid: str) -> str:
        found = self.request("POST", "/tools/lookup", series_instance_uid.encode())
        return next(item["ID"] for item in found if item["Type"] == "Series")

    def store_async(self, series_instance_uid: str, modality: str = "oxidicom") -> str:
        """Ask Orthanc to C-STORE a series to ``modality``; returns the job's ID at once."""
        body = {"Resources": [self.series_id(series_instance_uid)], "Asynchronous": True}
        job = self.request("POST", f"/modalities/{modality}/store", json.dumps(body).encode())
        return str(job["ID"])
