"""Replicas as hosts: network namespaces made (and removed) by the test itself.

Topology, all addresses assigned here (10.{a}.x.x, a random free /16):

- a bridge in the test's namespace, ``10.{a}.0.1/24``: the *store network*. The series
  store listens there.
- per host ``i``: a namespace with its loopback up, a veth into the store network
  (``10.{a}.0.{10+i}/24``, its other end on the bridge) and a veth to the test's namespace
  (``10.{a}.{i}.2/30``, the test's side ``10.{a}.{i}.1``): the *DICOM link*, which
  storescu uses. :meth:`Host.cut` takes the host's store link down (the DICOM link stays
  up): that host is cut off from the store, and only from it.

Requires root and ``ip``; a test skips (fails under CI) otherwise.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

from tests.integration.services import _unavailable

IP = shutil.which("ip") or "/usr/sbin/ip"


def _ip(*args: str) -> None:
    subprocess.run([IP, *args], check=True, capture_output=True, text=True)


@dataclass
class Host:
    """One namespace: a replica's host."""

    name: str
    index: int
    octet: int
    store_link: str

    @property
    def address(self) -> str:
        """Its address on the DICOM link (where storescu reaches it)."""
        return f"10.{self.octet}.{self.index}.2"

    def command(self, argv: list[str]) -> list[str]:
        return [IP, "netns", "exec", self.name, *argv]

    def receiver_command(self) -> list[str]:
        return self.command([sys.executable, "-m", "oxidicom"])

    def cut(self) -> None:
        """Take its store link down (seen from the host: no carrier, packets dropped)."""
        _ip("link", "set", self.store_link, "down")

    def mend(self) -> None:
        _ip("link", "set", self.store_link, "up")


@dataclass
class Network:
    tag: str
    octet: int
    hosts: list[Host] = field(default_factory=list)

    @property
    def bridge(self) -> str:
        return f"ob{self.tag}"

    @property
    def store_address(self) -> str:
        return f"10.{self.octet}.0.1"

    def add_host(self) -> Host:
        index = len(self.hosts) + 1
        name = f"oxi-{self.tag}-{index}"
        store_out, store_in = f"os{self.tag}{index}", f"oS{self.tag}{index}"
        dicom_out, dicom_in = f"od{self.tag}{index}", f"oD{self.tag}{index}"
        _ip("netns", "add", name)
        host = Host(name, index, self.octet, store_out)
        self.hosts.append(host)
        _ip("-n", name, "link", "set", "lo", "up")
        _ip("link", "add", store_out, "type", "veth", "peer", "name", store_in)
        _ip("link", "set", store_in, "netns", name)
        _ip("link", "set", store_out, "master", self.bridge)
        _ip("link", "set", store_out, "up")
        _ip("-n", name, "addr", "add", f"10.{self.octet}.0.{10 + index}/24", "dev", store_in)
        _ip("-n", name, "link", "set", store_in, "up")
        _ip("link", "add", dicom_out, "type", "veth", "peer", "name", dicom_in)
        _ip("link", "set", dicom_in, "netns", name)
        _ip("addr", "add", f"10.{self.octet}.{index}.1/30", "dev", dicom_out)
        _ip("link", "set", dicom_out, "up")
        _ip("-n", name, "addr", "add", f"10.{self.octet}.{index}.2/30", "dev", dicom_in)
        _ip("-n", name, "link", "set", dicom_in, "up")
        return host


def _free_octet() -> int:
    routes = subprocess.run(
        [IP, "-4", "route", "show", "table", "all"], capture_output=True, text=True
    ).stdout
    taken = {
        int(part.split(".")[1])
        for part in routes.split()
        if part.startswith("10.") and part.count(".") >= 1 and part.split(".")[1].isdigit()
    }
    choices = [n for n in range(200, 250) if n not in taken]
    return random.choice(choices)


@contextlib.contextmanager
def network() -> Iterator[Network]:
    """A store network and hosts on it; everything is removed on exit."""
    if os.geteuid() != 0 or not os.path.exists(IP):
        _unavailable("network namespaces need root and iproute2")
    tag = os.urandom(2).hex()
    net = Network(tag, _free_octet())
    try:
        _ip("link", "add", net.bridge, "type", "bridge")
    except subprocess.CalledProcessError as error:
        _unavailable(f"cannot make a bridge: {error.stderr.strip()}")
    try:
        _ip("addr", "add", f"{net.store_address}/24", "dev", net.bridge)
        _ip("link", "set", net.bridge, "up")
        yield net
    finally:
        for host in net.hosts:
            with contextlib.suppress(subprocess.CalledProcessError):
                _ip("link", "del", f"os{tag}{host.index}")
            with contextlib.suppress(subprocess.CalledProcessError):
                _ip("link", "del", f"od{tag}{host.index}")
            with contextlib.suppress(subprocess.CalledProcessError):
                _ip("netns", "del", host.name)
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("link", "del", net.bridge)
