"""Differential fuzzing of the compiled twins: ``python -m tests.fuzz.fuzz_twins CORPUS [flags]``.

The pure-Python and compiled command codec and Upper Layer reader get the same bytes;
any difference is a crash. See ``tests/fuzz/README.md``.
"""

from tests.fuzz._runner import twins

if __name__ == "__main__":
    twins()
