"""The supervisor of several workers stays light: it starts its workers sooner, and holds
less memory, when it does not import the receive path (pydicom, numpy, brokers' clients)."""

from __future__ import annotations

import json
import subprocess
import sys

#: What the supervisor runs before it starts its workers (oxidicom/app/cli.py's main).
SUPERVISOR_PATH = """
import json, sys
from oxidicom.app import cli
from oxidicom.app.settings import load_settings
from oxidicom import telemetry
from oxidicom.app.worker_count import worker_count
from oxidicom.aio.tls import server_tls_context
from oxidicom.app.workers import supervise
settings = load_settings({})
telemetry.environment_problem()
worker_count(settings)
server_tls_context(settings)
print(json.dumps(sorted(sys.modules)))
"""

HEAVY = ("pydicom", "numpy", "aio_pika", "nats", "redis", "aiofiles", "uvloop")


def test_the_supervisor_imports_no_receive_path() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SUPERVISOR_PATH], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    modules = json.loads(result.stdout)
    tops = {name.split(".")[0] for name in modules}
    assert not tops & set(HEAVY), sorted(tops & set(HEAVY))
    assert "oxidicom.dicom.head" not in modules and "oxidicom.scp.services" not in modules
