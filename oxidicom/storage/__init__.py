"""Instances to files: CUBE's layout (pure), the streaming writer, the series tally.

A data set is appended to a temporary file as its fragments arrive, given its Part-10
meta, and renamed into CUBE's folder tree once complete.
"""

from typing import TYPE_CHECKING

from oxidicom.support.lazy import lazy_exports

if TYPE_CHECKING:
    from oxidicom.storage.layout import pacs_dir_name, patient_age_days, study_date_iso
    from oxidicom.storage.series import SeriesAccumulator, SeriesRecord
    from oxidicom.storage.tmpdir import LOCK_NAME, WorkDir
    from oxidicom.storage.writer import InstanceWriter, StorageError, Store, StoredInstance

# Imported on first use (oxidicom.support.lazy).
_WHERE = {
    "pacs_dir_name": "oxidicom.storage.layout",
    "patient_age_days": "oxidicom.storage.layout",
    "study_date_iso": "oxidicom.storage.layout",
    "SeriesAccumulator": "oxidicom.storage.series",
    "SeriesRecord": "oxidicom.storage.series",
    "LOCK_NAME": "oxidicom.storage.tmpdir",
    "WorkDir": "oxidicom.storage.tmpdir",
    "InstanceWriter": "oxidicom.storage.writer",
    "StorageError": "oxidicom.storage.writer",
    "Store": "oxidicom.storage.writer",
    "StoredInstance": "oxidicom.storage.writer",
}
__getattr__ = lazy_exports(__name__, _WHERE)


__all__ = [
    "LOCK_NAME",
    "InstanceWriter",
    "SeriesAccumulator",
    "SeriesRecord",
    "StorageError",
    "Store",
    "StoredInstance",
    "WorkDir",
    "pacs_dir_name",
    "patient_age_days",
    "study_date_iso",
]
