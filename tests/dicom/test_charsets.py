"""Text decoding with SpecificCharacterSet: pydicom's text, in bounded time."""

import logging
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.charset import CODES_TO_ENCODINGS, decode_bytes
from pydicom.valuerep import PersonName

from oxidicom.dicom.charsets import decode_text, python_encodings

PN = frozenset({0x5E, 0x3D})
TEXT = frozenset({0x09, 0x0A, 0x0C, 0x0D})
TERMS = [
    (),
    ("ISO_IR 100",),
    ("ISO_IR 192",),
    ("GB18030",),
    ("GBK",),
    ("ISO_IR 13",),
    ("", "ISO 2022 IR 87"),
    ("ISO 2022 IR 6", "ISO 2022 IR 87", "ISO 2022 IR 159"),
    ("ISO 2022 IR 13", "ISO 2022 IR 87"),
    ("", "ISO 2022 IR 149"),
    ("", "ISO 2022 IR 58"),
    ("ISO 2022 IR 100", "ISO 2022 IR 126"),
]


def pydicom_text(raw: bytes, encodings: tuple[str, ...], delimiters: frozenset[int]) -> str:
    """What the head parser gave before: pydicom's decode_bytes and the same fallbacks."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("pydicom").disabled = True
        try:
            return decode_bytes(raw, list(encodings), set(delimiters))
        except Exception:
            try:
                return raw.decode(encodings[0], errors="replace")
            except Exception:
                return raw.decode("latin-1")
        finally:
            logging.getLogger("pydicom").disabled = False


PIECES = st.one_of(
    st.sampled_from(sorted(CODES_TO_ENCODINGS)),  # every escape sequence pydicom knows
    st.sampled_from([b"\x1b", b"\x1b(Z", b"\x1b$", b"\x1b$(Q", b"^", b"=", b"\r", b"\\"]),
    st.binary(min_size=1, max_size=6),
    st.sampled_from([b"\x30\x21", b"\xb0\xa1", b"\xe5\xb1\xb1", b"\x81\x30\x81\x30", b"\xe9"]),
)


@settings(max_examples=1500, deadline=None)
@given(
    terms=st.sampled_from(TERMS),
    pn=st.booleans(),
    raw=st.lists(PIECES, max_size=12).map(b"".join),
)
def test_same_text_as_pydicom(terms: tuple[str, ...], pn: bool, raw: bytes) -> None:
    encodings = python_encodings(terms)
    delimiters = PN if pn else TEXT
    assert decode_text(raw, encodings, delimiters) == pydicom_text(raw, encodings, delimiters)


@pytest.mark.parametrize("terms", [("ISO_IR 999",), ("ISO 2022 IR 87", "utf_32"), ("NOPE",)])
def test_odd_charsets_as_pydicom(terms: tuple[str, ...]) -> None:
    encodings = python_encodings(terms)
    for raw in [b"\x1b$B\xff\x00=\x1b(B", b"\xff\xfe=\x1b$)C\xe4^a", b"\x80\x81\x82\xc3", b"ab"]:
        assert decode_text(raw, encodings, PN) == pydicom_text(raw, encodings, PN)


VALUES = [
    (("",), "Doe^John"),
    (("ISO_IR 192",), "Wang^XiaoDong=王^小東=王^小东"),
    (("GB18030",), "Wang^XiaoDong=王^小东"),
    (("", "ISO 2022 IR 87"), "Yamada^Tarou=山田^太郎=やまだ^たろう"),
    (("", "ISO 2022 IR 149"), "Hong^Gildong=洪^吉洞=홍^길동"),
    (("ISO_IR 100",), "Müller^Jürgen"),
]


@pytest.mark.parametrize(("terms", "name"), VALUES)
def test_the_beginning_of_a_value_gives_the_beginning_of_its_text(
    terms: tuple[str, ...], name: str
) -> None:
    """final=False: a cut value gives a prefix of the text, never mojibake at the cut."""
    encodings = python_encodings(terms)
    raw = PersonName(name, list(encodings)).encode(list(encodings))
    whole = decode_text(raw, encodings, PN)
    assert whole == name
    for cut in range(len(raw)):
        text = decode_text(raw[:cut], encodings, PN, final=False)
        assert whole.startswith(text), (cut, text)
        assert len(text) >= len(decode_text(raw[: max(0, cut - 8)], encodings, PN, final=False))


def test_nothing_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """pydicom logs a warning for each part it cannot decode: 341 lines for 1 KiB."""
    raw = b"\x1b(Z" * 341
    with caplog.at_level(logging.DEBUG):
        text = decode_text(raw, python_encodings(("", "ISO 2022 IR 87")), PN)
    assert text == "\x1b(Z" * 341  # pydicom's text: the first encoding, replacement chars
    assert caplog.records == []
