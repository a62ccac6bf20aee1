"""Who may store over DICOMweb: HTTP Basic users from a file, or one bearer token.

The users file has one ``name:hash`` per line (``#`` starts a comment), the hash made
by bcrypt (``$2b$...``, e.g. ``htpasswd -nbB``) or argon2 (``$argon2id$...``). The name
becomes the ``pacs_name`` of what the user stores, so it must be a valid AE title.

A password hash costs ~100-300 ms of CPU on purpose. Two things keep that from
becoming a lever against the receiver:

- Verification runs in one thread of its own, never on the event loop and never in
  the default executor, where it would queue ahead of the storage writes. At most
  :data:`MAX_PENDING` verifications wait for it; beyond that a request gets 503 at
  once, so a flood of wrong passwords costs one core at most and nothing else.
- A password once verified is remembered (keyed by an HMAC with a per-process random
  key, never the password itself) for :data:`CACHE_SECONDS`, so a client that sends a
  request per instance pays the hash once, not per request.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import argon2
import bcrypt

from oxidicom.scp.access import check_ae_title

#: Verifications allowed to wait for the hashing thread; beyond it: 503.
MAX_PENDING: Final = 16
#: How long a verified name and password are remembered.
CACHE_SECONDS: Final = 300.0
#: Remembered credentials at most (the oldest is forgotten first).
CACHE_SIZE: Final = 1024
#: Shortest bearer token accepted: 128 bits in hex.
MIN_TOKEN_LENGTH: Final = 32
REALM: Final = "oxidicom"

_BCRYPT: Final = re.compile(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}")
_ARGON2: Final = ("$argon2id$", "$argon2i$", "$argon2d$")


@dataclass(frozen=True)
class Users:
    """Name -> password hash, as read from the users file."""

    path: str
    hashes: dict[str, str]


def parse_users_file(path: str) -> Users:
    """Read and check a users file (at start); ValueError names the line that is wrong."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read it: {getattr(error, 'strerror', None) or error}") from None
    hashes: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, colon, hashed = line.partition(":")
        if not colon:
            raise ValueError(f"line {number}: expected name:hash")
        try:
            name = check_ae_title(name)
        except ValueError as error:
            raise ValueError(
                f"line {number}: the name (a pacs_name) is not valid: {error}"
            ) from None
        if ":" in name:
            raise ValueError(f"line {number}: the name cannot contain ':'")
        hashed = hashed.strip()
        if not _valid_hash(hashed):
            raise ValueError(f"line {number}: the hash of {name!r} is neither bcrypt nor argon2")
        if name in hashes:
            raise ValueError(f"line {number}: {name!r} appears twice")
        hashes[name] = hashed
    if not hashes:
        raise ValueError("it lists no user")
    return Users(path, hashes)


