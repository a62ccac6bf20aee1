"""Both InstanceWriter twins for the writer's tests: the pure-Python reference, then the
compiled one (:mod:`oxidicom.storage._writer_c`), each with its own ``Store.begin``, while
the fixture runs. Module-scoped and autouse in each writer test module::

    writer_twin = writer_twin_fixture()
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from oxidicom.storage import writer
from tests.implementations import IMPLEMENTATIONS, compiled_module

COMPILED_WRITER = "oxidicom.storage._writer_c"


def writer_twin_fixture() -> Callable[..., Any]:
    @pytest.fixture(scope="module", params=IMPLEMENTATIONS, autouse=True)
    def writer_twin(request: pytest.FixtureRequest) -> Iterator[type[writer.InstanceWriterPy]]:
        """The InstanceWriter class ``Store.begin`` builds in this module's tests."""
        if request.param == "python":
            cls, begin = writer.InstanceWriterPy, writer.begin_py
        else:
            module = compiled_module(COMPILED_WRITER)
            cls, begin = writer.InstanceWriter, writer.Store.begin
            assert issubclass(cls, module._WriterState), "built, but not selected"
            assert begin is module.begin, "built, but Store.begin is not the compiled one"
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(writer, "InstanceWriter", cls)
            patch.setattr(writer.Store, "begin", begin)
            yield cls

    return writer_twin
