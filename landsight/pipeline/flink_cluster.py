"""A local standalone Flink cluster: one JobManager and N TaskManagers, each its own process on 127.0.0.1.

For tests, benchmarks and users who try `flink_master` before they have a real cluster. It runs Flink's own
`jobmanager.sh` / `taskmanager.sh` (shipped in the apache-flink package of the Flink environment) in the foreground,
each in a new process group, with a private configuration folder (free ports, small memory, logs and temporary
files inside `folder`), so nothing is written into site-packages and several clusters can run side by side.
A cluster's state (ports, process ids) is kept in FOLDER/cluster.json, so `scripts/flink-cluster.sh stop FOLDER`
can stop a cluster another process started.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from landsight.errors import ConfigError, LandsightError

log = logging.getLogger(__name__)

STATE = "cluster.json"


@dataclasses.dataclass(frozen=True)
class LocalCluster:
    """A running local cluster: its folder, REST port and the process ids of its JobManager and TaskManagers."""

    folder: Path
    rest_port: int
    jobmanager: int
    taskmanagers: tuple[int, ...]

    @property
    def master(self) -> str:
        """HOST:PORT of the JobManager's REST endpoint, as `flink_master` takes it."""
        return f"127.0.0.1:{self.rest_port}"


def flink_home(python: Path) -> Path:
    """The Flink distribution inside the apache-flink package of the environment whose interpreter is `python`."""
    found = subprocess.run([str(python), "-c", "import pyflink, os; print(os.path.dirname(pyflink.__file__))"],
                           capture_output=True, text=True, timeout=120, check=False)
    home = Path(found.stdout.strip())
    if found.returncode != 0 or not (home / "bin" / "jobmanager.sh").exists():
        raise LandsightError(f"no Flink distribution in the environment of {python} (pyflink/bin/jobmanager.sh): "
                             f"{found.stderr[-500:]}")
    return home


