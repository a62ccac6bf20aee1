"""The error a data set raises when it cannot be stored.

It carries what the C-STORE response needs (PS3.4 Annex B.2.3, PS3.7 Annex C.4.2):
the failure ``status`` (a :class:`~oxidicom.dimse.commands.Status`) and the ErrorComment
(0000,0902) text in ``comment``.
"""

from typing import Final

from oxidicom.dimse.commands import Status

#: ErrorComment is LO: at most 64 characters (PS3.5 Table 6.2-1).
_MAX_COMMENT: Final = 64


class DatasetError(Exception):
    """A received data set that cannot be stored.

    ``status`` is the C-STORE failure status to answer with, ``comment`` the full
    human-readable reason (also ``str(error)``); :attr:`error_comment` is ``comment``
    cut to the 64 characters an LO element can hold.
    """

    def __init__(self, status: int, comment: str) -> None:
        super().__init__(comment)
        self.status = status
        self.comment = comment

    @property
    def error_comment(self) -> str:
        """``comment`` shortened to fit ErrorComment (0000,0902), VR LO."""
        c = self.comment
        return c if len(c) <= _MAX_COMMENT else c[: _MAX_COMMENT - 3] + "..."

    def __repr__(self) -> str:
        return f"{type(self).__name__}(0x{self.status:04X}, {self.comment!r})"


class UndecodableDatasetError(DatasetError):
    """The data set bytes do not follow PS3.5 (status 0xC000)."""

    def __init__(self, comment: str) -> None:
        super().__init__(Status.CANNOT_UNDERSTAND, comment)


class MissingAttributeError(DatasetError):
    """A required attribute is missing or has an invalid value (status 0xC001)."""

    def __init__(self, comment: str) -> None:
        super().__init__(Status.MISSING_REQUIRED_ATTRIBUTE, comment)


class DatasetMismatchError(DatasetError):
    """The data set is not the instance its C-STORE-RQ names (status 0xA900).

    ``comment`` names both values; UIDs longer than the standard's 64 characters are
    shortened in it.
    """

    def __init__(self, keyword: str, in_dataset: str, in_command: str) -> None:
        super().__init__(
            Status.DATASET_DOES_NOT_MATCH_SOP_CLASS,
            f"{keyword} {_shortened(in_dataset)} of the data set is not the command's "
            f"{_shortened(in_command)}",
        )


def _shortened(uid: str) -> str:
    return uid if len(uid) <= _MAX_COMMENT else uid[: _MAX_COMMENT - 3] + "..."


def tag_str(tag: int) -> str:
    """Format a tag the way PS3.6 does: ``(0008,0020)``."""
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
