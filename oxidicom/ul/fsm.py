"""The DICOM Upper Layer state machine of an association acceptor, as data.

PS3.8 section 9.2, Table 9-10. oxidicom only ever accepts associations, so the
states and actions of a requestor (Sta4, Sta5, Sta7, Sta9-Sta12; AE-1 to AE-4,
AR-1, AR-3, AR-6, AR-8 to AR-10) are left out: a requestor-only event is never
raised here. Every (state, event) pair missing from :data:`TRANSITIONS` is a
programming error, not peer input: peer input always maps to a cell.
"""

from enum import IntEnum


class State(IntEnum):
    """PS3.8 Table 9-1 (acceptor subset)."""

    STA1 = 1  #: Idle
    STA2 = 2  #: Transport connection open (awaiting A-ASSOCIATE-RQ PDU)
    STA3 = 3  #: Awaiting local A-ASSOCIATE response primitive
    STA6 = 6  #: Association established and ready for data transfer
    STA8 = 8  #: Awaiting local A-RELEASE response primitive
    STA13 = 13  #: Awaiting transport connection close indication


class Evt(IntEnum):
    """PS3.8 Table 9-2: the state machine's input, not the events a connection returns.

    Those are :data:`oxidicom.ul.events.Event`, the union handed to the association.
    """

    EVT3 = 3  #: A-ASSOCIATE-AC PDU received
    EVT4 = 4  #: A-ASSOCIATE-RJ PDU received
    EVT5 = 5  #: Transport connection indication
    EVT6 = 6  #: A-ASSOCIATE-RQ PDU received
    EVT7 = 7  #: A-ASSOCIATE response primitive (accept)
    EVT8 = 8  #: A-ASSOCIATE response primitive (reject)
    EVT9 = 9  #: P-DATA request primitive
    EVT10 = 10  #: P-DATA-TF PDU received
    EVT12 = 12  #: A-RELEASE-RQ PDU received
    EVT13 = 13  #: A-RELEASE-RP PDU received
    EVT14 = 14  #: A-RELEASE response primitive
    EVT15 = 15  #: A-ABORT request primitive
    EVT16 = 16  #: A-ABORT PDU received
    EVT17 = 17  #: Transport connection closed indication
    EVT18 = 18  #: ARTIM timer expired
    EVT19 = 19  #: Unrecognized or invalid PDU received


class Action(IntEnum):
    """PS3.8 Tables 9-6 to 9-9 (acceptor subset)."""

    AE_5 = 505  #: Issue transport connection response; start ARTIM
    AE_6 = 506  #: Stop ARTIM; issue A-ASSOCIATE indication
    AE_7 = 507  #: Send A-ASSOCIATE-AC PDU
    AE_8 = 508  #: Send A-ASSOCIATE-RJ PDU; start ARTIM
    DT_1 = 601  #: Send P-DATA-TF PDU
    DT_2 = 602  #: Issue P-DATA indication
    AR_2 = 702  #: Issue A-RELEASE indication
    AR_4 = 704  #: Send A-RELEASE-RP PDU; start ARTIM
    AR_5 = 705  #: Stop ARTIM
    AR_7 = 707  #: Send P-DATA-TF PDU (while the release is pending)
    AA_1 = 801  #: Send A-ABORT PDU (service-user source); (re)start ARTIM
    AA_2 = 802  #: Stop ARTIM; close transport connection
    AA_3 = 803  #: Issue A-ABORT / A-P-ABORT indication; close transport connection
    AA_4 = 804  #: Issue A-P-ABORT indication
    AA_5 = 805  #: Stop ARTIM
    AA_6 = 806  #: Ignore PDU
    AA_7 = 807  #: Send A-ABORT PDU
    AA_8 = 808  #: Send A-ABORT PDU (service-provider source); issue A-P-ABORT; start ARTIM


S, E, A = State, Evt, Action

