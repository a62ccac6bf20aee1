"""The container image, built from the Dockerfile and run by a real engine (podman).

Slow (an image build: minutes), so ``make test`` skips it; ``make container-test`` runs
it. Debian's podman builds with chroot isolation on vfs storage kept under
``/var/tmp/oxidicom-container-test`` (the base image and layers are reused by the next
run). When the Dockerfile's base image cannot be pulled (no registry but the package
registries here), a base of the same shape is made locally: Debian bookworm by
debootstrap with its Python 3.11, pip and venv, ``python`` on the PATH as in the
official image, and this machine's CA bundle and pip certificate setting (so that the
build stage's ``pip wheel`` reaches PyPI as the host does). The image then runs with the
host's network on a free loopback port: dcmtk's storescu pushes a series into it, the
image's own HEALTHCHECK passes, the receiver runs as uid 10001 and stores files as that
uid, and SIGTERM stops it cleanly (exit status 0).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dicom_factory import mr_instance, write_part10

ROOT = Path(__file__).resolve().parents[2]
STORESCU = "/usr/bin/storescu"
OFFICIAL_BASE = "docker.io/library/python:3.11-slim-bookworm"
LOCAL_BASE = "localhost/oxidicom-test-base:bookworm-python3.11"
IMAGE = "localhost/oxidicom-test:latest"
STATE = Path("/var/tmp/oxidicom-container-test")
UID = 10001

if os.environ.get("OXIDICOM_CONTAINER_TEST") != "1":
    pytest.skip(
        "builds and runs the container image (minutes): make container-test runs it",
        allow_module_level=True,
    )


def _require(condition: bool, reason: str) -> None:
    if not condition:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)


class Podman:
    """Debian's podman on storage of its own (vfs), as root."""

    def __init__(self, state: Path) -> None:
        self.base = [
            "podman",
            "--root",
            str(state / "storage"),
            "--runroot",
            str(state / "run"),
            "--storage-driver",
            "vfs",
            # crun (Debian's default) refuses cgroup v1 mounts beside a v2 hierarchy that
            # has controllers ("hybrid mode"); runc runs there.
            *(["--runtime", "runc"] if shutil.which("runc") else []),
        ]

    def __call__(
        self, *args: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*self.base, *args], capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)}: {result.stderr.strip()}")
        return result

    def has_image(self, name: str) -> bool:
        return self("image", "exists", name, check=False).returncode == 0


