"""The long chaos run of replicas on several hosts (the short one is in make test).

Three receiver processes as hosts in network namespaces, a private redis-server (AOF) and
nats-server, a seeded workload of rounds of series split over 16 concurrent associations,
random SIGKILL (and return), SIGSTOP, store restarts; then the checker over every outbox
and NATS subject (tests/integration/chaos.py). Needs root (namespaces), redis-server,
nats-server. Writes its report to stdout and, with --out, to a Markdown file.

    sudo .venv/bin/python -m benches.replicas_chaos --seed 22 --rounds 150 --series 20
    .venv/bin/python -m benches.replicas_chaos --max-pause 3   # pauses beyond the settle
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from pathlib import Path

from tests.integration.chaos import Chaos, ChaosConfig, chaos_cluster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=22)
    parser.add_argument("--rounds", type=int, default=150)
    parser.add_argument("--series", type=int, default=20, help="series per round")
    parser.add_argument("--max-instances", type=int, default=30)
    parser.add_argument("--lease", type=float, default=4.0)
    parser.add_argument("--settle", type=float, default=1.0)
    parser.add_argument("--kill", type=float, default=0.4, help="chance per round")
    parser.add_argument("--pause", type=float, default=0.4, help="chance per round")
    parser.add_argument("--store-restart", type=float, default=0.2, help="chance per round")
    parser.add_argument("--max-pause", type=float, default=0.8, help="longest SIGSTOP (s)")
    parser.add_argument("--out", type=Path, help="write the report here (Markdown)")
    parser.add_argument(
        "--keep", type=Path, help="run in this folder and keep it (outboxes, files, logs)"
    )
    args = parser.parse_args()
    config = ChaosConfig(
        seed=args.seed,
        rounds=args.rounds,
        series_per_round=args.series,
        max_instances=args.max_instances,
        lease=args.lease,
        settle=args.settle,
        kill=args.kill,
        pause=args.pause,
        store_restart=args.store_restart,
        max_pause=args.max_pause,
    )
    with contextlib.ExitStack() as stack:
        if args.keep is not None:
            args.keep.mkdir(parents=True)
            tmp = args.keep
        else:
            folder = tempfile.TemporaryDirectory(prefix="oxidicom-chaos-", dir="/dev/shm")
            tmp = Path(stack.enter_context(folder))
        with chaos_cluster(tmp) as (net, store):
            report = asyncio.run(Chaos(config, tmp, net, store).run())
    lines = [
        f"seed {config.seed}, {config.rounds} rounds x {config.series_per_round} series of"
        f" 1-{config.max_instances} instances over {config.associations} associations,"
        f" {config.replicas} replicas, lease {config.lease:g} s, settle {config.settle:g} s,"
        f" SIGSTOP up to {config.max_pause:g} s",
        *report.lines(),
    ]
    print("\n".join(lines))
    if args.out is not None:
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        args.out.write_text(
            f"# Replicas chaos run ({stamp})\n\n```\n" + "\n".join(lines) + "\n```\n"
        )


if __name__ == "__main__":
    main()