#: (state, event) -> (action, next state). PS3.8 Table 9-10, acceptor columns.
TRANSITIONS: dict[tuple[State, Evt], tuple[Action, State]] = {
    (S.STA1, E.EVT5): (A.AE_5, S.STA2),
    # Sta2: waiting for the A-ASSOCIATE-RQ.
    (S.STA2, E.EVT3): (A.AA_1, S.STA13),
    (S.STA2, E.EVT4): (A.AA_1, S.STA13),
    (S.STA2, E.EVT6): (A.AE_6, S.STA3),
    (S.STA2, E.EVT10): (A.AA_1, S.STA13),
    (S.STA2, E.EVT12): (A.AA_1, S.STA13),
    (S.STA2, E.EVT13): (A.AA_1, S.STA13),
    # Not in Table 9-10 (the local user has had no indication yet), but a shell that
    # shuts down aborts every connection: close the transport, as AA-2 does.
    (S.STA2, E.EVT15): (A.AA_2, S.STA1),
    (S.STA2, E.EVT16): (A.AA_2, S.STA1),
    (S.STA2, E.EVT17): (A.AA_5, S.STA1),
    (S.STA2, E.EVT18): (A.AA_2, S.STA1),
    (S.STA2, E.EVT19): (A.AA_1, S.STA13),
    # Sta3: the local user decides on the request.
    (S.STA3, E.EVT3): (A.AA_8, S.STA13),
    (S.STA3, E.EVT4): (A.AA_8, S.STA13),
    (S.STA3, E.EVT6): (A.AA_8, S.STA13),
    (S.STA3, E.EVT7): (A.AE_7, S.STA6),
    (S.STA3, E.EVT8): (A.AE_8, S.STA13),
    (S.STA3, E.EVT10): (A.AA_8, S.STA13),
    (S.STA3, E.EVT12): (A.AA_8, S.STA13),
    (S.STA3, E.EVT13): (A.AA_8, S.STA13),
    (S.STA3, E.EVT15): (A.AA_1, S.STA13),
    (S.STA3, E.EVT16): (A.AA_3, S.STA1),
    (S.STA3, E.EVT17): (A.AA_4, S.STA1),
    (S.STA3, E.EVT19): (A.AA_8, S.STA13),
    # Sta6: data transfer.
    (S.STA6, E.EVT3): (A.AA_8, S.STA13),
    (S.STA6, E.EVT4): (A.AA_8, S.STA13),
    (S.STA6, E.EVT6): (A.AA_8, S.STA13),
    (S.STA6, E.EVT9): (A.DT_1, S.STA6),
    (S.STA6, E.EVT10): (A.DT_2, S.STA6),
    (S.STA6, E.EVT12): (A.AR_2, S.STA8),
    (S.STA6, E.EVT13): (A.AA_8, S.STA13),
    (S.STA6, E.EVT15): (A.AA_1, S.STA13),
    (S.STA6, E.EVT16): (A.AA_3, S.STA1),
    (S.STA6, E.EVT17): (A.AA_4, S.STA1),
    (S.STA6, E.EVT19): (A.AA_8, S.STA13),
    # Sta8: the peer asked to release; the local user may still send P-DATA.
    (S.STA8, E.EVT3): (A.AA_8, S.STA13),
    (S.STA8, E.EVT4): (A.AA_8, S.STA13),
    (S.STA8, E.EVT6): (A.AA_8, S.STA13),
    (S.STA8, E.EVT9): (A.AR_7, S.STA8),
    (S.STA8, E.EVT10): (A.AA_8, S.STA13),
    (S.STA8, E.EVT12): (A.AA_8, S.STA13),
    (S.STA8, E.EVT13): (A.AA_8, S.STA13),
    (S.STA8, E.EVT14): (A.AR_4, S.STA13),
    (S.STA8, E.EVT15): (A.AA_1, S.STA13),
    (S.STA8, E.EVT16): (A.AA_3, S.STA1),
    (S.STA8, E.EVT17): (A.AA_4, S.STA1),
    (S.STA8, E.EVT19): (A.AA_8, S.STA13),
    # Sta13: waiting for the peer to close after our RJ, RP or A-ABORT.
    (S.STA13, E.EVT3): (A.AA_6, S.STA13),
    (S.STA13, E.EVT4): (A.AA_6, S.STA13),
    (S.STA13, E.EVT6): (A.AA_7, S.STA13),
    (S.STA13, E.EVT10): (A.AA_6, S.STA13),
    (S.STA13, E.EVT12): (A.AA_6, S.STA13),
    (S.STA13, E.EVT13): (A.AA_6, S.STA13),
    (S.STA13, E.EVT15): (A.AA_2, S.STA1),
    (S.STA13, E.EVT16): (A.AA_2, S.STA1),
    (S.STA13, E.EVT17): (A.AR_5, S.STA1),
    (S.STA13, E.EVT18): (A.AA_2, S.STA1),
    (S.STA13, E.EVT19): (A.AA_7, S.STA13),
}


def transition(state: State, event: Evt) -> tuple[Action, State]:
    """Look up Table 9-10; an absent cell means the local user called out of turn."""
    try:
        return TRANSITIONS[state, event]
    except KeyError:
        raise InvalidLocalPrimitive(state, event) from None


class InvalidLocalPrimitive(RuntimeError):
    """The local user issued a primitive the current state does not allow (a bug)."""

    def __init__(self, state: State, event: Evt) -> None:
        super().__init__(f"{event.name} is not valid in {state.name}")
        self.state = state
        self.event = event
