"""The worker image built from the Dockerfile and run as real containers against real Redis servers.

No Docker engine runs on these machines; Debian's podman runs OCI containers without a daemon.
What the machine imposes, and so what every podman call here carries:

- `--runtime runc`: podman's default runtime (crun) refuses the machine's hybrid cgroups;
- `--ulimit` no higher than the machine's own limits: a container may not raise them;
- `--network host`: the containers reach the suite's redis-servers on 127.0.0.1;
- no registry is reachable, so the base is Debian bookworm made by debootstrap, imported once and
  kept between runs (its tag hashes the debootstrap recipe); the build mounts the machine's CA
  directory read-only so that pip inside it trusts what the machine trusts.

The image is built once per session; podman's layer cache makes an unchanged rebuild cheap.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import secrets
import shutil
import subprocess
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import pytest

from tests.conftest import REPO_ROOT, run_cointoss
from tests.supervise_support import wait_until
from worker_app import keys
from worker_app.client import Client

if TYPE_CHECKING:
    from supervisor.demo.embedded_redis import RedisServer

# Building the base (about a minute) and the image fall to the first test of the session.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

PODMAN = ["podman", "--runtime", "runc"]
# command -> the Debian package that brings it (.ci/run installs them)
NEEDED = {"podman": "podman", "runc": "runc", "debootstrap": "debootstrap", "tini-static": "tini"}
DEBOOTSTRAP = ("--variant=minbase", "--include=python3,python3-venv,ca-certificates")
SUITE, MIRROR = "bookworm", "http://deb.debian.org/debian"
# apt's downloads and package lists are no use in an image
BASE_EXCLUDES = ("--exclude=./var/cache/apt/archives/*.deb", "--exclude=./var/lib/apt/lists/*")
# podman's default limits exceed this machine's; these caps are plenty for a worker
LIMITS = {"nofile": (resource.RLIMIT_NOFILE, 1024), "nproc": (resource.RLIMIT_NPROC, 1000)}
STOP_S = 30  # podman stop -t: far above an idle worker's graceful stop
WORKER_UID = 10001
JOBS = 4
LIVENESS_S = 60.0  # a container start is a few processes on a shared 2-core machine
LOG_POLL_S = 0.25


def _ulimits() -> list[str]:
    """Each limit at most the machine's own soft limit: runc fails a container that raises one."""
    args = []
    for name, (limit, cap) in LIMITS.items():
        soft, _hard = resource.getrlimit(limit)
        value = cap if soft == resource.RLIM_INFINITY else min(cap, soft)
        args += ["--ulimit", f"{name}={value}:{value}"]
    return args


def _podman(
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    stdin: IO[bytes] | None = None,
    merged: bool = False,
) -> str:
    """Runs podman and returns its stdout (with `merged`, stderr too, interleaved as written);
    a failure fails the test with the tail of what podman said."""
    result = subprocess.run(
        [*PODMAN, *args],
        env=env,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merged else subprocess.PIPE,
        text=True,
        timeout=timeout,
        check=False,
    )
    said = (result.stderr or result.stdout).strip()
    assert result.returncode == 0, f"podman {args[0]}: {said[-2000:]}"
    return result.stdout


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def _require_tools() -> None:
    """Skips (fails under CI=true) with one line naming what the machine lacks."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    missing = [cmd for cmd in NEEDED if not shutil.which(cmd, path=search)]
    problems = []
    if missing:
        packages = " ".join(sorted({NEEDED[cmd] for cmd in missing}))
        problems.append(f"{', '.join(missing)} (apt-get install {packages})")
    if os.geteuid() != 0:
        problems.append("root (debootstrap and podman with runc)")
    if not problems:
        return
    message = f"container tests need {'; '.join(problems)}"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _base_image(workdir: Path) -> str:
    """Debian with python3 and venv, debootstrapped and imported unless an earlier run kept it."""
    tag = f"localhost/cointoss-test-base:{SUITE}-{_digest(*DEBOOTSTRAP, SUITE, MIRROR, *BASE_EXCLUDES)}"
    if subprocess.run([*PODMAN, "image", "exists", tag], check=False).returncode == 0:
        return tag
    root = workdir / "root"
    made = subprocess.run(
        ["debootstrap", *DEBOOTSTRAP, SUITE, str(root), MIRROR],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert made.returncode == 0, f"debootstrap: {made.stdout.strip()[-2000:]}"
    tar = subprocess.Popen(
        ["tar", "-C", str(root), *BASE_EXCLUDES, "-c", "."], stdout=subprocess.PIPE
    )
    try:
        _podman("import", "-", tag, stdin=tar.stdout, timeout=600)
    finally:
        assert tar.stdout is not None
        tar.stdout.close()
        tar.wait()
        shutil.rmtree(root)
    return tag


@pytest.fixture(scope="session")
def image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The Dockerfile built on the debootstrapped base, once per session (a tag per checkout)."""
    _require_tools()
    base = _base_image(tmp_path_factory.mktemp("debootstrap"))
    tag = f"localhost/cointoss-worker:test-{_digest(str(REPO_ROOT))}"
    _podman(
        "build",
        "--network",
        "host",
        *_ulimits(),
        "--volume",
        "/etc/ssl/certs:/etc/ssl/certs:ro",
        "--build-arg",
        f"BASE_IMAGE={base}",
        "--tag",
        tag,
        str(REPO_ROOT),
        timeout=900,
    )
    return tag