def _local_base(podman: Podman, work: Path) -> str:
    """Debian bookworm with python 3.11, pip and venv, shaped like the official image."""
    if podman.has_image(LOCAL_BASE):
        return LOCAL_BASE
    _require(shutil.which("debootstrap") is not None, "debootstrap is not installed")
    rootfs = work / "rootfs"
    subprocess.run(
        [
            "debootstrap",
            "--variant=minbase",
            "--include=python3,python3-venv,python3-pip,ca-certificates",
            "bookworm",
            str(rootfs),
            "http://deb.debian.org/debian",
        ],
        check=True,
        capture_output=True,
        timeout=1800,
    )
    # As in python:3.11-slim: `python` on the PATH, pip free to install into venvs.
    (rootfs / "usr/local/bin/python").symlink_to("/usr/bin/python3")
    for marker in rootfs.glob("usr/lib/python3*/EXTERNALLY-MANAGED"):
        marker.unlink()
    # This machine reaches PyPI through its own certificate authority.
    shutil.copyfile("/etc/ssl/certs/ca-certificates.crt", rootfs / "etc/ssl/certs/host-ca.crt")
    (rootfs / "etc/pip.conf").write_text("[global]\ncert = /etc/ssl/certs/host-ca.crt\n")
    shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
    archive = work / "rootfs.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(rootfs, arcname=".")
    podman("import", "--change", 'CMD ["python3"]', str(archive), LOCAL_BASE, timeout=600)
    return LOCAL_BASE


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Podman, str]]:
    _require(shutil.which("podman") is not None, "no container engine: apt-get install podman")
    _require(os.geteuid() == 0, "the container test runs podman as root (vfs storage)")
    podman = Podman(STATE)
    pulled = podman("pull", "--quiet", OFFICIAL_BASE, check=False, timeout=180)
    base = (
        OFFICIAL_BASE
        if pulled.returncode == 0
        else _local_base(podman, tmp_path_factory.mktemp("base"))
    )
    podman(
        "build",
        "--isolation",
        "chroot",
        "--network",
        "host",
        # Docker's format keeps HEALTHCHECK (OCI image configs have no such field).
        "--format",
        "docker",
        "--build-arg",
        f"PYTHON_IMAGE={base}",
        # vfs copies every layer whole: no cache of intermediate images (each would be a
        # full copy of the file system), only the base is kept between runs.
        "--layers=false",
        "--tag",
        IMAGE,
        str(ROOT),
        timeout=1800,
    )
    yield podman, base
    podman("rmi", "--force", IMAGE, check=False)
    podman("image", "prune", "--force", check=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_line(podman: Podman, name: str, text: str, timeout: float = 120) -> str:
    """Follow the container's log until a line holds ``text``; the log so far."""
    follow = subprocess.Popen(
        [*podman.base, "logs", "--follow", name],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: list[str] = []
    try:
        assert follow.stdout is not None
        for line in follow.stdout:
            seen.append(line)
            if text in line:
                return "".join(seen)
        raise AssertionError(f"no log line with {text!r}:\n{''.join(seen)}")
    finally:
        follow.kill()
        follow.wait(timeout)


@pytest.mark.timeout(3600)  # the first run makes the base image and builds: minutes
def test_the_image_receives_is_healthy_runs_as_10001_and_stops_on_sigterm(
    image: tuple[Podman, str], tmp_path: Path
) -> None:
    _require(
        shutil.which(STORESCU) is not None, f"{STORESCU} is not installed (apt-get install dcmtk)"
    )
    podman, _ = image
    files = tmp_path / "files"
    files.mkdir()
    os.chown(files, UID, UID)  # CUBE's storage, writable by the image's user
    series = tmp_path / "series"
    series.mkdir()
    uid = "1.2.826.0.1.3680043.8.498.2305"
    for number in (1, 2, 3):
        write_part10(mr_instance(instance_number=number, series_uid=uid), series / f"{number}.dcm")
    port = _free_port()
    name = f"oxidicom-test-{uuid.uuid4().hex[:8]}"
    podman(
        "run",
        "--detach",
        "--name",
        name,
        "--network",
        "host",
        "--env",
        f"OXIDICOM_LISTENER_PORT={port}",
        "--env",
        "OXIDICOM_LISTENER_ADDRESS=127.0.0.1",
        "--env",
        "OXIDICOM_LOG_FORMAT=text",
        "--volume",
        f"{files}:/data/files",
        # podman's defaults raise both limits, which a process without CAP_SYS_RESOURCE
        # (a sandboxed root) may not do: ask for less than any host allows.
        "--ulimit",
        "nofile=4096:4096",
        "--ulimit",
        "nproc=4096:4096",
        IMAGE,
    )
    try:
        _wait_for_line(podman, name, "listening on")
        healthcheck = podman("inspect", "--format", "{{json .Config.Healthcheck.Test}}", name)
        healthy = podman("healthcheck", "run", name, check=False)
        pid = podman("inspect", "--format", "{{.State.Pid}}", name).stdout.strip()
        status = Path(f"/proc/{pid}/status").read_text()
        sent = subprocess.run(
            [
                STORESCU,
                "+sd",
                "-aet",
                "HOSTPACS",
                "-aec",
                "ChRIS",
                "127.0.0.1",
                str(port),
                str(series),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "TCP_NODELAY": "1"},
        )
        podman("kill", "--signal", "TERM", name)
        exit_code = podman("wait", name, timeout=90).stdout.strip()
        log = podman("logs", name).stdout + podman("logs", name).stderr
    finally:
        podman("rm", "--force", name, check=False)
    assert '"oxidicom","echo"' in healthcheck.stdout.replace(" ", "")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
    assert uids == [str(UID)] * 4
    assert sent.returncode == 0, sent.stderr
    stored = sorted(p for p in (files / "SERVICES" / "PACS" / "HOSTPACS").rglob("*.dcm"))
    assert len(stored) == 3
    assert {p.stat().st_uid for p in stored} == {UID}
    assert exit_code == "0", log
    assert "stopping: no new associations" in log and "stopped" in log
    assert "Traceback" not in log
    # the build stage compiled the receive path (docker/build-tools.sh): the image runs it
    assert "receive path: compiled (" in log, log  # every module, not "compiled in part"
