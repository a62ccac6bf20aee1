"""The two head parsers side by side (issue 21): the pure-Python reference and the one
whose state, per-instance path, walk and common decoding are compiled
(``oxidicom/dicom/_head_c.pyx``).

``oxidicom.dicom.head`` keeps the reference as ``HeadParserPy``/``parse_head_py`` and
selects ``HeadParser``/``parse_head`` at import. Tests take both through the ``twin``
fixture (:func:`head_twin`); the fuzz targets through :data:`PYTHON` and
:func:`compiled_twin`, which need no pytest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from oxidicom.dicom import head
from oxidicom.dicom.head import HeadFields, HeadParserPy

COMPILED_MODULE = "oxidicom.dicom._head_c"


@dataclass(frozen=True)
class HeadTwin:
    """One implementation: its parser class and its one-piece parse."""

    name: str
    HeadParser: type[HeadParserPy]
    parse_head: Callable[[str, bytes | bytearray | memoryview], HeadFields]


PYTHON = HeadTwin("python", head.HeadParserPy, head.parse_head_py)


def compiled_twin() -> HeadTwin | None:
    """The compiled parser where ``oxidicom.dicom.head`` selected it, else None."""
    if head.HeadParser is head.HeadParserPy:
        return None
    return HeadTwin("compiled", head.HeadParser, head.parse_head)


def head_twin(kind: str) -> HeadTwin:
    """``kind`` "python" or "compiled"; the compiled one skips where it is not built or
    OXIDICOM_NO_EXTENSIONS is set, and fails under CI where it should have been."""
    if kind == "python":
        return PYTHON
    from tests.implementations import compiled_module

    module = compiled_module(COMPILED_MODULE)
    twin = compiled_twin()
    assert twin is not None, "built, but oxidicom.dicom.head did not select it"
    assert issubclass(twin.HeadParser, module._HeadState)
    assert twin.HeadParser.feed is module._HeadState.feed
    assert twin.HeadParser._feed_plain is module.feed_plain
    assert twin.HeadParser._decode is module.decode_values
    return twin
