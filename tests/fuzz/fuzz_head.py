"""Coverage-guided fuzzing of the data set head parser: ``python -m tests.fuzz.fuzz_head CORPUS``.

See ``tests/fuzz/README.md``.
"""

from tests.fuzz._runner import head

if __name__ == "__main__":
    head()
