"""Reading back what the SDK's in-memory exporters hold, and an in-process receiver."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from oxidicom.aio.server import Receiver
from oxidicom.app.settings import load_settings
from oxidicom.dicom.head import HeadFields
from oxidicom.dicom.uids import IMPLICIT_VR_LITTLE_ENDIAN, VERIFICATION_SOP_CLASS
from oxidicom.scp.services import ScpService
from oxidicom.storage.series import SeriesRecord
from oxidicom.storage.writer import Store
from oxidicom.ul import pdu
from oxidicom.ul.constants import DICOM_APPLICATION_CONTEXT, AbortSource


class SilentNotifier:
    """A Notifier that tells nobody: for receivers run inside a test process."""

    def series_starting(self, series: SeriesRecord, fields: HeadFields, series_dir: str) -> None:
        pass

    def instance_stored(self, series: SeriesRecord) -> None:
        pass

    def instance_failed(
        self, association_id: str, pacs_name: str, series_instance_uid: str | None, message: str
    ) -> None:
        pass

    def association_ended(self, association_id: str, series: list[SeriesRecord]) -> None:
        pass


def metric_points(reader: InMemoryMetricReader) -> dict[str, list[object]]:
    """Metric name -> its data points, from one collection."""
    points: dict[str, list[object]] = {}
    data = reader.get_metrics_data()
    if data is None:
        return points
    for resource_metrics in data.resource_metrics:
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                points.setdefault(metric.name, []).extend(metric.data.data_points)
    return points


def value(points: dict[str, list[object]], name: str, **attributes: str) -> int | float:
    for point in points.get(name, []):
        if dict(point.attributes or {}) == attributes:  # type: ignore[attr-defined]
            return point.value  # type: ignore[attr-defined]
    return 0


def association_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == "dicom.association"]


@asynccontextmanager
async def in_process_receiver(tmp: Path, **env: str) -> AsyncIterator[Receiver]:
    settings = load_settings(
        {
            "OXIDICOM_FILES_ROOT": str(tmp / "files"),
            "OXIDICOM_OUTBOX_DIR": str(tmp / "outbox"),
            "OXIDICOM_LISTENER_PORT": "0",
            "OXIDICOM_LISTENER_ADDRESS": "127.0.0.1",
            **env,
        },
        cwd=tmp,
    )
    store = Store(settings.files_root)
    store.prepare()
    receiver = Receiver(ScpService(settings, store, SilentNotifier()))
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop(5)


def echo_request(calling: str = "ABORTER") -> bytes:
    return pdu.encode(
        pdu.AssociateRQ(
            called_ae_title="ChRIS",
            calling_ae_title=calling,
            application_context=DICOM_APPLICATION_CONTEXT,
            presentation_contexts=(
                pdu.PresentationContextRQ(1, VERIFICATION_SOP_CLASS, (IMPLICIT_VR_LITTLE_ENDIAN,)),
            ),
            user_information=pdu.UserInformation(maximum_length=16384),
        )
    )


async def associate_then_abort(port: int) -> None:
    """Associate, then A-ABORT as the service user, and wait for the receiver to close."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(echo_request())
    header = await reader.readexactly(6)
    assert header[0] == 0x02, f"expected A-ASSOCIATE-AC, got PDU type {header[0]:#04x}"
    await reader.readexactly(int.from_bytes(header[2:6], "big"))
    writer.write(pdu.encode(pdu.Abort(AbortSource.SERVICE_USER)))
    await writer.drain()
    assert await reader.read() == b""  # the receiver closed: the association is over
    writer.close()
