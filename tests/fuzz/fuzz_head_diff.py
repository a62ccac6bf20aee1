"""Differential fuzzing of the compiled head walk against its pure-Python reference:
``python -m tests.fuzz.fuzz_head_diff CORPUS``.

See ``tests/fuzz/README.md``; without the compiled module built, there is nothing to compare.
"""

from tests.fuzz._runner import head_diff

if __name__ == "__main__":
    head_diff()