@dataclass(frozen=True)
class Process:
    """One process inside a container, as its /proc shows it."""

    pid: int
    ppid: int
    uid: int
    state: str
    cmdline: list[str]


# Runs inside the container with its python3: the process table from /proc (no ps in minbase).
PROCESS_TABLE = """
import json, os
table = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        status = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status"))
        argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")
    except OSError:
        continue  # gone meanwhile
    table.append({"pid": int(pid), "ppid": int(status["PPid"]), "uid": int(status["Uid"].split()[0]),
                  "state": status["State"].split()[0], "cmdline": [a.decode() for a in argv if a]})
print(json.dumps(table))
"""


def _events(logs: str, event: str) -> list[dict[str, Any]]:
    """The JSON log lines with this `event`, in order (the worker's own lines are JSON too)."""
    lines = (line for line in logs.splitlines() if line.startswith("{"))
    return [record for record in map(json.loads, lines) if record.get("event") == event]


@dataclass(frozen=True)
class Container:
    """A detached container; its logs and exit code stay readable after it stops."""

    name: str

    def logs(self) -> str:
        """`podman logs`: the container's stdout and stderr, interleaved."""
        return _podman("logs", self.name, merged=True)

    def events(self, event: str) -> list[dict[str, Any]]:
        return _events(self.logs(), event)

    def processes(self) -> dict[int, Process]:
        table = json.loads(_podman("exec", self.name, "python3", "-c", PROCESS_TABLE))
        return {row["pid"]: Process(**row) for row in table}

    def environ(self, pid: int) -> dict[str, str]:
        """/proc/PID/environ read inside the container (as the image's user, the worker's own)."""
        raw = subprocess.run(
            [*PODMAN, "exec", self.name, "cat", f"/proc/{pid}/environ"],
            capture_output=True,
            timeout=60,
            check=True,
        ).stdout
        return dict(item.decode().split("=", 1) for item in raw.split(b"\0") if b"=" in item)

    def stop(self) -> int:
        """`podman stop -t STOP_S` (SIGTERM, the image's STOPSIGNAL), then the exit code."""
        _podman("stop", "--time", str(STOP_S), self.name, timeout=STOP_S + 60)
        return int(_podman("wait", self.name).strip())

    def inspect(self) -> str:
        return _podman("inspect", self.name)


@pytest.fixture
def podman_run(image: str) -> Iterator[Callable[..., Container]]:
    """Starts containers of the image; all removed at the end of the test."""
    started: list[Container] = []

    def run(
        env: Mapping[str, str],
        *command: str,
        name: str = "",
        init: bool = False,
        entrypoint: Sequence[str] = (),
        volumes: Sequence[str] = (),
    ) -> Container:
        container = Container(name or f"cointoss-test-{uuid.uuid4().hex[:10]}")
        argv = ["run", "--detach", "--name", container.name, "--hostname", container.name]
        argv += ["--network", "host", "--log-driver", "k8s-file", *_ulimits()]
        if init:  # as ECS initProcessEnabled does: tini as PID 1, the entrypoint its child
            argv += ["--init", "--init-path", str(shutil.which("tini-static"))]
        if entrypoint:
            argv += ["--entrypoint", json.dumps(list(entrypoint))]
        for volume in volumes:
            argv += ["--volume", volume]
        for variable in env:  # `--env NAME` takes the value from podman's environment, not argv
            argv += ["--env", variable]
        started.append(container)
        _podman(*argv, image, *command, env={**os.environ, **env})
        return container

    yield run
    for container in started:
        subprocess.run(
            [*PODMAN, "rm", "--force", "--time", "0", container.name],
            capture_output=True,
            timeout=120,
            check=False,
        )