def free_ports(count: int) -> list[int]:
    """`count` different TCP ports free on 127.0.0.1 now (the OS picks them)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def cluster_config(folder: Path, rpc_port: int, rest_port: int, slots: int, python: Path) -> dict[str, Any]:
    """The private config.yaml of a local cluster: loopback only, small memory, files under `folder`."""
    return {
        "jobmanager.rpc.address": "127.0.0.1", "jobmanager.rpc.port": rpc_port, "jobmanager.bind-host": "127.0.0.1",
        "rest.address": "127.0.0.1", "rest.bind-address": "127.0.0.1", "rest.port": rest_port,
        "taskmanager.host": "127.0.0.1", "taskmanager.bind-host": "127.0.0.1",
        "taskmanager.numberOfTaskSlots": slots,
        "jobmanager.memory.process.size": "800m",
        "taskmanager.memory.process.size": f"{768 + 512 * slots}m",
        "taskmanager.memory.managed.fraction": 0.3,
        "io.tmp.dirs": str(folder / "tmp"), "blob.storage.directory": str(folder / "blob"),
        "web.tmpdir": str(folder / "web"), "env.pid.dir": str(folder),
        # a killed TaskManager is noticed within seconds, not the default 50 s
        "heartbeat.interval": 1000, "heartbeat.timeout": 10000,
        "taskmanager.load-balance.mode": "SLOTS",  # spread a job's slots over the TaskManagers
        "python.executable": str(python), "python.client.executable": str(python),
    }


def flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flink's nested config.yaml as flat `a.b.c` keys."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out |= flat(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def write_conf(home: Path, folder: Path, config: dict[str, Any]) -> Path:
    """FOLDER/conf: the distribution's config.yaml (its Java 17 options among them) with `config` on top, flat, and
    its logging settings."""
    import yaml

    conf = folder / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    for name in ("log4j-console.properties", "log4j.properties", "logback-console.xml", "logback.xml"):
        if (home / "conf" / name).exists():
            shutil.copy(home / "conf" / name, conf / name)
    settings = flat(yaml.safe_load((home / "conf" / "config.yaml").read_text()) or {}) | config
    (conf / "config.yaml").write_text("".join(f"{key}: {json.dumps(value)}\n" for key, value in settings.items()))
    for sub in ("tmp", "blob", "web", "log"):
        (folder / sub).mkdir(exist_ok=True)
    return conf


def _spawn(home: Path, folder: Path, script: str, name: str) -> int:
    env = {**os.environ, "FLINK_CONF_DIR": str(folder / "conf"), "FLINK_LOG_DIR": str(folder / "log"),
           "FLINK_HOME": str(home)}
    with open(folder / "log" / f"{name}.out", "ab") as out:
        proc = subprocess.Popen(["bash", str(home / "bin" / script), "start-foreground"], env=env, cwd=folder,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    return proc.pid


def rest(master: str, path: str, timeout: float = 5.0) -> Any:
    """GET a JSON document from a Flink REST endpoint (HOST:PORT)."""
    with urllib.request.urlopen(f"http://{master}{path}", timeout=timeout) as answer:
        return json.loads(answer.read())


def registered_taskmanagers(master: str) -> int:
    """How many TaskManagers the JobManager at `master` knows (0 while it is not up)."""
    try:
        return len(rest(master, "/taskmanagers").get("taskmanagers", []))
    except OSError:
        return 0


def start_cluster(folder: str | Path, python: str | Path, taskmanagers: int = 2, slots: int = 1,
                  timeout: float = 180.0) -> LocalCluster:
    """Start a JobManager and `taskmanagers` TaskManagers (`slots` task slots each) on 127.0.0.1; wait until every
    TaskManager has registered. `folder` (created; must not hold a running cluster) receives configuration, logs and
    temporary files; `python` is the Flink environment's interpreter (its pyflink holds Flink's bin/)."""
    if taskmanagers < 1 or slots < 1:
        raise ConfigError(f"a cluster needs at least one TaskManager with one slot (got `taskmanagers`={taskmanagers}, "
                          f"`slots`={slots})")
    folder = Path(folder).resolve()
    if (folder / STATE).exists() and any(_alive(pid, folder) for pid in _pids(read_state(folder))):
        raise ConfigError(f"a cluster is already running in {folder}; stop it first or choose another `folder`")
    folder.mkdir(parents=True, exist_ok=True)
    home = flink_home(Path(python))
    rpc_port, rest_port = free_ports(2)
    write_conf(home, folder, cluster_config(folder, rpc_port, rest_port, slots, Path(python)))
    jobmanager = _spawn(home, folder, "jobmanager.sh", "jobmanager")
    workers = tuple(_spawn(home, folder, "taskmanager.sh", f"taskmanager-{i}") for i in range(taskmanagers))
    cluster = LocalCluster(folder, rest_port, jobmanager, workers)
    (folder / STATE).write_text(json.dumps({"rest_port": rest_port, "jobmanager": jobmanager,
                                            "taskmanagers": list(workers)}))
    deadline = time.monotonic() + timeout
    while registered_taskmanagers(cluster.master) < taskmanagers:
        if time.monotonic() > deadline or not _alive(jobmanager, folder):
            stop_cluster(folder)
            raise LandsightError(f"the local Flink cluster did not start within {timeout:.0f} s; logs in "
                                 f"{folder / 'log'}")
        time.sleep(0.5)
    log.info("local Flink cluster up at %s (%d TaskManagers x %d slots)", cluster.master, taskmanagers, slots)
    return cluster


def read_state(folder: str | Path) -> LocalCluster:
    """The cluster recorded in FOLDER/cluster.json."""
    path = Path(folder).resolve() / STATE
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"no local Flink cluster recorded in {path} ({exc}); start one with "
                          f"scripts/flink-cluster.sh start FOLDER") from exc
    return LocalCluster(path.parent, int(state["rest_port"]), int(state["jobmanager"]),
                        tuple(int(p) for p in state["taskmanagers"]))


def kill_process(pid: int, folder: Path, sig: signal.Signals = signal.SIGKILL, timeout: float = 30.0) -> None:
    """Send `sig` to the process group of `pid` (a process of the cluster in `folder`) and wait until it is gone."""
    if not _alive(pid, folder):
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
    deadline = time.monotonic() + timeout
    while _alive(pid, folder):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        time.sleep(0.1)


def stop_cluster(folder: str | Path, timeout: float = 30.0) -> None:
    """Stop the cluster recorded in `folder`: SIGTERM to each process group, SIGKILL after `timeout` seconds."""
    cluster = read_state(folder)
    for pid in (*cluster.taskmanagers, cluster.jobmanager):
        kill_process(pid, cluster.folder, signal.SIGTERM, timeout)
    (cluster.folder / STATE).unlink(missing_ok=True)


@contextlib.contextmanager
def local_cluster(folder: str | Path, python: str | Path, taskmanagers: int = 2, slots: int = 1,
                  timeout: float = 180.0) -> Iterator[LocalCluster]:
    """`start_cluster`, stopped (every process group) when the block ends, whatever happens in it."""
    cluster = start_cluster(folder, python, taskmanagers, slots, timeout)
    try:
        yield cluster
    finally:
        stop_cluster(cluster.folder)


def _pids(cluster: LocalCluster) -> tuple[int, ...]:
    return cluster.jobmanager, *cluster.taskmanagers


def _alive(pid: int, folder: Path) -> bool:
    """Whether `pid` runs and belongs to the cluster in `folder` (a reused pid is not ours)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z" and f"FLINK_CONF_DIR={folder / 'conf'}".encode() in environ


def main(argv: list[str] | None = None) -> None:
    """`python -m landsight.pipeline.flink_cluster start|stop FOLDER`: what scripts/flink-cluster.sh runs."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="flink-cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("folder", type=Path, help="configuration, logs and temporary files of the cluster")
    parser.add_argument("--taskmanagers", type=int, default=2, help="TaskManager processes (default 2)")
    parser.add_argument("--slots", type=int, default=1, help="task slots per TaskManager (default 1)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.action == "start":
            cluster = start_cluster(args.folder, sys.executable, args.taskmanagers, args.slots)
            print(cluster.master)
        else:
            stop_cluster(args.folder)
    except LandsightError as exc:
        print(f"flink-cluster: {exc}", file=sys.stderr)
        sys.exit(2 if isinstance(exc, ConfigError) else 1)


if __name__ == "__main__":
    main()
