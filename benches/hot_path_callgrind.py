"""Instructions per small instance of ``benches/hot_path.py``, its loop only, under callgrind.

Run under valgrind, ``hot_path.py``'s totals are dominated by building its requests with
pydicom (about 5 M instructions per instance, against about 0.4 M for the receive path):
(total at N2 - total at N1) / (N2 - N1) then measures the data factory. This wrapper
collects only between the bench's two ``time.process_time()`` calls (a callgrind client
request, from a 2-line C helper built with ``cc`` on first use), and can take the requests
from a pickle, so that two checkouts are fed the same bytes::

    python benches/hot_path_callgrind.py --save-requests /tmp/reads.pkl --instances 600
    for n in 100 600; do
      OPENBLAS_NUM_THREADS=1 valgrind --tool=callgrind --collect-atstart=no \\
        --callgrind-out-file=/tmp/cg.$n python benches/hot_path_callgrind.py \\
        --requests /tmp/reads.pkl --instances $n
    done   # per instance: (summary at 600 - summary at 100) / 500

``--src DIR`` imports ``oxidicom`` and the bench from another checkout (an editable
install's import hook is removed first), for a before/after on one machine.
Outside valgrind the client request does nothing.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

_HELPER_C = "#include <valgrind/callgrind.h>\nvoid toggle(void) { CALLGRIND_TOGGLE_COLLECT; }\n"


def _toggle() -> ctypes._CFuncPtr:  # type: ignore[name-defined]
    """``CALLGRIND_TOGGLE_COLLECT`` as a C function (needs cc and valgrind's headers)."""
    folder = Path(tempfile.gettempdir()) / f"oxidicom-callgrind-{os.getuid()}"
    library = folder / "toggle.so"
    if not library.exists():
        folder.mkdir(exist_ok=True)
        source = folder / "toggle.c"
        source.write_text(_HELPER_C)
        building = folder / f"toggle.{os.getpid()}.so"
        subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", building, source], check=True)
        building.replace(library)
    return ctypes.CDLL(str(library)).toggle


def main() -> None:
    args = sys.argv[1:]
    src = requests = save = None
    for option in ("--src", "--requests", "--save-requests"):
        if option in args:
            at = args.index(option)
            value = args[at + 1]
            del args[at : at + 2]
            if option == "--src":
                src = value
            elif option == "--requests":
                requests = value
            else:
                save = value
    root = Path(src).resolve() if src else Path(__file__).resolve().parents[1]
    if src:
        sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f)]
    sys.path.insert(0, str(root))
    import benches.hot_path as hot_path

    if save:
        count, rows, max_pdu = (
            int(args[args.index(name) + 1]) if name in args else default
            for name, default in (("--instances", 5000), ("--rows", 64), ("--pdu", 131072))
        )
        with open(save, "wb") as out:
            pickle.dump(hot_path._requests(count, rows, max_pdu), out)
        return
    if requests:
        with open(requests, "rb") as source:
            reads = pickle.load(source)

        def saved(count: int, rows: int, max_pdu: int) -> list[bytes]:
            return reads[:count]  # made with the --rows and --pdu of --save-requests

        hot_path._requests = saved  # type: ignore[assignment]
    toggle = _toggle()

    def process_time() -> float:
        toggle()  # the bench calls it twice: before its loop, and after
        return time.process_time()

    hot_path.time = types.SimpleNamespace(process_time=process_time)  # type: ignore[assignment]
    sys.argv = [str(root / "benches" / "hot_path.py"), *args]
    hot_path.main()


if __name__ == "__main__":
    main()
