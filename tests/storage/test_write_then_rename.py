"""write_then_rename, both twins: the pure-Python reference and the compiled one
(``oxidicom/support/_atomic_c.pyx``) write the same bytes, and fail with the same error
leaving nothing behind."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from oxidicom.support import atomic
from tests.implementations import IMPLEMENTATIONS, compiled_module

WriteThenRename = Callable[..., int]


@pytest.fixture(params=IMPLEMENTATIONS)
def write_then_rename(request: pytest.FixtureRequest) -> WriteThenRename:
    if request.param == "python":
        return atomic.write_then_rename_py
    module = compiled_module("oxidicom.support._atomic_c")
    assert atomic.write_then_rename is module.write_then_rename, "built, but not selected"
    return module.write_then_rename  # type: ignore[no-any-return]


class Calls:
    """The unlink and rename a caller hands over, recorded."""

    def __init__(self) -> None:
        self.unlinked: list[object] = []
        self.renamed: list[tuple[object, ...]] = []

    def unlink(self, path: object) -> None:
        self.unlinked.append(path)
        with contextlib.suppress(FileNotFoundError, ValueError):  # never made; a NUL
            os.unlink(path)  # type: ignore[arg-type]

    def rename(self, *args: object) -> None:
        self.renamed.append(args)
        os.replace(*args)  # type: ignore[arg-type]


def parts_of(count: int) -> list[bytes | memoryview]:
    parts: list[bytes | memoryview] = [bytes([i % 251]) * (i % 13 + 1) for i in range(count)]
    parts.insert(1, memoryview(b"view-part"))
    parts.append(memoryview(bytearray(b"the tail, from a bytearray")))
    return parts


@pytest.mark.parametrize("count", [0, 1, 14, 15, 40, 600])  # the stack holds 16 parts
@pytest.mark.parametrize("fsync", [False, True])
def test_every_part_lands_in_order_at_the_final_path(
    write_then_rename: WriteThenRename, tmp_path: Path, count: int, fsync: bool
) -> None:
    parts = parts_of(count)
    temp, final = tmp_path / "0.part", tmp_path / "final.dcm"
    calls = Calls()
    size = write_then_rename(str(temp), parts, fsync, 0o640, calls.unlink, calls.rename, final)
    expected = b"".join(bytes(p) for p in parts)
    assert size == len(expected)
    assert final.read_bytes() == expected
    assert final.stat().st_mode & 0o777 == 0o640 & ~_umask()
    assert not temp.exists()
    assert calls.renamed == [(str(temp), final)] and calls.unlinked == []


def test_an_existing_temporary_file_is_written_from_its_start(
    write_then_rename: WriteThenRename, tmp_path: Path
) -> None:
    temp, final = tmp_path / "0.part", tmp_path / "final.dcm"
    temp.write_bytes(b"x" * 100)  # a leftover, longer than what comes
    calls = Calls()
    write_then_rename(str(temp), [b"short"], False, 0o644, calls.unlink, calls.rename, final)
    assert final.read_bytes() == b"short"


def test_a_path_like_temporary_name_is_taken(
    write_then_rename: WriteThenRename, tmp_path: Path
) -> None:
    temp, final = tmp_path / "0.part", tmp_path / "final.dcm"
    calls = Calls()
    write_then_rename(temp, [b"abc"], False, 0o644, calls.unlink, calls.rename, final)
    assert final.read_bytes() == b"abc"


def _error_of(call: Callable[[], object]) -> BaseException:
    with pytest.raises(BaseException) as info:
        call()
    return info.value


def test_the_errors_are_the_references(tmp_path: Path) -> None:
    """Each failure the same in both: type, errno, message and file name; nothing left."""
    twins = [atomic.write_then_rename_py]
    if atomic.write_then_rename is not atomic.write_then_rename_py:
        twins.append(atomic.write_then_rename)
    elif os.environ.get("CI", "").lower() == "true" and not os.environ.get(
        "OXIDICOM_NO_EXTENSIONS"
    ):
        pytest.fail("the compiled write_then_rename is not in use under CI")
    missing = tmp_path / "no-such-folder" / "0.part"

    def failing_rename(*_args: object) -> None:
        raise OSError(errno.EXDEV, "cross-device link")

    cases: list[tuple[str, object, Callable[..., None]]] = [
        ("missing folder", str(missing), Calls().rename),
        ("path-like, missing folder", missing, Calls().rename),
        ("embedded NUL", str(tmp_path / "a\x00b"), Calls().rename),
        ("rename fails", str(tmp_path / "1.part"), failing_rename),
    ]
    for what, temp, rename in cases:
        seen = []
        for twin in twins:
            calls = Calls()
            error = _error_of(
                lambda twin=twin, temp=temp, calls=calls, rename=rename: twin(
                    temp, [b"data"], False, 0o644, calls.unlink, rename, tmp_path / "final"
                )
            )
            seen.append((type(error), getattr(error, "errno", None), str(error)))
            assert calls.unlinked == [temp], what  # removed before the error is seen
            assert not Path(str(temp).replace("\x00", "")).exists(), what
        assert len(set(seen)) == 1, (what, seen)


def test_a_write_cut_short_writes_the_rest_or_fails_leaving_nothing(tmp_path: Path) -> None:
    """RLIMIT_FSIZE cuts the writev short; the rest then fails (EFBIG), in both twins.

    In a child process: the limit, and SIGXFSZ ignored, must not touch the test run.
    """
    script = textwrap.dedent(
        f"""
        import os, resource, signal, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from oxidicom.support import atomic
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, hard))
        folder = sys.argv[1]
        twins = [("python", atomic.write_then_rename_py), ("in use", atomic.write_then_rename)]
        for name, twin in twins:
            temp = os.path.join(folder, name + ".part")
            unlinked = []
            def unlink(path):
                unlinked.append(path)
                os.unlink(path)
            try:
                parts = [b"a" * 600, b"b" * 600]
                twin(temp, parts, False, 0o644, unlink, os.replace, temp + ".dcm")
            except OSError as error:
                print(name, error.errno, unlinked == [temp], os.path.exists(temp))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines() == [
        f"python {errno.EFBIG} True False",
        f"in use {errno.EFBIG} True False",
    ], done.stderr


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
