"""The one error the Upper Layer core raises for bad input."""

from oxidicom.ul.constants import AbortReason


class ULProtocolError(Exception):
    """A peer broke PS3.8: the connection answers with one A-ABORT and closes.

    ``reason`` is the A-ABORT "Reason/Diag." value to send (service-provider source).
    """

    def __init__(self, reason: AbortReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
