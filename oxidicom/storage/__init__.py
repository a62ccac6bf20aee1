"""Instances to files: CUBE's layout (pure), the streaming writer, the series tally.

A data set is appended to a temporary file as its fragments arrive, given its Part-10
meta, and renamed into CUBE's folder tree once complete.
"""

from oxidicom.storage.layout import pacs_dir_name, patient_age_days, study_date_iso
from oxidicom.storage.series import SeriesAccumulator, SeriesRecord
from oxidicom.storage.tmpdir import LOCK_NAME, WorkDir
from oxidicom.storage.writer import InstanceWriter, StorageError, Store, StoredInstance

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
