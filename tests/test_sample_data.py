"""The tests bring their own data: found where it is, else downloaded, checked and cached.

The downloads here come from a folder served over HTTP on loopback, laid out as
raw.githubusercontent.com lays out the two repositories (``OXIDICOM_SAMPLE_DATA_MIRROR``).
"""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest

from tests import sample_data
from tests.sample_data import (
    GITHUB_RAW,
    MANIFEST,
    ORIGINS,
    SampleDataError,
    download_urls,
    fetch_sample_data,
    manifest,
)

ROOT = Path(__file__).resolve().parents[1]
SHARED_MANIFEST = ROOT.parent / "shared" / "data" / "MANIFEST.sha256"


@dataclass
class Mirror:
    """A folder served on loopback; the paths asked for, in order."""

    folder: Path
    url: str
    requests: list[str] = field(default_factory=list)

    def publish(self, name: str, content: bytes) -> str:
        """Put a manifest entry's file where its pinned URL points; its sha256."""
        target = self.folder / _path_of(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        return hashlib.sha256(content).hexdigest()


def _path_of(name: str) -> str:
    """Where a manifest entry's file is on raw.githubusercontent.com."""
    return download_urls([name])[name].removeprefix(f"{GITHUB_RAW}/")


@pytest.fixture(autouse=True)
def no_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed download fails at once here (pooch otherwise waits before each retry)."""
    monkeypatch.setattr(sample_data, "RETRIES", 0)


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[Mirror]:
    folder = tmp_path / "mirror"
    folder.mkdir()
    seen: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            super().do_GET()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(Handler, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Mirror(folder, f"http://127.0.0.1:{server.server_address[1]}", seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _entries(mirror: Mirror) -> dict[str, str]:
    """One small file in each of the two repositories, named as real ones are."""
    sag = "SAG-anon/0001-1.2.3.dcm"
    structural = "example-dicom-structural/dicoms/N2D_0001.dcm"
    return {
        sag: mirror.publish(sag, b"sag" * 1000),
        structural: mirror.publish(structural, b"structural" * 1000),
    }


def test_manifest_is_the_shared_one_and_names_both_series() -> None:
    entries = manifest()
    assert len(entries) == 576
    folders = [name.split("/", 1)[0] for name in entries]
    assert folders.count("SAG-anon") == 192
    assert folders.count("example-dicom-structural") == 384
    assert all(len(digest) == 64 for digest in entries.values())
    if SHARED_MANIFEST.exists():
        assert MANIFEST.read_text() == SHARED_MANIFEST.read_text()


def test_urls_point_at_the_pinned_commits_and_the_mirror_replaces_github() -> None:
    names = ["SAG-anon/0001-x.dcm", "example-dicom-structural/dicoms/N2D_0001.dcm"]
    assert download_urls(names) == {
        names[0]: f"{GITHUB_RAW}/FNNDSC/SAG-anon/3d6e850b625e940aab02f0120cf5fb15977216bc"
        "/0001-x.dcm",
        names[1]: f"{GITHUB_RAW}/datalad/example-dicom-structural"
        "/f077bcc8d502ce8155507bd758cb3b7ccc887f40/dicoms/N2D_0001.dcm",
    }
    mirrored = download_urls(names, "http://proxy.example:3128/raw/")
    assert mirrored[names[0]] == (
        "http://proxy.example:3128/raw/FNNDSC/SAG-anon/"
        "3d6e850b625e940aab02f0120cf5fb15977216bc/0001-x.dcm"
    )
    assert {origin.folder for origin in ORIGINS} == {n.split("/")[0] for n in manifest()}


def test_download_checks_every_file_and_caches_it(mirror: Mirror, tmp_path: Path) -> None:
    entries = _entries(mirror)
    cache = tmp_path / "cache"
    assert fetch_sample_data(cache, mirror.url, entries) == cache
    for name, digest in entries.items():
        assert hashlib.sha256((cache / name).read_bytes()).hexdigest() == digest
    assert sorted(mirror.requests) == sorted(f"/{_path_of(name)}" for name in entries)
    # A second session finds them in the cache: no request at all.
    mirror.requests.clear()
    fetch_sample_data(cache, mirror.url, entries)
    assert mirror.requests == []


def test_a_file_that_does_not_match_its_hash_is_refused_and_not_kept(
    mirror: Mirror, tmp_path: Path
) -> None:
    entries = _entries(mirror)
    tampered = "example-dicom-structural/dicoms/N2D_0001.dcm"
    mirror.publish(tampered, b"not the file of the manifest")
    cache = tmp_path / "cache"
    with pytest.raises(SampleDataError, match="sha256"):
        fetch_sample_data(cache, mirror.url, entries)
    assert not (cache / tampered).exists()


def test_a_cached_file_damaged_later_is_downloaded_again(mirror: Mirror, tmp_path: Path) -> None:
    entries = _entries(mirror)
    cache = tmp_path / "cache"
    fetch_sample_data(cache, mirror.url, entries)
    damaged = "SAG-anon/0001-1.2.3.dcm"
    (cache / damaged).write_bytes(b"truncated")
    mirror.requests.clear()
    fetch_sample_data(cache, mirror.url, entries)
    assert hashlib.sha256((cache / damaged).read_bytes()).hexdigest() == entries[damaged]
    assert len(mirror.requests) == 1


def test_an_unreachable_mirror_is_one_clear_error(tmp_path: Path) -> None:
    entries = {"SAG-anon/0001-1.2.3.dcm": "0" * 64}
    with pytest.raises(SampleDataError, match="Connection"):
        fetch_sample_data(tmp_path / "cache", "http://127.0.0.1:1", entries)


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """A session's first call to require_sample_data(), with the cache in tmp_path."""
    for name in ("OXIDICOM_SAMPLE_DATA", "OXIDICOM_SAMPLE_DATA_MIRROR", "CI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OXIDICOM_SAMPLE_DATA_CACHE", str(tmp_path / "cache"))
    sample_data._obtained.cache_clear()
    yield
    sample_data._obtained.cache_clear()


@pytest.fixture
def no_shared_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """This checkout's shared/data out of the way, as on a fresh clone."""
    real = sample_data._candidates
    monkeypatch.setattr(sample_data, "_candidates", lambda: [c for c in real() if c.name != "data"])


def test_found_data_is_used_without_any_download(
    mirror: Mirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh: None
) -> None:
    own = tmp_path / "own"
    (own / "SAG-anon").mkdir(parents=True)
    monkeypatch.setenv("OXIDICOM_SAMPLE_DATA", str(own))
    monkeypatch.setenv("OXIDICOM_SAMPLE_DATA_MIRROR", mirror.url)
    assert sample_data.require_sample_data() == own
    assert mirror.requests == []
    assert not (tmp_path / "cache").exists()


def test_missing_data_is_downloaded_from_the_mirror(
    mirror: Mirror,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fresh: None,
    no_shared_data: None,
) -> None:
    entries = _entries(mirror)
    monkeypatch.setattr(sample_data, "manifest", lambda: dict(entries))
    monkeypatch.setenv("OXIDICOM_SAMPLE_DATA_MIRROR", mirror.url)
    assert sample_data.sample_data_dir() is None
    assert sample_data.require_sample_data() == tmp_path / "cache"
    assert len(mirror.requests) == 2
    # Then found in the cache, by the lookup that never downloads (the benches' own).
    assert sample_data.sample_data_dir() == tmp_path / "cache"
    # And once per session: the next module asking makes no request.
    assert sample_data.require_sample_data() == tmp_path / "cache"
    assert len(mirror.requests) == 2


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail), ("false", pytest.skip)])
def test_data_that_cannot_be_had_fails_under_ci_and_is_skipped_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
    fresh: None,
    no_shared_data: None,
    ci: str,
    outcome: object,
) -> None:
    monkeypatch.setenv("CI", ci)
    monkeypatch.setenv("OXIDICOM_SAMPLE_DATA_MIRROR", "http://127.0.0.1:1")
    with pytest.raises(outcome.Exception) as raised:  # type: ignore[attr-defined]
        sample_data.require_sample_data()
    message = str(raised.value)
    assert message.startswith("sample DICOM series not found")
    assert "OXIDICOM_SAMPLE_DATA_MIRROR" in message and "http://127.0.0.1:1" in message