def _seed_for(side: str, env: Mapping[str, str]) -> str:
    """A MIGRATION_SEED whose coin sends a start to `side`, found with `cointoss toss` (a dry run)."""
    for seed in range(100):
        result = run_cointoss(["toss"], {**env, "MIGRATION_SEED": str(seed)})
        assert result.returncode == 0, result.stderr
        decision = json.loads(result.stdout)
        if (decision["side"], decision["reason"]) == (side, "coin"):
            return str(seed)
    raise AssertionError(f"no seed in 0..99 tosses {side}")


def _push(server: RedisServer, count: int = JOBS, **options: Any) -> list[str]:
    """RecordJobs pushed with the real producer, as an application would; their jids."""
    return Client(server.client()).push_bulk("RecordJob", [[]] * count, **options)


def _ledger(server: RedisServer) -> dict[str, int]:
    """RecordJob's runs per jid on the Redis the jobs were consumed from."""
    return {jid.decode(): int(runs) for jid, runs in server.client().hgetall(keys.LEDGER).items()}


def _ran_once(server: RedisServer, jids: list[str]) -> bool:
    return _ledger(server) == dict.fromkeys(jids, 1)


def _no_source_urls(environ: Mapping[str, str]) -> bool:
    """Neither MIGRATION_*_REDIS_URL nor its _FILE twin reaches the worker."""
    return not [name for name in environ if name.startswith("MIGRATION_") and "_REDIS_URL" in name]


def _settings(old: RedisServer, new: RedisServer, **extra: str) -> dict[str, str]:
    return {
        "MIGRATION_OLD_REDIS_URL": old.url,
        "MIGRATION_NEW_REDIS_URL": new.url,
        "MIGRATION_NEW_WEIGHT": "0.5",
        "WORKER_CONCURRENCY": "2",
        **extra,
    }


@pytest.mark.parametrize(
    ("init", "side"), [(False, "old"), (True, "new")], ids=["worker-is-pid1", "under-init"]
)
def test_exec_entrypoint_hands_the_container_to_the_worker(
    init: bool,
    side: str,
    podman_run: Callable[..., Container],
    old_redis: RedisServer,
    new_redis: RedisServer,
) -> None:
    """The image as shipped: the worker takes cointoss's PID, env rewritten, TERM stops it with 0."""
    servers = {"old": old_redis, "new": new_redis}
    chosen, other = servers[side], servers["new" if side == "old" else "old"]
    pushed = {name: _push(server) for name, server in servers.items()}
    env = _settings(old_redis, new_redis)
    env["MIGRATION_SEED"] = _seed_for(side, env)

    box = podman_run(env, init=init)
    wait_until(lambda: _ran_once(chosen, pushed[side]), LIVENESS_S, "the chosen side's jobs")
    (selected,) = box.events("redis_selected")
    table = box.processes()
    worker = table[selected["pid"]]
    environ = box.environ(worker.pid)
    code = box.stop()

    assert (selected["side"], selected["reason"], selected["command"]) == (side, "coin", "python")
    if init:
        assert table[1].cmdline[0] == "/run/podman-init"  # tini, as ECS initProcessEnabled runs
        assert worker.ppid == 1 and worker.pid != 1
    else:
        assert worker.pid == 1
    assert worker.cmdline[-2:] == ["-m", "worker_app"]
    assert worker.uid == WORKER_UID
    assert environ["REDIS_URL"] == chosen.url
    assert environ["REDIS_PRODUCER_URL"] == new_redis.url
    assert environ["MIGRATION_CHOICE"] == side
    assert _no_source_urls(environ)
    assert code == 0
    assert [e["signal"] for e in box.events("signal_received")] == ["SIGTERM"]
    assert _ran_once(chosen, pushed[side])
    assert _ledger(other) == {}
    assert other.client().llen("queue:default") == JOBS


# The worker of each life first leaves three orphans behind for PID 1 to adopt and reap.
ORPHANS = 3
ORPHANS_THEN_WORKER = (
    f"for i in $(seq {ORPHANS}); do (sleep 0.5 &); done; exec python -m worker_app"
)


