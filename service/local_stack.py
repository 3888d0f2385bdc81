"""`alertfeat local up` / `down`: the bundled broker (Tansu) and a redis-server, left running in
the background for running `run`, `replay` and `subscribe` by hand without Docker.

What is running is recorded in <data_dir>/local/state.json; `down` stops exactly those
processes (each pid is checked against its command line first, in case it was reused).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .localinfra import LocalKafka, LocalRedis, redis_server_binary

log = logging.getLogger(__name__)


@dataclass
class LocalProcess:
    name: str
    pid: int
    executable: str  # to recognise the pid as ours at `down`
    log: str


@dataclass
class LocalStack:
    env: dict[str, str]
    processes: list[LocalProcess]

    def exports(self) -> str:
        return "\n".join(f"export {k}={v}" for k, v in self.env.items())


def state_path(data_dir: Path) -> Path:
    return Path(data_dir) / "local" / "state.json"


def _alive(p: LocalProcess) -> bool:
    try:
        cmdline = Path(f"/proc/{p.pid}/cmdline").read_bytes()
    except OSError:
        return False
    stat = Path(f"/proc/{p.pid}/stat").read_text()
    return p.executable.encode() in cmdline and stat.rsplit(")", 1)[1].split()[0] != "Z"


def _recorded(data_dir: Path) -> LocalStack | None:
    """The stack the state file records; None when there is none or it cannot be read."""
    path = state_path(data_dir)
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text())
        return LocalStack(state["env"], [LocalProcess(**p) for p in state["processes"]])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring unreadable %s (%s)", path, exc)
        return None


def running(data_dir: Path) -> LocalStack | None:
    """The stack recorded in the data directory, if all of its processes still run."""
    stack = _recorded(data_dir)
    return stack if stack is not None and all(map(_alive, stack.processes)) else None


def up(data_dir: Path) -> tuple[LocalStack, bool]:
    """(the running stack, whether it was started now). Starts nothing if one already runs."""
    existing = running(data_dir)
    if existing is not None:
        return existing, False
    down(data_dir)  # leftovers of a stack that half died
    servers = [LocalKafka()]
    env = {"ALERTFEAT_KAFKA_BOOTSTRAP_SERVERS": servers[0].bootstrap}
    if redis_server_binary() is not None:
        servers.append(LocalRedis())
        env["ALERTFEAT_REDIS_URL"] = servers[1].url
    else:
        env["ALERTFEAT_REDIS_URL"] = "none"  # alert-only history
    processes = []
    try:
        for server in servers:
            server.start()
            processes.append(LocalProcess(server.name, server.proc.pid, server.command()[0], str(server.log_path)))
    except BaseException:
        for server in servers:
            server.stop()
        raise
    stack = LocalStack(env, processes)
    path = state_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"env": env, "processes": [asdict(p) for p in processes]}, indent=1))
    return stack, True


def down(data_dir: Path, timeout_s: float = 10.0) -> list[str]:
    """Stop the recorded processes (SIGTERM, then SIGKILL after `timeout_s`); their names."""
    path = state_path(data_dir)
    stack = _recorded(data_dir)
    processes = stack.processes if stack is not None else []
    stopped = []
    for p in filter(_alive, processes):
        os.kill(p.pid, signal.SIGTERM)
        stopped.append(p.name)
    deadline = time.monotonic() + timeout_s
    for p in processes:
        while _alive(p) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(p):
            os.kill(p.pid, signal.SIGKILL)
        shutil.rmtree(Path(p.log).parent, ignore_errors=True)  # the server's scratch directory
    path.unlink(missing_ok=True)
    return stopped
