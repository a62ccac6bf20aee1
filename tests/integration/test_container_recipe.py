"""The container image's recipe, proven without a container engine.

The Dockerfile is read instruction by instruction: the build stage's COPY lines copy
the same sources, its RUN steps run the same scripts (``docker/build-wheels.sh``,
``docker/install.sh``) with the image's absolute paths mapped under a temporary root,
and any other RUN step must be one of the few known system steps (so an install step
added to the Dockerfile cannot be skipped here unnoticed). The installed entry point
then serves as the receiver, and the image's HEALTHCHECK command, run as written,
must pass against it and fail cleanly once it is gone. docker-compose.yml is checked
against the same Dockerfile and the settings.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from oxidicom.app.settings import SETTINGS, load_settings
from tests.integration.receiver import start_receiver

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
#: RUN steps that change the system, not the installed program; skipped outside a container.
SYSTEM_STEPS = {"rm", "groupadd", "useradd", "mkdir", "chown", "chmod"}


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def one(self, keyword: str) -> str:
        (args,) = self.all(keyword)
        return args


def parse_dockerfile(path: Path) -> list[Stage]:
    text = re.sub(r"\\\n", " ", path.read_text())
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            image, *alias = rest.split()
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
            stages.append(Stage(image, alias[1] if alias else None))
        else:
            stages[-1].instructions.append((keyword, rest))
    return stages


def _env_of(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for args in stage.all("ENV"):
        for item in shlex.split(args):
            name, _, value = item.partition("=")
            env[name] = value
    return env


class Replay:
    """Runs a stage's COPY and RUN steps with container paths mapped under ``root``."""

    def __init__(self, root: Path, python_dir: Path) -> None:
        self.root = root
        self.path = f"{python_dir}:{os.environ['PATH']}"

    def host(self, path: str, workdir: str = "/") -> Path:
        return self.root / os.path.join(workdir, path).lstrip("/")

    def stage(self, stage: Stage) -> None:
        workdir = "/"
        for keyword, args in stage.instructions:
            if keyword == "WORKDIR":
                workdir = args
                self.host(workdir).mkdir(parents=True, exist_ok=True)
            elif keyword == "COPY" and not args.startswith("--from="):
                *sources, target = args.split()
                for source in sources:
                    self._copy(ROOT / source, self.host(target, workdir), target.endswith("/"))
            elif keyword == "RUN":
                self._run(args, workdir)

    def _copy(self, source: Path, target: Path, into: bool) -> None:
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
            return
        if into or target.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            target = target / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)

    def _run(self, command: str, workdir: str) -> None:
        for step in command.split("&&"):
            words = shlex.split(step)
            if words[0] in SYSTEM_STEPS:
                continue
            assert words[0] == "sh", f"RUN step {step!r} is not replayed here: add it to the test"
            script, *arguments = words[1:]
            mapped = [str(self.host(a)) if a.startswith("/") else a for a in arguments]
            subprocess.run(
                ["sh", str(self.host(script, workdir)), *mapped],
                cwd=self.host(workdir),
                env={**os.environ, "PATH": self.path},
                check=True,
                timeout=600,
                capture_output=True,
            )


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(ROOT / "Dockerfile")


def test_dockerfile_shape(stages: list[Stage]) -> None:
    build, final = stages
    assert build.name == "build" and final.name is None
    for stage in stages:
        match = re.fullmatch(r"python:3\.(\d+)-slim(-\w+)?", stage.image)
        assert match and int(match.group(1)) >= 11, stage.image
    assert final.one("USER").split(":")[0] not in ("0", "root")
    assert final.one("EXPOSE") == "11111"
    assert json.loads(final.one("ENTRYPOINT")) == ["oxidicom"]
    healthcheck = final.one("HEALTHCHECK")
    assert json.loads(healthcheck.split("CMD", 1)[1])[:2] == ["oxidicom", "echo"]
    env = _env_of(final)
    assert env["OXIDICOM_LISTENER_PORT"] == "11111"
    load_settings({k: v for k, v in env.items() if k.startswith("OXIDICOM_")})  # all valid


