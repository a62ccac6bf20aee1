"""The writer's writev loop keeps every byte, in order, however the kernel splits writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from oxidicom.storage import writer


@pytest.mark.parametrize("cap", [1, 7, 4096, 10**9])
@pytest.mark.parametrize("count", [1, 3, 600])  # 600 parts: more than one writev may take
def test_short_writes_lose_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cap: int, count: int
) -> None:
    parts: list[bytes | memoryview] = [bytes([i % 251]) * (i % 13 + 1) for i in range(count)]
    parts.insert(1, memoryview(b"view-part"))
    real_writev = os.writev
    calls = []

    def short_writev(fd: int, buffers: list[bytes | memoryview]) -> int:
        assert len(buffers) <= 512  # IOV_MAX of Linux: more is EINVAL
        calls.append(len(buffers))
        data = b"".join(bytes(b) for b in buffers)[:cap]
        return real_writev(fd, [data])

    monkeypatch.setattr(writer.os, "writev", short_writev)
    path = tmp_path / "out"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        written = writer._write_all(fd, parts)
    finally:
        os.close(fd)
    expected = b"".join(bytes(p) for p in parts)
    assert written == len(expected)
    assert path.read_bytes() == expected
    if cap >= len(expected) and count <= 512:
        assert calls == [len(parts)]  # the common case: one call
