"""The compiled layout (``oxidicom/storage/_layout_c.pyx``) answers as the reference:
the same folder, file name, warnings, or the same error, for any head."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oxidicom.dicom.errors import DatasetError
from oxidicom.dicom.head import HeadFields
from oxidicom.storage import layout
from tests.implementations import compiled_module
from tests.storage.test_layout import fields

digits = st.text("0123456789", max_size=8)
uid = st.one_of(st.text("0123456789.", max_size=70), st.text(max_size=70))
optional = st.one_of(st.none(), st.text(max_size=40))
date = st.one_of(st.sampled_from(["20130308", "20130230", "2013-03-08", "", "19991231"]), optional)
cut = st.one_of(
    st.just(()),
    st.sampled_from([(("study_description", "0badcafe"),), (("sop_instance_uid", "0badcafe"),)]),
)


def _compiled() -> ModuleType:
    module = compiled_module("oxidicom.storage._layout_c")
    assert layout.series_dir is module.series_dir, "built, but not selected"
    return module


def _answer(call: Callable[[], object]) -> tuple[str, object]:
    try:
        return "ok", call()
    except DatasetError as error:
        return type(error).__name__, (error.status, error.comment)


def _same(compiled: ModuleType, pacs: str, head: HeadFields) -> None:
    reference = (
        _answer(lambda: layout.check_required_py(head)),
        _answer(lambda: layout.series_dir_py(pacs, head)),
        _answer(lambda: layout.instance_file_name_py(head)),
    )
    twin = (
        _answer(lambda: compiled.check_required(head)),
        _answer(lambda: compiled.series_dir(pacs, head)),
        _answer(lambda: compiled.instance_file_name(head)),
    )
    assert twin == reference


@settings(max_examples=600, deadline=None)
@given(
    pacs=st.sampled_from(["PACS", "OTHER", ""]),
    number=st.one_of(st.none(), digits, st.text(max_size=8)),
    sop=uid,
    series=st.one_of(st.sampled_from(["1.2.3.4", "1.2.3.5", ""]), uid),
    study=st.sampled_from(["1.2.3", "", None]),
    patient_id=st.one_of(st.just("PID"), optional),
    study_date=date,
    description=optional,
    cut_values=cut,
)
def test_the_compiled_layout_answers_as_the_reference(
    pacs: str,
    number: str | None,
    sop: str,
    series: str,
    study: str | None,
    patient_id: str | None,
    study_date: str | None,
    description: str | None,
    cut_values: tuple[tuple[str, str], ...],
) -> None:
    compiled = _compiled()
    head = fields(
        instance_number=number,
        sop_instance_uid=sop,
        series_instance_uid=series,
        study_instance_uid=study,
        patient_id=patient_id,
        study_date=study_date,
        series_description=description,
        cut_values=cut_values,
    )
    _same(compiled, pacs, head)
    _same(compiled, pacs, head)  # again: the memories answer now


@pytest.mark.parametrize(
    "number, name",
    [
        ("7", "0007-1.2.3.4.5.dcm"),
        ("0", "0000-1.2.3.4.5.dcm"),
        ("000", "0000-1.2.3.4.5.dcm"),
        ("00012", "0012-1.2.3.4.5.dcm"),
        ("123456", "123456-1.2.3.4.5.dcm"),
        ("0123456", "123456-1.2.3.4.5.dcm"),
    ],
)
def test_the_compiled_file_name_of_digits(number: str, name: str) -> None:
    compiled = _compiled()
    head = fields(instance_number=number)
    assert compiled.instance_file_name(head) == name == layout.instance_file_name_py(head)


def test_a_file_name_over_255_bytes_is_the_references() -> None:
    compiled = _compiled()
    head = fields(instance_number="1" * 200, sop_instance_uid="1." * 40)
    assert len(compiled.instance_file_name(head).encode()) <= 255
    assert compiled.instance_file_name(head) == layout.instance_file_name_py(head)


class _HeadFieldsAsWell(HeadFields, frozen=True, gc=False):
    """Not exactly a HeadFields: the compiled layout reads its fields by name."""


def test_fields_of_another_class_are_read_by_name() -> None:
    compiled = _compiled()
    head = fields(study_date="20130308")
    other = _HeadFieldsAsWell(**{name: getattr(head, name) for name in head.__struct_fields__})
    for pacs in ("PACS", "PACS", "OTHER"):
        _same(compiled, pacs, other)
        _same(compiled, pacs, head)
        assert compiled.series_dir(pacs, other) == compiled.series_dir(pacs, head)