def test_installed_recipe_answers_a_c_echo(stages: list[Stage], tmp_path: Path) -> None:
    root = tmp_path / "image"
    python_dir = tmp_path / "python"
    python_dir.mkdir()
    (python_dir / "python").symlink_to(sys.executable)
    replay = Replay(root, python_dir)
    build, final = stages
    replay.stage(build)
    replay.stage(final)
    venv_bin = root / "opt" / "oxidicom" / "bin"
    # A clean environment: our program and uvloop, not the test extras.
    check = subprocess.run(
        [str(venv_bin / "python"), "-c", "import uvloop, oxidicom; import pytest"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "No module named 'pytest'" in check.stderr

    env = _env_of(final)
    data = root / "data"
    receiver = start_receiver(
        data,
        {
            **{k: v for k, v in env.items() if k.startswith("OXIDICOM_")},
            "OXIDICOM_FILES_ROOT": str(data / "files"),
            "OXIDICOM_OUTBOX_DIR": str(data / "outbox"),
            "OXIDICOM_LISTENER_PORT": "0",
        },
        command=[str(venv_bin / "oxidicom")],
    )
    healthcheck = json.loads(final.one("HEALTHCHECK").split("CMD", 1)[1])
    as_in_the_image = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OXIDICOM_")},
        "PATH": f"{venv_bin}:/usr/bin:/bin",
        "OXIDICOM_LISTENER_PORT": str(receiver.port),  # 11111 in the image
    }
    try:
        healthy = subprocess.run(
            healthcheck, capture_output=True, text=True, timeout=60, env=as_in_the_image
        )
        receiver.wait_for_log(r"association from OXIDICOM-ECHO@.* accepted")
    finally:
        assert receiver.stop() == 0
    assert healthy.returncode == 0, healthy.stderr
    assert healthy.stdout.startswith(f"C-ECHO ChRIS@127.0.0.1:{receiver.port}: success")
    unhealthy = subprocess.run(
        healthcheck, capture_output=True, text=True, timeout=60, env=as_in_the_image
    )
    assert unhealthy.returncode == 1
    assert unhealthy.stderr == (
        f"oxidicom echo: cannot connect to 127.0.0.1:{receiver.port}: Connection refused\n"
    )


def test_compose_wires_brokers_storage_and_port(stages: list[Stage]) -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"dragonflydb", "nats", "oxidicom"} <= set(services)
    oxidicom = services["oxidicom"]
    assert oxidicom["build"] == "."
    env = {k: str(v) for k, v in oxidicom["environment"].items()}
    known = {s.env for s in SETTINGS} | {a for s in SETTINGS for a in s.aliases}
    assert set(env) <= known
    image_env = _env_of(stages[-1])
    settings = load_settings(
        {k: v for k, v in {**image_env, **env}.items() if k.startswith("OXIDICOM_")}
    )
    # Today's CUBE: a Redis-protocol Celery broker (DragonflyDB), as in its compose file.
    assert settings.celery_broker == "redis://dragonflydb:6379/0"
    assert services["dragonflydb"]["image"].startswith("ghcr.io/dragonflydb/dragonfly:")
    assert settings.nats_address == "nats://nats:4222"
    assert set(oxidicom["depends_on"]) == {"dragonflydb", "nats"}
    assert oxidicom["depends_on"]["dragonflydb"]["condition"] == "service_started"
    assert oxidicom["depends_on"]["nats"]["condition"] == "service_healthy"
    assert "healthcheck" in services["nats"]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in oxidicom["volumes"]}
    (outbox_mount,) = (m for m in mounts if Path(m) in Path(settings.outbox_dir).parents)
    assert mounts[settings.files_root] != mounts[outbox_mount]
    assert set(mounts[settings.files_root]) and set(compose["volumes"]) == {
        *mounts.values(),
        *(m.split(":")[0] for m in services["dragonflydb"]["volumes"]),
    }
    assert "--jetstream" in services["nats"]["command"]
    assert oxidicom["ports"] == [f"11111:{stages[-1].one('EXPOSE')}"]


#: The ``oxidicom`` service of CUBE's own docker-compose.yml (FNNDSC/ChRIS_ultron_backEnd,
#: 2026), verbatim: what our image must take unchanged.
CUBE_COMPOSE_OXIDICOM = """
environment:
  OXIDICOM_FILES_ROOT: /data
  OXIDICOM_CELERY_BROKER: redis://dragonflydb:6379/0
  OXIDICOM_NATS_ADDRESS: nats:4222
  OXIDICOM_SCP_AET: ChRIS
  OXIDICOM_SCP_PROMISCUOUS: "true"
  OXIDICOM_LISTENER_THREADS: 32
  OXIDICOM_LISTENER_PORT: 11111
  RUST_LOG: oxidicom=info
  OXIDICOM_PROGRESS_INTERVAL: 100ms
  OXIDICOM_DEV_SLEEP: 150ms
volumes:
  - chris_files:/data:rw
user: ${UID}:${GID}
"""


def test_cubes_compose_block_runs_our_image_unchanged(stages: list[Stage]) -> None:
    """CUBE mounts its storage on /data and sets the files root there: the image's outbox
    must lie outside it (else the receiver refuses to start), in a folder any uid may
    write (CUBE runs the container as its own ${UID}), on a volume of its own."""
    service = yaml.safe_load(CUBE_COMPOSE_OXIDICOM)
    final = stages[-1]
    image_env = _env_of(final)
    env = {**image_env, **{k: str(v) for k, v in service["environment"].items()}}
    settings = load_settings({k: v for k, v in env.items() if k.startswith("OXIDICOM_")})
    assert settings.files_root == "/data"
    assert settings.celery_broker == "redis://dragonflydb:6379/0"
    assert settings.max_associations == 32 and settings.scp_promiscuous
    outbox = Path(settings.outbox_dir)
    assert Path("/data") not in outbox.parents
    volumes = json.loads(final.one("VOLUME"))
    assert any(Path(v) == outbox or Path(v) in outbox.parents for v in volumes)
    # Nothing of the image's is mounted inside CUBE's storage.
    assert not any(Path(v) == Path("/data") or Path("/data") in Path(v).parents for v in volumes)
    assert "chmod 1777 /var/lib/oxidicom" in " ".join(final.all("RUN"))
