"""pynetdicom as a test SCU, without the race that loses responses (pynetdicom issue #875).

Every pynetdicom association has a reactor thread that polls the DIMSE message queue
(``dimse.get_msg(block=False)``) to serve requests from the peer. ``send_c_store()`` and
the other ``send_*()`` pause it before sending, but the pause has a window: the reactor
can pass its checkpoint just as the pause begins and, once the GIL lets it run again,
take the response that ``send_*()`` is waiting for. That call then waits for the DIMSE
timeout and returns an empty data set, and pynetdicom logs "Received unexpected C-STORE
service message": a client failure although the receiver answered. Measured here: about
one C-STORE in a thousand under load.

The receiver never sends requests on an association it accepted, so an SCU's reactor has
nothing to serve: :func:`scu_only` keeps it from reading the queue, and every response
reaches the ``send_*()`` call waiting for it (they read with ``block=True``).
"""

from __future__ import annotations

from typing import Any

from pynetdicom.association import Association


def scu_only(assoc: Association) -> Association:
    """Let only the ``send_*()`` calls of ``assoc`` take DIMSE messages (see above)."""
    dimse = assoc.dimse
    blocking_get = dimse.get_msg

    def get_msg(block: bool = False) -> Any:
        if not block:  # the reactor's poll: it would race send_*() for the response
            return None, None
        return blocking_get(True)

    dimse.get_msg = get_msg  # type: ignore[method-assign]
    return assoc
