"""Coverage-guided fuzzing of the PDU reader: ``python -m tests.fuzz.fuzz_pdu CORPUS [flags]``.

See ``tests/fuzz/README.md``.
"""

from tests.fuzz._runner import pdu

if __name__ == "__main__":
    pdu()
