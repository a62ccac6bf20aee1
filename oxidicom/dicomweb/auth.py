"""Who may store over DICOMweb: HTTP Basic users from a file, or one bearer token.

The users file has one ``name:hash`` per line (``#`` starts a comment), the hash made
by bcrypt (``$2b$...``, e.g. ``htpasswd -nbB``) or argon2 (``$argon2id$...``). The name
becomes the ``pacs_name`` of what the user stores, so it must be a valid AE title.

A password hash costs tens to hundreds of ms of CPU on purpose (bcrypt cost 12, what
:func:`hash_password` makes: 0.3-0.6 s on the project's 2-core test machine; cost 10 a
quarter of that; each step of the cost doubles it; ``htpasswd -B``'s default cost 5: 3-5 ms).
Four things keep that from becoming a lever against the receiver or its users:

- Verification runs in one thread of its own, never on the event loop and never in
  the default executor, where it would queue ahead of the storage writes. At most
  :data:`MAX_PENDING` verifications wait for it, and at most
  :data:`MAX_PENDING_PER_ADDRESS` of one client address (beyond: 429 for that address,
  503 for all when the queue is full), so a flood costs one core at most and nothing else.
- The thread takes the waiting checks address by address in turn (round robin), not
  in order of arrival: a user's login waits for at most one check per other address,
  however many guesses one address has queued.
- An address whose passwords (or tokens) were wrong :data:`FREE_FAILURES` times in a row
  is refused (429 with Retry-After) without a check for a while: 1 s, then twice as
  long at each further failure, up to :data:`MAX_BLOCK` s; it is forgotten after
  :data:`FORGET_AFTER` s without failure. Another address is never affected: a known
  user still logs in from there during an attack. A password verified before is
  accepted even from a blocked address (the cache costs no hash).
- A password once verified is remembered (keyed by an HMAC with a per-process random
  key, never the password itself) for :data:`CACHE_SECONDS`, so a client that sends a
  request per instance pays the hash once, not per request.

Hashes cheaper than :data:`MIN_BCRYPT_COST` (or argon2 with less memory than
:data:`MIN_ARGON2_MEMORY_KIB`) are warned about at start (:func:`weak_hashes`): at cost 5
one core checks hundreds of guesses per second.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import math
import re
import secrets
import time
from collections import Counter, OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import argon2
import bcrypt

from oxidicom.scp.access import check_ae_title

#: Verifications allowed to wait for the hashing thread; beyond it: 503.
MAX_PENDING: Final = 16
#: Of them, from one client address; beyond it: 429 for that address.
MAX_PENDING_PER_ADDRESS: Final = 4
#: Wrong passwords in a row from one address before it is refused for a while.
FREE_FAILURES: Final = 5
#: The longest an address is refused after failures (seconds).
MAX_BLOCK: Final = 60.0
#: An address without a failure for this long starts over (seconds).
FORGET_AFTER: Final = 600.0
#: Addresses whose failures are remembered at most (the oldest is forgotten first).
MAX_ADDRESSES: Final = 4096
#: Below these a hash is warned about at start.
MIN_BCRYPT_COST: Final = 10
MIN_ARGON2_MEMORY_KIB: Final = 19 * 1024
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


def weak_hashes(users: Users) -> list[str]:
    """The names whose hash is cheaper than :data:`MIN_BCRYPT_COST` (or argon2's minimum)."""
    weak = []
    for name, hashed in users.hashes.items():
        if hashed.startswith("$2"):
            if int(hashed[4:6]) < MIN_BCRYPT_COST:
                weak.append(name)
        elif argon2.extract_parameters(hashed).memory_cost < MIN_ARGON2_MEMORY_KIB:
            weak.append(name)
    return weak


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
    """The answer to a request that may not store: 401, 429 (this address: wait), 503."""

    status: int
    reason: str
    #: Seconds for the Retry-After header of a 429 or 503.
    retry_after: int = 1


class _Failures:
    """Wrong credentials in a row from one address, and until when it is refused."""

    __slots__ = ("count", "last", "until")

    def __init__(self) -> None:
        self.count = 0
        self.last = 0.0
        self.until = 0.0


_Check = tuple[str, bytes, "asyncio.Future[bool | None]"]


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
        #: Checks waiting for the hashing thread, by client address (taken in turn).
        self._queues: dict[str, deque[_Check]] = {}
        self._waiting: Counter[str] = Counter()
        self._hashing = False
        self._closed = False
        self._failures: OrderedDict[str, _Failures] = OrderedDict()
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

    async def check(self, authorization: str | None, address: str = "") -> Allowed | Refused:
        """Allowed (with the pacs_name to use) or Refused; ``address``: the client's."""
        if not self.enabled:
            return Allowed(self.pacs_name, None)
        if not authorization:
            return Refused(401, "no credentials")
        scheme, _, value = authorization.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer" and self._token is not None:
            blocked = self._blocked(address)
            if blocked is not None:
                return blocked
            given = hashlib.sha256(value.strip().encode("utf-8", "replace")).digest()
            if hmac.compare_digest(given, self._token):
                return Allowed(self.pacs_name, None)
            self._failed(address)
            return Refused(401, "wrong bearer token")
        if scheme == "basic" and self.users is not None:
            credentials = _basic_credentials(value)
            if credentials is None:
                return Refused(401, "malformed Basic credentials")
            return await self._check_password(*credentials, address)
        return Refused(401, f"unsupported authorization scheme {scheme!r}")

    async def _check_password(self, name: str, password: bytes, address: str) -> Allowed | Refused:
        assert self.users is not None
        key = hmac.new(self._key, name.encode() + b"\0" + password, hashlib.sha256).digest()
        now = time.monotonic()
        expiry = self._cache.get(key)
        if expiry is not None and expiry > now:
            return Allowed(name, name)
        blocked = self._blocked(address)
        if blocked is not None:
            return blocked
        if self._waiting[address] >= MAX_PENDING_PER_ADDRESS:
            return Refused(429, "too many password checks from this address waiting")
        if self._pending >= MAX_PENDING:
            return Refused(503, "too many password checks waiting")
        hashed = self.users.hashes.get(name)
        ok = await self._verify(address, hashed or self._decoy, password)
        if ok is None:  # its address failed too often while it waited: not checked
            return self._blocked(address) or Refused(429, "too many failed logins")
        if not ok or hashed is None:
            self._failed(address)
            return Refused(401, f"wrong name or password (user {name!r})")
        self._cache[key] = time.monotonic() + CACHE_SECONDS
        self._cache.move_to_end(key)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return Allowed(name, name)

    # -- failures per address ------------------------------------------------------------

    def _blocked(self, address: str) -> Refused | None:
        failures = self._failures.get(address)
        if failures is None:
            return None
        now = time.monotonic()
        if failures.until > now:
            wait = math.ceil(failures.until - now)
            return Refused(429, f"{failures.count} failed logins from this address", wait)
        if now - failures.last > FORGET_AFTER:
            del self._failures[address]
        return None

    def _failed(self, address: str) -> None:
        now = time.monotonic()
        failures = self._failures.pop(address, None) or _Failures()
        if now - failures.last > FORGET_AFTER:
            failures.count = 0
        failures.count += 1
        failures.last = now
        beyond = failures.count - FREE_FAILURES
        if beyond >= 0:
            failures.until = now + min(MAX_BLOCK, 2.0**beyond)
        self._failures[address] = failures  # the most recent last
        while len(self._failures) > MAX_ADDRESSES:
            self._failures.popitem(last=False)

    # -- the hashing thread, shared address by address --------------------------------------

    async def _verify(self, address: str, hashed: str, password: bytes) -> bool | None:
        """Whether the password is right; None when its address got blocked meanwhile."""
        future: asyncio.Future[bool | None] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(address, deque()).append((hashed, password, future))
        self._pending += 1
        self._waiting[address] += 1
        try:
            self._next()
            return await future
        finally:
            self._pending -= 1
            self._waiting[address] -= 1
            if not self._waiting[address]:
                del self._waiting[address]

    def _next(self) -> None:
        """Give the thread the next check: the first address's, which then goes last."""
        while not self._hashing and self._queues and not self._closed:
            address = next(iter(self._queues))
            queue = self._queues.pop(address)
            hashed, password, future = queue.popleft()
            if queue:
                self._queues[address] = queue
            if future.done():  # its request is gone
                continue
            if self._blocked(address) is not None:
                # Guesses queued before their address failed too often: no hash for them.
                future.set_result(None)
                continue
            self._hashing = True
            loop = asyncio.get_running_loop()
            job = loop.run_in_executor(self._thread(), verify_password, hashed, password)
            job.add_done_callback(lambda job, future=future: self._verified(job, future))

    def _verified(self, job: asyncio.Future[bool], future: asyncio.Future[bool | None]) -> None:
        self._hashing = False
        if not future.done():
            if job.cancelled():
                future.cancel()
            elif job.exception() is not None:
                future.set_exception(job.exception())  # type: ignore[arg-type]
            else:
                future.set_result(job.result())
        if self._executor is not None:
            # After the waiting request has run (call_soon keeps the order): a failure it
            # records may block its address before that address's next guess is taken.
            asyncio.get_running_loop().call_soon(self._next)

    def _thread(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="oxidicom-auth")
        return self._executor

    def close(self) -> None:
        self._closed = True
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
