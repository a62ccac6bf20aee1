"""A pynetdicom storage SCP in its fastest configuration, for the flood bench.

    python benches/pynetdicom_scp.py --port 11112 --out DIR [--aet PYNETDICOM] [--mode chunked]

Every standard storage SOP class with every transfer syntax, and Verification.
``--mode chunked`` (the default) sets ``_config.STORE_RECV_CHUNKED_DATASET``: pynetdicom
writes each data set to a temporary Part-10 file as it arrives (in ``DIR/.tmp``, on the
same filesystem) and the handler renames it to ``DIR/{SOPInstanceUID}.dcm``; nothing is
decoded. ``--mode memory`` keeps the data set in memory and the handler writes
``event.encoded_dataset()`` to a temporary file then renames it. Neither fsyncs (nor does
storescp). SIGTERM or SIGINT stop the server.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
from pathlib import Path

from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, _config, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700


def make_handler(out: Path, chunked: bool):
    tmp = out / ".tmp"

    def handle_store(event: evt.Event) -> int:
        uid = str(event.request.AffectedSOPInstanceUID)
        final = out / f"{uid}.dcm"
        try:
            if chunked:
                os.replace(event.dataset_path, final)
            else:
                fd, name = tempfile.mkstemp(dir=tmp, suffix=".dcm")
                with os.fdopen(fd, "wb") as f:
                    f.write(event.encoded_dataset())
                os.replace(name, final)
        except OSError:
            return OUT_OF_RESOURCES
        return SUCCESS

    return handle_store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--aet", default="PYNETDICOM")
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--mode", choices=("chunked", "memory"), default="chunked")
    parser.add_argument("--max-pdu", type=int, default=0, help="0: unlimited")
    parser.add_argument("--max-associations", type=int, default=64)
    args = parser.parse_args(argv)

    logging.getLogger("pynetdicom").setLevel(logging.ERROR)
    tmp = args.out / ".tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    chunked = args.mode == "chunked"
    _config.STORE_RECV_CHUNKED_DATASET = chunked
    tempfile.tempdir = str(tmp)  # pynetdicom's NamedTemporaryFile lands here

    ae = AE(ae_title=args.aet)
    ae.maximum_associations = args.max_associations
    ae.maximum_pdu_size = args.max_pdu
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
    ae.add_supported_context(Verification)
    server = ae.start_server(
        (args.address, args.port),
        block=False,
        evt_handlers=[(evt.EVT_C_STORE, make_handler(args.out, chunked))],
    )
    print(f"pynetdicom listening on {args.address}:{args.port}", file=sys.stderr, flush=True)
    stop = False

    def on_signal(_signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stop:
        signal.pause()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