def test_supervise_as_pid1_moves_the_worker_to_new_and_reaps_orphans(
    podman_run: Callable[..., Container], old_redis: RedisServer, new_redis: RedisServer
) -> None:
    """A worker on OLD moves to NEW once OLD drains; orphans are reaped; stop gives the worker's code."""
    old_jobs = _push(old_redis)
    env = _settings(
        old_redis,
        new_redis,
        MIGRATION_DRAIN_CHECK_INTERVAL="0.5",
        MIGRATION_DRAIN_CONFIRMATIONS="2",
        MIGRATION_DRAIN_JITTER="0.5",
        MIGRATION_STOP_TIMEOUT="20",
    )
    env["MIGRATION_SEED"] = _seed_for("old", env)

    box = podman_run(
        env, "sh", "-c", ORPHANS_THEN_WORKER, entrypoint=["cointoss", "supervise", "--"]
    )
    wait_until(lambda: new_redis.client().scard(keys.PROCESSES), LIVENESS_S, "a worker on NEW")
    new_jobs = _push(new_redis)
    wait_until(lambda: _ran_once(new_redis, new_jobs), LIVENESS_S, "NEW's jobs")
    reaped = wait_until(
        lambda: len(box.events("orphan_reaped")) >= 2 * ORPHANS and box.events("orphan_reaped"),
        LIVENESS_S,
        "both lives' orphans to be reaped",
        every=LOG_POLL_S,
    )
    table = box.processes()
    worker_pid = box.events("worker_started")[-1]["pid"]
    environ = box.environ(worker_pid)
    code = box.stop()

    (started,) = box.events("supervisor_started")
    assert started["pid1"] is True
    assert "supervise" in table[1].cmdline and table[1].uid == WORKER_UID
    assert [(e["side"], e["reason"]) for e in box.events("redis_selected")] == [
        ("old", "coin"),
        ("new", "old_drained"),
    ]
    assert table[worker_pid].ppid == 1 and table[worker_pid].uid == WORKER_UID
    assert environ["REDIS_URL"] == new_redis.url and environ["MIGRATION_CHOICE"] == "new"
    assert _no_source_urls(environ)
    assert len(reaped) == 2 * ORPHANS
    assert not [p for p in table.values() if p.state == "Z"], "a zombie was left unreaped"
    assert _ran_once(old_redis, old_jobs) and _ran_once(new_redis, new_jobs)
    exits = box.events("worker_exited")
    assert exits[-1]["exit_code"] == code == 0
    assert box.events("supervisor_exit")[-1]["exit_code"] == code


SECRETS_DIR = "/run/secrets/cointoss"


