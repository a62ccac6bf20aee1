"""Wires the rooms together: storage, notifications, the listener; start-up and shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from oxidicom import telemetry
from oxidicom.aio.server import Receiver
from oxidicom.aio.tls import TLSSetupError
from oxidicom.app.descriptors import fit_settings
from oxidicom.app.settings import Settings
from oxidicom.app.workers import Handoff
from oxidicom.notify.broker_url import parse_broker_url
from oxidicom.notify.notifier import ChrisNotifier, build_notifier
from oxidicom.scp import access
from oxidicom.scp.services import ScpService
from oxidicom.scp.shares import WHOLE
from oxidicom.storage.writer import Store
from oxidicom.support import extensions
from oxidicom.support.urls import redact
from oxidicom.telemetry import exhaustion

if TYPE_CHECKING:
    from oxidicom.dicomweb.server import StowServer

log = logging.getLogger("oxidicom")


class StartError(Exception):
    """The receiver cannot start (port in use, storage not writable): one line for the user."""


def describe_start(settings: Settings, receiver: Receiver) -> str:
    """The one start line: where we listen, who we are, where files and messages go."""
    address = settings.listener_address
    broker = (
        f"Celery broker {parse_broker_url(settings.celery_broker).name}"
        f" {redact(settings.celery_broker)} queue {settings.queue_name}"
        if settings.celery_broker
        else "no Celery broker (registrations stay in the outbox)"
    )
    nats = f"NATS {redact(settings.nats_address)}" if settings.nats_address else "no NATS"
    tls = " (DICOM TLS)" if settings.tls_certificate else ""
    return (
        f"oxidicom listening on {address}:{receiver.port}{tls} as AE title {settings.scp_aet!r};"
        f" files under {Path(settings.files_root).resolve()};"
        f" outbox {Path(settings.outbox_dir).resolve()}; {broker}; {nats}"
    )


def _log_access(settings: Settings, receiver: Receiver) -> None:
    policy = receiver.context.access
    summary = access.describe(policy)
    if summary is not None:
        log.info(summary)
    tls = settings.tls_certificate is not None
    warning = access.health_check_warning(policy, settings.listener_address, tls)
    if warning is not None:
        log.warning(warning)


async def serve(
    settings: Settings,
    *,
    started: Callable[[Receiver], None] | None = None,
    handoff: Handoff | None = None,
) -> None:
    """Run the receiver until SIGINT or SIGTERM, then stop gracefully.

    ``handoff``: this is one of several workers, served connections by a supervisor
    (``oxidicom/app/workers.py``), which it also stops without; without it the
    receiver listens on its own.
    """
    loop = asyncio.get_running_loop()
    # Handlers first: a signal arriving once we have said we listen must stop us cleanly.
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    telemetry.setup()  # here, in the serving process: each worker exports its own
    settings, descriptors = fit_settings(settings)
    exhaustion.install_loop_handler(loop)
    try:
        receiver, notifier = await _start(settings, handoff, stop.set)
        share = receiver.context.share
        stow = await _start_dicomweb(settings, receiver, notifier) if share.index == 0 else None
        log.info(describe_start(settings, receiver))
        if share.count > 1:
            log.info(
                "%s: at most %d association(s) and %d connection(s) without one here%s",
                share,
                receiver.context.max_associations,
                receiver.context.max_pending,
                "; DICOMweb in worker 1" if settings.dicomweb_port is not None else "",
            )
        log.info(extensions.describe())
        log.info(
            "descriptor limit %d (hard %d): at most %d connection(s) without an association"
            " or request per listener",
            descriptors.soft,
            descriptors.hard,
            descriptors.max_pending,
        )
        if descriptors.warning is not None:
            log.warning(descriptors.warning)
        await notifier.announce()  # the port is ours: what waits in the outbox is not a rival's
        _log_access(settings, receiver)
        if stow is not None:
            log.info(describe_dicomweb(settings, stow))
            _warn_weak_hashes(settings)
        if started is not None:
            started(receiver)
        await stop.wait()
        log.info("stopping: no new associations")
        if stow is not None:
            # Both listeners stop at once. The store closes (its temporary folder goes) at
            # the end of receiver.stop, once its background work is drained: the running
            # STOW-RS requests are made part of that work, so they finish writing first.
            stopping = asyncio.ensure_future(stow.stop())
            receiver.context.store.track(stopping)
        await receiver.stop(settings.shutdown_timeout)
        await notifier.stop()
        exhaustion.flush()
        log.info("stopped")
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await loop.run_in_executor(None, telemetry.shutdown)  # flush spans and metrics


def describe_dicomweb(settings: Settings, stow: StowServer) -> str:
    """The start line of the DICOMweb listener: where, and who may store."""
    if settings.dicomweb_users is not None:
        who = f"HTTP Basic users of {settings.dicomweb_users.path}"
        if settings.dicomweb_token is not None:
            who += " or the bearer token"
    elif settings.dicomweb_token is not None:
        who = f"the bearer token, as {settings.dicomweb_pacs_name}"
    else:
        who = f"anyone, without authentication, as {settings.dicomweb_pacs_name}"
    return f"DICOMweb STOW-RS at {stow.url}; may store: {who}"


def _warn_weak_hashes(settings: Settings) -> None:
    """Warn (the receiver still starts) of users whose hash makes guessing cheap."""
    from oxidicom.dicomweb.auth import MIN_BCRYPT_COST, weak_hashes

    users = settings.dicomweb_users
    weak = weak_hashes(users) if users is not None else []
    if weak:
        assert users is not None
        log.warning(
            "%s: the password hash of %s is cheap to guess (bcrypt cost below %d, or"
            " argon2 with less than 19 MiB): one core checks hundreds of guesses a second;"
            " make it again with: htpasswd -nbB -C 12 NAME PASSWORD",
            users.path,
            ", ".join(weak),
            MIN_BCRYPT_COST,
        )


async def _start_dicomweb(
    settings: Settings, receiver: Receiver, notifier: ChrisNotifier
) -> StowServer | None:
    """The STOW-RS listener, when OXIDICOM_DICOMWEB_PORT is set."""
    if settings.dicomweb_port is None:
        return None
    from oxidicom.dicomweb.server import StowServer  # aiohttp is loaded only when needed

    context = receiver.context
    stow = StowServer(settings, context.store, notifier, context.next_association_id)
    try:
        await stow.start()
    except (OSError, TLSSetupError) as error:
        await receiver.stop(0)
        await notifier.stop()
        context.store.close()
        detail = error.strerror or error if isinstance(error, OSError) else error
        raise StartError(
            f"cannot listen for DICOMweb on {settings.dicomweb_address}:{settings.dicomweb_port}:"
            f" {detail}"
        ) from error
    return stow


async def _start(
    settings: Settings, handoff: Handoff | None, lost: Callable[[], None]
) -> tuple[Receiver, ChrisNotifier]:
    store = Store(settings.files_root, fsync=settings.fsync)
    try:
        store.prepare()
    except OSError as error:
        message = f"cannot use OXIDICOM_FILES_ROOT={settings.files_root!r}: {error}"
        raise StartError(message) from error
    stale = store.remove_stale_temporary_files()
    if stale:
        log.warning("removed %d temporary file(s) left by an earlier run", stale)
    notifier = build_notifier(settings, family=handoff.family if handoff is not None else "")
    try:
        await notifier.start()
    except OSError as error:
        store.close()
        message = f"cannot use OXIDICOM_OUTBOX_DIR={settings.outbox_dir!r}: {error}"
        raise StartError(message) from error
    share = WHOLE if handoff is None else handoff.share
    receiver = Receiver(ScpService(settings, store, notifier, share))
    try:
        if handoff is None:
            await receiver.start()
        else:
            channel = socket.socket(fileno=handoff.channel_fd)
            receiver.start_handoff(channel, handoff.port, lost)
    except TLSSetupError as error:
        await notifier.stop()
        store.close()
        raise StartError(str(error)) from error
    except OSError as error:
        await notifier.stop()
        store.close()
        raise StartError(
            f"cannot listen on {settings.listener_address}:{settings.listener_port}:"
            f" {error.strerror or error}"
        ) from error
    return receiver, notifier
