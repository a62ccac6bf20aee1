"""DICOMweb authentication: the users file, the bearer token, and what a guess costs."""

from __future__ import annotations

import asyncio
import base64
import threading
from pathlib import Path

import argon2
import bcrypt
import pytest

from oxidicom.dicomweb import auth
from oxidicom.dicomweb.auth import (
    Allowed,
    Authenticator,
    Refused,
    parse_token_file,
    parse_users_file,
    verify_password,
)

TOKEN = "0123456789abcdef0123456789abcdef"


def bcrypt_hash(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()


def argon2_hash(password: str) -> str:
    return argon2.PasswordHasher(time_cost=1, memory_cost=1024).hash(password)


def users_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "users"
    path.write_text(text)
    return str(path)


def basic(name: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()


def test_users_file_with_bcrypt_argon2_comments_and_blank_lines(tmp_path: Path) -> None:
    text = f"# PACS of the lab\nLABPACS:{bcrypt_hash('a')}\n\n  SCANNER2 : {argon2_hash('b')}\n"
    users = parse_users_file(users_file(tmp_path, text))
    assert sorted(users.hashes) == ["LABPACS", "SCANNER2"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("LABPACS\n", "line 1: expected name:hash"),
        ("LABPACS:secret\n", "neither bcrypt nor argon2"),
        ("LABPACS:$argon2id$v=19$garbage\n", "neither bcrypt nor argon2"),
        (f"A_NAME_FAR_TOO_LONG_FOR_AN_AE:{'$2b$04$' + 'a' * 53}\n", "not valid"),
        ("# nobody\n", "lists no user"),
    ],
)
def test_bad_users_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_users_file(users_file(tmp_path, text))


def test_a_user_listed_twice_is_refused(tmp_path: Path) -> None:
    line = f"LABPACS:{bcrypt_hash('a')}\n"
    with pytest.raises(ValueError, match="line 2: 'LABPACS' appears twice"):
        parse_users_file(users_file(tmp_path, line + line))


def test_missing_users_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read it"):
        parse_users_file(str(tmp_path / "nope"))


def test_token_file_takes_its_first_line_and_refuses_a_short_token(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(f"\n{TOKEN}\nignored\n")
    assert parse_token_file(str(path)) == TOKEN
    path.write_text("short\n")
    with pytest.raises(ValueError, match="at least 32"):
        parse_token_file(str(path))


def test_verify_password_both_kinds_and_a_password_over_72_bytes() -> None:
    assert verify_password(bcrypt_hash("right"), b"right")
    assert not verify_password(bcrypt_hash("right"), b"wrong")
    assert verify_password(argon2_hash("right"), b"right")
    assert not verify_password(argon2_hash("right"), b"wrong")
    assert not verify_password(bcrypt_hash("right"), b"x" * 100)  # bcrypt 5 raises: a no


def authenticator(tmp_path: Path, token: str | None = None) -> Authenticator:
    text = f"LABPACS:{bcrypt_hash('secret')}\nOTHER:{argon2_hash('pw')}\n"
    return Authenticator(parse_users_file(users_file(tmp_path, text)), token, "DICOMWEB")


async def test_basic_user_stores_under_its_own_name(tmp_path: Path) -> None:
    checker = authenticator(tmp_path)
    assert await checker.check(basic("LABPACS", "secret")) == Allowed("LABPACS", "LABPACS")
    assert await checker.check(basic("OTHER", "pw")) == Allowed("OTHER", "OTHER")
    checker.close()


@pytest.mark.parametrize(
    "header",
    [None, "", "Basic !!!", "Basic " + base64.b64encode(b"nocolon").decode(), "Digest x=1"],
)
async def test_missing_or_malformed_credentials_get_401(tmp_path: Path, header: str | None) -> None:
    checker = authenticator(tmp_path)
    answer = await checker.check(header)
    assert isinstance(answer, Refused) and answer.status == 401
    assert checker.challenge() == 'Basic realm="oxidicom", charset="UTF-8"'
    checker.close()


async def test_wrong_password_and_unknown_user_get_401(tmp_path: Path) -> None:
    checker = authenticator(tmp_path)
    for header in (basic("LABPACS", "guess"), basic("NOBODY", "secret")):
        answer = await checker.check(header)
        assert isinstance(answer, Refused) and answer.status == 401
    checker.close()


async def test_a_verified_password_is_not_hashed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checker = authenticator(tmp_path)
    calls: list[str] = []
    real = auth.verify_password

    def counting(hashed: str, password: bytes) -> bool:
        calls.append(threading.current_thread().name)
        return real(hashed, password)

    monkeypatch.setattr(auth, "verify_password", counting)
    for _ in range(5):
        assert isinstance(await checker.check(basic("LABPACS", "secret")), Allowed)
    assert len(calls) == 1
    assert calls[0].startswith("oxidicom-auth")  # its own thread: not the loop, not storage's
    assert isinstance(await checker.check(basic("LABPACS", "other")), Refused)
    assert len(calls) == 2  # a different password is checked, never taken from the cache
    checker.close()


async def test_too_many_waiting_checks_get_503_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checker = authenticator(tmp_path)
    release = threading.Event()

    def blocked(hashed: str, password: bytes) -> bool:
        release.wait(10)
        return False

    monkeypatch.setattr(auth, "verify_password", blocked)
    per_address = auth.MAX_PENDING_PER_ADDRESS
    waiting = [
        asyncio.ensure_future(
            checker.check(basic("LABPACS", f"guess{i}"), f"10.0.1.{i // per_address}")
        )
        for i in range(auth.MAX_PENDING)
    ]
    await asyncio.sleep(0)  # one turn of the loop: each runs up to its executor call
    assert checker._pending == auth.MAX_PENDING
    answer = await checker.check(basic("LABPACS", "one more"), "10.0.2.1")
    assert answer == Refused(503, "too many password checks waiting")
    release.set()
    answers = await asyncio.gather(*waiting)
    assert {a.status for a in answers if isinstance(a, Refused)} == {401}
    checker.close()


async def test_bearer_token_stores_under_the_configured_pacs_name(tmp_path: Path) -> None:
    checker = Authenticator(None, TOKEN, "DICOMWEB")
    assert await checker.check(f"Bearer {TOKEN}") == Allowed("DICOMWEB", None)
    answer = await checker.check("Bearer " + "f" * 32)
    assert isinstance(answer, Refused) and answer.status == 401
    assert isinstance(await checker.check(basic("LABPACS", "secret")), Refused)
    assert checker.challenge() == 'Bearer realm="oxidicom"'


async def test_without_users_or_token_everyone_is_the_pacs_name() -> None:
    checker = Authenticator(None, None, "DICOMWEB")
    assert not checker.enabled
    assert await checker.check(None) == Allowed("DICOMWEB", None)


# -- fairness between addresses (issue 20) -------------------------------------------------


class GatedHashes:
    """verify_password, recording each password and holding the first until released."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[bytes] = []
        self.release = threading.Event()
        real = auth.verify_password

        def gated(hashed: str, password: bytes) -> bool:
            self.calls.append(password)
            if len(self.calls) == 1:
                self.release.wait(10)
            return real(hashed, password)

        monkeypatch.setattr(auth, "verify_password", gated)


async def test_checks_are_taken_address_by_address_not_in_order_of_arrival(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checker = authenticator(tmp_path)
    hashes = GatedHashes(monkeypatch)
    guesses = [
        asyncio.ensure_future(checker.check(basic("LABPACS", f"guess{i}"), "10.0.0.66"))
        for i in range(4)
    ]
    await asyncio.sleep(0)  # one turn of the loop: each is queued
    user = asyncio.ensure_future(checker.check(basic("LABPACS", "secret"), "10.0.0.1"))
    await asyncio.sleep(0)
    hashes.release.set()
    assert await user == Allowed("LABPACS", "LABPACS")
    await asyncio.gather(*guesses)
    # The guess being hashed, then one more of its address, then the user's: not last.
    assert hashes.calls.index(b"secret") <= 2, hashes.calls
    checker.close()


async def test_one_address_cannot_fill_the_queue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checker = authenticator(tmp_path)
    hashes = GatedHashes(monkeypatch)
    guesses = [
        asyncio.ensure_future(checker.check(basic("LABPACS", f"guess{i}"), "10.0.0.66"))
        for i in range(auth.MAX_PENDING_PER_ADDRESS)
    ]
    await asyncio.sleep(0)
    answer = await checker.check(basic("LABPACS", "one more"), "10.0.0.66")
    assert isinstance(answer, Refused) and answer.status == 429
    user = asyncio.ensure_future(checker.check(basic("LABPACS", "secret"), "10.0.0.1"))
    await asyncio.sleep(0)
    hashes.release.set()
    assert await user == Allowed("LABPACS", "LABPACS")
    await asyncio.gather(*guesses)
    checker.close()


async def test_repeated_failures_refuse_the_address_for_a_while_but_not_the_user_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checker = authenticator(tmp_path)
    calls: list[bytes] = []
    real = auth.verify_password
    monkeypatch.setattr(auth, "verify_password", lambda h, p: calls.append(p) or real(h, p))
    for i in range(auth.FREE_FAILURES):
        answer = await checker.check(basic("LABPACS", f"guess{i}"), "10.0.0.66")
        assert isinstance(answer, Refused) and answer.status == 401
    checked = len(calls)
    answer = await checker.check(basic("LABPACS", "guess-again"), "10.0.0.66")
    assert isinstance(answer, Refused) and answer.status == 429 and answer.retry_after >= 1
    assert len(calls) == checked  # refused without a hash
    assert await checker.check(basic("LABPACS", "secret"), "10.0.0.1") == Allowed(
        "LABPACS", "LABPACS"
    )
    # A wrong bearer token counts the same way.
    tokens = Authenticator(None, TOKEN, "DICOMWEB")
    for _ in range(auth.FREE_FAILURES):
        assert (await tokens.check("Bearer " + "f" * 32, "10.0.0.66")).status == 401  # type: ignore[union-attr]
    assert (await tokens.check("Bearer " + "f" * 32, "10.0.0.66")).status == 429  # type: ignore[union-attr]
    assert await tokens.check(f"Bearer {TOKEN}", "10.0.0.1") == Allowed("DICOMWEB", None)
    checker.close()


def test_cheap_hashes_are_named(tmp_path: Path) -> None:
    strong = bcrypt.hashpw(b"a", bcrypt.gensalt(rounds=auth.MIN_BCRYPT_COST)).decode()
    text = f"CHEAP:{bcrypt_hash('a')}\nSTRONG:{strong}\nARGON:{argon2_hash('b')}\n"
    users = parse_users_file(users_file(tmp_path, text))
    assert auth.weak_hashes(users) == ["CHEAP", "ARGON"]


async def test_guesses_queued_before_their_address_is_blocked_are_not_hashed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checker = authenticator(tmp_path)
    for i in range(auth.FREE_FAILURES - 1):
        await checker.check(basic("LABPACS", f"early{i}"), "10.0.0.66")
    hashes = GatedHashes(monkeypatch)  # the next guess is the 5th failure, held
    guesses = [
        asyncio.ensure_future(checker.check(basic("LABPACS", f"guess{i}"), "10.0.0.66"))
        for i in range(auth.MAX_PENDING_PER_ADDRESS)
    ]
    await asyncio.sleep(0)
    hashes.release.set()
    answers = await asyncio.gather(*guesses)
    assert [a.status for a in answers] == [401, 429, 429, 429]  # type: ignore[union-attr]
    assert len(hashes.calls) == 1
    checker.close()