def test_urls_from_files_keep_the_password_out_of_logs_and_inspect(
    podman_run: Callable[..., Container],
    redis_factory: type[RedisServer],
    tmp_path: Path,
) -> None:
    """URLs in files on a read-only mount (as ECS/Docker secrets): the worker gets them, nobody sees them."""
    password = f"pw-{secrets.token_hex(16)}"  # unique: any sighting is a leak
    old = redis_factory(password=password).start()
    new = redis_factory(password=password).start()
    mounted = tmp_path / "secrets"
    mounted.mkdir(mode=0o755)
    for side, server in (("old", old), ("new", new)):
        (mounted / side).write_text(server.url + "\n")
        (mounted / side).chmod(0o444)  # as Docker writes /run/secrets/*
    pushed = _push(old)
    settings = {"MIGRATION_NEW_WEIGHT": "0.5", "WORKER_CONCURRENCY": "2"}
    on_host = {f"MIGRATION_{s.upper()}_REDIS_URL_FILE": str(mounted / s) for s in ("old", "new")}
    settings["MIGRATION_SEED"] = _seed_for("old", {**settings, **on_host})
    inside = {f"MIGRATION_{s.upper()}_REDIS_URL_FILE": f"{SECRETS_DIR}/{s}" for s in ("old", "new")}

    box = podman_run({**settings, **inside}, volumes=[f"{mounted}:{SECRETS_DIR}:ro"])
    wait_until(lambda: _ran_once(old, pushed), LIVENESS_S, "OLD's jobs")
    environ = box.environ(1)
    write = subprocess.run(
        [*PODMAN, "exec", "--user", "root", box.name, "sh", "-c", f"echo >> {SECRETS_DIR}/old"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    code = box.stop()
    logs, inspect = box.logs(), box.inspect()

    assert write.returncode != 0 and "Read-only file system" in write.stderr
    assert environ["REDIS_URL"] == old.url and environ["REDIS_PRODUCER_URL"] == new.url
    assert _no_source_urls(environ)
    (selected,) = box.events("redis_selected")
    assert (selected["side"], selected["url"]) == ("old", old.url.replace(password, "***"))
    assert code == 0
    assert _ran_once(old, pushed)
    assert password not in logs
    assert password not in inspect
    assert SECRETS_DIR in inspect  # what inspect shows instead: the files' paths


FLEET = 4
DEPLOYMENTS = 2  # rolling, after the fleet's first start


@contextmanager
def _producing(server: RedisServer) -> Iterator[list[str]]:
    """An application on NEW: RecordJobs in a steady trickle; yields their jids as they grow."""
    jids: list[str] = []
    done = threading.Event()

    def produce() -> None:
        while not done.wait(0.1):
            jids.extend(_push(server, 2))

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        yield jids
    finally:
        done.set()
        thread.join(timeout=30)


def _wait_heartbeat(box: Container, *servers: RedisServer) -> None:
    """Until the container's worker is in a `processes` set (its identity starts with the hostname)."""
    prefix = f"{box.name}:".encode()
    wait_until(
        lambda: any(
            member.startswith(prefix)
            for server in servers
            for member in server.client().smembers(keys.PROCESSES)
        ),
        LIVENESS_S,
        f"{box.name}'s heartbeat",
        every=0.1,
    )


def test_even_fleet_splits_every_rolling_deployment_exactly(
    podman_run: Callable[..., Container],
    old_redis: RedisServer,
    new_redis: RedisServer,
    tmp_path: Path,
) -> None:
    """Four `even` containers at 0.5, replaced one by one twice: 2/2 each time, every job once."""
    _push(old_redis, 1, delay=3600)  # scheduled work keeps OLD from ever looking drained
    old_jobs = _push(old_redis, 8)
    run = uuid.uuid4().hex[:8]
    boxes: list[Container] = []

    def start(deployment: int, slot: int) -> Container:
        env = _settings(
            old_redis,
            new_redis,
            MIGRATION_STRATEGY="even",
            MIGRATION_ROLLOUT_ID=f"fleet-{run}-{deployment}",
        )
        box = podman_run(env, name=f"cointoss-fleet-{run}-{deployment}-{slot}")
        boxes.append(box)
        return box

    codes = []
    with _producing(new_redis) as new_jobs:
        fleet = [start(0, slot) for slot in range(FLEET)]  # all at once: the counter is atomic
        for box in fleet:
            _wait_heartbeat(box, old_redis, new_redis)
        for deployment in range(1, DEPLOYMENTS + 1):
            for slot in range(FLEET):  # rolling: the replacement is up before the next stops
                codes.append(fleet[slot].stop())
                fleet[slot] = start(deployment, slot)
                _wait_heartbeat(fleet[slot], old_redis, new_redis)
    wait_until(lambda: len(_ledger(new_redis)) >= len(new_jobs), LIVENESS_S, "NEW's jobs")
    wait_until(lambda: len(_ledger(old_redis)) >= len(old_jobs), LIVENESS_S, "OLD's jobs")
    codes += [box.stop() for box in fleet]
    logs = {box.name: box.logs() for box in boxes}

    assert codes == [0] * len(boxes)
    assert new_jobs and _ran_once(new_redis, new_jobs)
    assert _ran_once(old_redis, old_jobs)
    splits: Counter[tuple[str, str]] = Counter()
    for name, text in logs.items():
        (selected,) = _events(text, "redis_selected")
        assert selected["reason"] == "even_sequence", name
        splits[selected["rollout"], selected["side"]] += 1
    rollouts = [f"fleet-{run}-{deployment}" for deployment in range(DEPLOYMENTS + 1)]
    assert splits == {(r, side): FLEET // 2 for r in rollouts for side in ("new", "old")}

    files = []
    for name, text in logs.items():
        files.append(tmp_path / f"{name}.log")
        files[-1].write_text(text)
    result = run_cointoss(["report", "--json", *map(str, files)])
    assert result.returncode == 0, result.stderr
    report = {row["rollout"]: row for row in json.loads(result.stdout)["rollouts"]}
    assert sorted(report) == rollouts
    for rollout in rollouts:
        row = report[rollout]
        assert (row["tasks"], row["tossed"], row["tossed_new"], row["on_new"]) == (
            FLEET,
            FLEET,
            splits[rollout, "new"],
            splits[rollout, "new"],
        )
        assert row["reasons"] == {"even_sequence": FLEET}
        assert row["outside_interval"] is False
