"""The Connection twins themselves: each test here runs on both (``conftest.py``)."""

from __future__ import annotations

from oxidicom.ul import connection
from tests.implementations import compiled_module
from tests.ul._helpers import new_sta6, pdata


def test_the_helpers_build_the_twin_under_test(connection_twin: type) -> None:
    conn = new_sta6()
    assert type(conn) is connection_twin
    compiled = connection_twin is not connection.ConnectionPy
    # The compiled twin replaces the reader only: the state machine is the reference's.
    assert (type(conn)._read is connection.ConnectionPy._read) is not compiled
    assert type(conn)._apply is connection.ConnectionPy._apply


def test_one_pdv_fast_path_hands_on_a_view_of_the_input() -> None:
    conn = new_sta6()
    data = pdata((1, True, True, b"\x00" * 10))
    conn.receive_data(data, 1.0)
    fragment = conn.next_event()
    assert bytes(fragment.data) == b"\x00" * 10  # type: ignore[union-attr]
    assert fragment.data.obj is data  # type: ignore[union-attr]
    assert conn.buffered == 0


def test_the_receiver_uses_the_compiled_reader_where_built() -> None:
    module = compiled_module("oxidicom.ul._connection_c")  # skips where not built / wanted
    assert connection.Connection is module.Connection
    assert issubclass(module.Connection, connection.ConnectionPy)