def parse_token_file(path: str) -> str:
    """The bearer token: the file's first non-empty line (at start)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read it: {getattr(error, 'strerror', None) or error}") from None
    token = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if len(token) < MIN_TOKEN_LENGTH or not token.isascii() or not token.isprintable():
        raise ValueError(
            f"expected a token of at least {MIN_TOKEN_LENGTH} printable ASCII characters"
            " (e.g. from: openssl rand -hex 32)"
        )
    return token


def _valid_hash(hashed: str) -> bool:
    if _BCRYPT.fullmatch(hashed):
        return True
    if hashed.startswith(_ARGON2):
        try:
            argon2.extract_parameters(hashed)
        except argon2.exceptions.InvalidHashError:
            return False
        return True
    return False


def verify_password(hashed: str, password: bytes) -> bool:
    """Check a password against a bcrypt or argon2 hash (blocking, slow on purpose)."""
    if hashed.startswith("$2"):
        try:
            return bcrypt.checkpw(password, hashed.encode("ascii"))
        except ValueError:  # bcrypt 5 refuses passwords longer than 72 bytes
            return False
    try:
        return argon2.PasswordHasher().verify(hashed, password)
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False


@dataclass(frozen=True)
class Allowed:
    """An authenticated (or anonymous) request: the pacs_name of what it stores."""

    pacs_name: str
    user: str | None


@dataclass(frozen=True)
class Refused:
    """The answer to a request that may not store: 401 (or 503 when too busy)."""

    status: int
    reason: str


class Authenticator:
    """Decides, from the Authorization header, whether a request may store and as whom."""

    def __init__(self, users: Users | None, token: str | None, pacs_name: str) -> None:
        self.users = users
        self.pacs_name = pacs_name
        self._token = hashlib.sha256(token.encode()).digest() if token else None
        self._key = secrets.token_bytes(32)
        self._cache: OrderedDict[bytes, float] = OrderedDict()
        self._pending = 0
        self._executor: ThreadPoolExecutor | None = None
        # An unknown name is checked against a real hash too, so that the time of the
        # answer does not tell which names exist.
        self._decoy = next(iter(users.hashes.values())) if users else ""

    @property
    def enabled(self) -> bool:
        return self.users is not None or self._token is not None

    def challenge(self) -> str:
        """The WWW-Authenticate value of a 401 (RFC 7235): every scheme we take."""
        schemes = []
        if self.users is not None:
            schemes.append(f'Basic realm="{REALM}", charset="UTF-8"')
        if self._token is not None:
            schemes.append(f'Bearer realm="{REALM}"')
        return ", ".join(schemes)

    async def check(self, authorization: str | None) -> Allowed | Refused:
        """Allowed (with the pacs_name to use) or Refused."""
        if not self.enabled:
            return Allowed(self.pacs_name, None)
        if not authorization:
            return Refused(401, "no credentials")
        scheme, _, value = authorization.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer" and self._token is not None:
            given = hashlib.sha256(value.strip().encode("utf-8", "replace")).digest()
            if hmac.compare_digest(given, self._token):
                return Allowed(self.pacs_name, None)
            return Refused(401, "wrong bearer token")
        if scheme == "basic" and self.users is not None:
            credentials = _basic_credentials(value)
            if credentials is None:
                return Refused(401, "malformed Basic credentials")
            return await self._check_password(*credentials)
        return Refused(401, f"unsupported authorization scheme {scheme!r}")

    async def _check_password(self, name: str, password: bytes) -> Allowed | Refused:
        assert self.users is not None
        key = hmac.new(self._key, name.encode() + b"\0" + password, hashlib.sha256).digest()
        now = time.monotonic()
        expiry = self._cache.get(key)
        if expiry is not None and expiry > now:
            return Allowed(name, name)
        if self._pending >= MAX_PENDING:
            return Refused(503, "too many password checks waiting")
        hashed = self.users.hashes.get(name)
        self._pending += 1
        try:
            loop = asyncio.get_running_loop()
            ok = await loop.run_in_executor(
                self._thread(), verify_password, hashed or self._decoy, password
            )
        finally:
            self._pending -= 1
        if not ok or hashed is None:
            return Refused(401, f"wrong name or password (user {name!r})")
        self._cache[key] = now + CACHE_SECONDS
        self._cache.move_to_end(key)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return Allowed(name, name)

    def _thread(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="oxidicom-auth")
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


def _basic_credentials(value: str) -> tuple[str, bytes] | None:
    """(name, password) of an RFC 7617 Basic value, or None when it is not one."""
    try:
        decoded = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    name, colon, password = decoded.partition(b":")
    if not colon:
        return None
    try:
        return name.decode("utf-8"), password
    except UnicodeDecodeError:
        return None


def hash_password(password: str) -> str:
    """A bcrypt hash for the users file (``python -m oxidicom.dicomweb.auth``)."""
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt()).decode("ascii")


if __name__ == "__main__":  # pragma: no cover - a helper for operators
    import getpass
    import sys

    user = sys.argv[1] if len(sys.argv) > 1 else input("name: ")
    print(f"{check_ae_title(user)}:{hash_password(getpass.getpass())}")
