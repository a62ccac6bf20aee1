"""The DICOMweb listener: aiohttp on the receiver's event loop, STOW-RS only.

``POST /dicom-web/studies`` and ``POST /dicom-web/studies/{StudyInstanceUID}``
(PS3.18 10.5). Before a byte of the body is read (also when the client waits for
``Expect: 100-continue``), a request is checked in this order: the receiver is not
stopping (503), its credentials (401, or 503 while too many password checks wait), its
Content-Type (415/400), its Content-Length (413), the study UID of the path (400); then
it needs a free request slot (503: at most OXIDICOM_LISTENER_THREADS requests at once;
429 when its address has too many password checks waiting, or failed too often). Then its
parts are stored one after the other (:mod:`oxidicom.dicomweb.ingest`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.multipart import BodyPartReader
from aiohttp.web_urldispatcher import _default_expect_handler

from oxidicom.aio.tls import server_tls_context
from oxidicom.dicomweb.auth import Allowed, Authenticator, Refused
from oxidicom.dicomweb.connections import HttpConnections, TrackedRunner, TrackedSite
from oxidicom.dicomweb.ingest import StowRequest
from oxidicom.dicomweb.multipart import (
    BodyReads,
    Budget,
    ClientStalled,
    RequestTooLarge,
    StowMultipartReader,
    check_content_type,
    part_chunks,
)
from oxidicom.dicomweb.response import MEDIA_TYPE, PartOutcome, http_status, response_pieces
from oxidicom.dicomweb.slots import RunningRequest, StowSlots
from oxidicom.dicomweb.telemetry import request_telemetry
from oxidicom.notify.base import Notifier
from oxidicom.scp.acceptance import AcceptancePolicy
from oxidicom.storage.writer import Store
from oxidicom.support.slices import TimeSlices
from oxidicom.telemetry.logs import CURRENT_ASSOCIATION
from oxidicom.telemetry.summarized import SummarizedWarnings

if TYPE_CHECKING:
    from oxidicom.app.settings import Settings

log = logging.getLogger("oxidicom.dicomweb")

BASE: Final = "/dicom-web"
#: A UID (PS3.5 9.1): digits and dots, at most 64 characters.
_UID: Final = re.compile(r"[0-9][0-9.]{0,63}")
_ALLOWED: Final = "oxidicom.allowed"
#: Seconds aiohttp gives a request still running after stop() waited for it, before
#: cancelling it (it receives no more bytes by then).
_CANCEL_GRACE: Final = 1.0
#: The end reason of a request whose client closed the connection inside the body.
GONE: Final = "the client went away"


#: The writer's batch for STOW-RS parts. aiohttp costs the process ~11 MiB that DIMSE
#: does not (58.6 MiB idle instead of 47.5), and a 256 MiB part must keep the whole
#: receiver under 64 MiB: with the C-STORE batches (4 MiB) the peak was 66-68 MiB, with
#: 1 MiB 60.6 MiB, at the same throughput within this machine's noise (~400-500 MiB/s
#: to tmpfs, see benches/results/stow.md).
STOW_FLUSH_BYTES: Final = 1024 * 1024


def _plain(status: int, text: str, **headers: str) -> web.Response:
    return web.Response(status=status, text=text + "\n", headers=headers or None)


class StowServer:
    """The HTTP listener and what its requests share."""

    def __init__(
        self, settings: Settings, store: Store, notifier: Notifier, next_id: Callable[[], str]
    ) -> None:
        self.settings = settings
        self.store = store
        self.notifier = notifier
        self.next_id = next_id
        self.auth = Authenticator(
            settings.dicomweb_users, settings.dicomweb_token, settings.dicomweb_pacs_name
        )
        # The same SOP classes and transfer syntaxes as the DIMSE listener accepts.
        self.policy = AcceptancePolicy.from_settings(settings)
        self.max_requests = settings.max_associations
        self.slots = StowSlots(settings.max_associations, settings.min_transfer_rate)
        #: The requests running (a preempted one may still finish after giving its slot).
        self._running: set[RunningRequest] = set()
        #: Set while no request is running (stop waits for it).
        self._idle = asyncio.Event()
        self._idle.set()
        self.accepting = True
        self.app = web.Application()
        for path in (f"{BASE}/studies", f"{BASE}/studies/{{study}}"):
            self.app.router.add_post(path, self._stow, expect_handler=self._expect)
        self._runner: web.AppRunner | None = None
        #: Refused credentials, logged once per address and status during a flood.
        self.refusals = SummarizedWarnings(
            log,
            "STOW-RS from %s refused: %s",
            "refused %d more STOW-RS request(s) (%s) since the last message",
        )
        #: Connections without a running request: bounded in time and number.
        self.connections = HttpConnections(
            settings.max_pending_connections,
            settings.dicomweb_header_timeout,
            settings.dicomweb_keepalive_timeout,
        )

    # -- start and stop ------------------------------------------------------------------

    async def start(self) -> None:
        """Listen (raises OSError, or TLSSetupError for unusable TLS files)."""
        settings = self.settings
        tls = server_tls_context(settings)
        runner = TrackedRunner(
            self.app,
            self.connections,
            handle_signals=False,
            # Our own timers close idle connections (see HttpConnections); aiohttp's is
            # a backstop only.
            keepalive_timeout=settings.dicomweb_keepalive_timeout
            + settings.dicomweb_header_timeout,
            access_log=None,
            # stop() waits for running requests itself; what is left then is cancelled.
            shutdown_timeout=_CANCEL_GRACE,
        )
        await runner.setup()
        site = TrackedSite(
            runner,
            settings.dicomweb_address,
            settings.dicomweb_port,  # type: ignore[arg-type]  # set: the listener runs
            tls=tls,
            connections=self.connections,
            backlog=min(128, settings.listen_backlog),
        )
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner

    @property
    def url(self) -> str:
        """Where STOW-RS is served, as a client would write it."""
        assert self._runner is not None
        host, port = self._runner.addresses[0][:2]
        scheme = "https" if self.settings.tls_certificate else "http"
        host = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host}:{port}{BASE}/studies"

    async def stop(self) -> None:
        """Stop listening; running requests may finish for OXIDICOM_SHUTDOWN_TIMEOUT.

        aiohttp's own graceful stop (``runner.cleanup``) drops every byte that arrives
        once it has begun, so a request still receiving its body could only time out.
        The listening socket is closed first, then the running requests are waited for
        here, and only then is the runner cleaned up (idle keep-alive connections closed,
        what is still running cancelled).
        """
        self.accepting = False
        runner, self._runner = self._runner, None
        if runner is not None:
            for site in list(runner.sites):
                await site.stop()
            if self._running:
                timeout = self.settings.shutdown_timeout
                log.info(
                    "waiting up to %.0f s for %d STOW-RS request(s)", timeout, len(self._running)
                )
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._idle.wait()
            await runner.cleanup()
        self.connections.flush_logs()
        self.refusals.flush()
        self.auth.close()

    # -- requests ------------------------------------------------------------------------

    async def _admit(self, request: web.Request) -> Allowed | web.Response:
        """Everything decided before the body is read (once per request)."""
        admitted = request.get(_ALLOWED)
        if admitted is not None:
            return admitted  # type: ignore[no-any-return]
        answer = await self._check(request)
        request[_ALLOWED] = answer
        return answer

    async def _check(self, request: web.Request) -> Allowed | web.Response:
        if not self.accepting:
            return _plain(503, "stopping", **{hdrs.RETRY_AFTER: "5"})
        peer = _peer(request)
        host = peer.rpartition(":")[0]
        allowed = await self.auth.check(request.headers.get(hdrs.AUTHORIZATION), host)
        if isinstance(allowed, Refused):
            # Once per address and status, then counted: a guessing client is one line
            # per 10 s, not one per guess.
            self.refusals.occurred(f"{allowed.status} from {host}", peer, allowed.reason)
            if allowed.status == 401:
                return _plain(
                    401, "authentication required", **{hdrs.WWW_AUTHENTICATE: self.auth.challenge()}
                )
            return _plain(
                allowed.status, allowed.reason, **{hdrs.RETRY_AFTER: str(allowed.retry_after)}
            )
        problem = check_content_type(request.headers.get(hdrs.CONTENT_TYPE))
        if problem is not None:
            return _plain(problem.status, problem.reason)
        length = request.content_length
        if length is not None and length > self.settings.dicomweb_max_request_size:
            return _plain(
                413, f"larger than {self.settings.dicomweb_max_request_size} bytes (the limit)"
            )
        study = request.match_info.get("study")
        if study is not None and not _UID.fullmatch(study):
            return _plain(400, "the path's StudyInstanceUID is not a UID")
        return allowed

    async def _expect(self, request: web.Request) -> web.StreamResponse | None:
        """Expect: 100-continue: refuse before the client sends a body we would not take."""
        answer = await self._admit(request)
        if isinstance(answer, web.Response):
            answer.force_close()
            return answer
        await _default_expect_handler(request)
        return None

    async def _stow(self, request: web.Request) -> web.StreamResponse:
        answer = await self._admit(request)
        if isinstance(answer, web.Response):
            answer.force_close()
            return answer
        loop = asyncio.get_running_loop()
        running = RunningRequest(_peer(request), self.settings.idle_timeout, loop.time())
        # Here, where the slot is taken: no await between the check and the taking.
        if not self.accepting or not self.slots.acquire(running, loop.time()):
            busy = _plain(
                503, f"{self.max_requests} requests already running", **{hdrs.RETRY_AFTER: "1"}
            )
            busy.force_close()
            return busy
        self._running.add(running)
        self._idle.clear()
        telemetry = request_telemetry(self.next_id(), _peer(request))
        scope = CURRENT_ASSOCIATION.set(telemetry)
        try:
            telemetry.started(request.method, request.path, answer.pacs_name, answer.user)
            stow = StowRequest(
                store=self.store,
                notifier=self.notifier,
                policy=self.policy,
                telemetry=telemetry,
                pacs_name=answer.pacs_name,
                study_instance_uid=request.match_info.get("study"),
                flush_bytes=min(STOW_FLUSH_BYTES, self.store.flush_bytes),
                storage_waits=running,
            )
            log.info(
                "STOW-RS request from %s as %s%s",
                _peer(request),
                answer.pacs_name,
                f" (user {answer.user})" if answer.user else "",
            )
            status, reason = await self._receive(request, stow, running.reads)
            if status is None:
                status = http_status(stow.outcomes) if stow.outcomes else 400
            gone = reason == GONE
            telemetry.finished(
                status, reason if gone or (status >= 400 and not stow.outcomes) else None
            )
            if not stow.outcomes:
                response = _plain(status, reason)
            else:
                response = web.Response(
                    status=status, body=await _answer(stow.outcomes), content_type=MEDIA_TYPE
                )
            if gone or status in (400, 408, 413):
                response.force_close()  # the rest of the body is not read
            return response
        except BaseException as error:  # cancelled at the end of a stop, or a bug
            telemetry.finished(500, f"request not completed: {error!r}")
            raise
        finally:
            CURRENT_ASSOCIATION.reset(scope)
            self._running.discard(running)
            self.slots.release(running)
            if not self._running:
                self._idle.set()

    async def _receive(
        self, request: web.Request, stow: StowRequest, reads: BodyReads
    ) -> tuple[int | None, str]:
        """Store every part; (HTTP status when it is not the parts' to say, end reason)."""
        budget = Budget(self.settings.dicomweb_max_request_size)
        max_parts = self.settings.dicomweb_max_parts
        slices = TimeSlices()
        status: int | None = None
        reason = "completed"
        try:
            reader = StowMultipartReader(request.headers, request.content)
            while True:
                # Parts already in the buffer are read without a wait: the loop is given
                # back between them, so no other peer waits for a request of many parts.
                await slices.checkpoint()
                part = await reads.wait(reader.next())  # a part's headers, or the end
                if part is None:
                    break
                if len(stow.outcomes) >= max_parts:
                    raise RequestTooLarge(
                        f"more than {max_parts} parts (OXIDICOM_DICOMWEB_MAX_PARTS)"
                    )
                if not isinstance(part, BodyPartReader):
                    # A nested multipart is no instance, and draining it would escape the
                    # size limit: the body is malformed for STOW-RS.
                    raise ValueError("a part is itself multipart")
                chunks = part_chunks(part, budget, reads)
                await stow.store_part(chunks, part.headers.get(hdrs.CONTENT_TYPE))
            if not stow.outcomes:
                status, reason = 400, "the multipart body has no part"
        except RequestTooLarge as error:
            status, reason = 413, str(error)
        except ClientStalled as error:
            status, reason = 408, str(error)
        except (ConnectionError, HttpProcessingError) as error:
            log.debug("STOW-RS body lost", exc_info=error)
            reason = GONE
        except ValueError as error:  # aiohttp's word for broken multipart framing
            status, reason = 400, f"malformed multipart body: {error}"
        except BaseException:
            stow.end("cancelled")
            raise
        stow.end(reason)
        return status, reason


async def _answer(outcomes: list[PartOutcome]) -> bytes:
    """The response body, made a slice at a time (thousands of parts take ~100 ms)."""
    pieces = []
    slices = TimeSlices()
    for piece in response_pieces(outcomes):
        pieces.append(piece)
        await slices.checkpoint()
    return b"".join(pieces)


def _peer(request: web.Request) -> str:
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return request.remote or "?"
