"""Apache Kafka 4 (KRaft) for the tests: the jars from Maven Central (tests/kafka/pom.xml), one
combined broker+controller node or a 3-node cluster, on free loopback ports with a log on disk.

The JVMs get small heaps and the serial collector, so that three of them fit on 2 cores beside
the service under test. A node can be killed with SIGKILL and restarted on the same log dir.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from alertfeat.localinfra import InfraError, _Server, _wait_for, free_port

HERE = Path(__file__).resolve().parent
JARS = HERE.parents[1] / ".cache" / "kafka-jars"
HEAP = "-Xmx256m"


def tools_available() -> bool:
    return shutil.which("java") is not None and shutil.which("mvn") is not None


def kafka_jars() -> Path:
    """The broker's jars, fetched by Maven once per version of the pom (a stamp holds its hash)."""
    want = hashlib.sha256((HERE / "pom.xml").read_bytes()).hexdigest()
    stamp = JARS / ".pom-sha256"
    JARS.parent.mkdir(parents=True, exist_ok=True)
    with open(JARS.parent / ".kafka-jars.lock", "w") as lock:  # parallel sessions fetch once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and stamp.read_text() == want:
            return JARS
        shutil.rmtree(JARS, ignore_errors=True)
        try:
            done = subprocess.run(["mvn", "-q", "-B", "-f", str(HERE / "pom.xml"), "dependency:copy-dependencies"],
                                  capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired as exc:
            raise InfraError("mvn did not fetch Apache Kafka within 900 s") from exc
        if done.returncode != 0:
            raise InfraError(f"mvn could not fetch Apache Kafka: {(done.stdout + done.stderr)[-2000:]}")
        stamp.write_text(want)
    return JARS


def kafka_version() -> str:
    return next(kafka_jars().glob("kafka_2.13-*.jar")).stem.removeprefix("kafka_2.13-")


def _java(main: str, *args: str) -> list[str]:
    return ["java", HEAP, "-Xms32m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xss512k",
            "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={HERE / 'log4j2.properties'}",
            "-cp", f"{kafka_jars()}/*", main, *args]


def _cluster_id() -> str:
    """Kafka's Uuid text form: 16 random bytes, URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


class KafkaNode(_Server):
    """One combined-mode (broker + controller) KRaft node.

    `listeners` maps listener names to (security protocol, port); the first is the one clients
    are given. Brokers talk to each other, and the tests check readiness, on a plaintext
    INTERNAL listener of their own (principal User:ANONYMOUS). `properties` are added to (and
    override) server.properties; `scram` users (name -> password) are written into the log dir
    at format time, as `kafka-storage format --add-scram` does, so that a SASL broker can let its
    first admin in."""

    name = "kafka"

    def __init__(self, node_id: int = 1, properties: dict[str, str] | None = None,
                 listeners: dict[str, tuple[str, int]] | None = None, scram: dict[str, str] | None = None):
        super().__init__()
        self.node_id = node_id
        self.controller_port = free_port()
        self.internal_port = free_port()
        self.listeners = listeners or {"PLAINTEXT": ("PLAINTEXT", self.port)}
        self.port = next(iter(self.listeners.values()))[1]
        self.properties = properties or {}
        self.scram = scram or {}
        self.voters = f"{node_id}@127.0.0.1:{self.controller_port}"
        self.cluster_id = _cluster_id()
        self.log_dir = self.workdir / "log"
        self.config_path = self.workdir / "server.properties"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def internal_bootstrap(self) -> str:
        """Plaintext, principal ANONYMOUS: for test readers of a secured node."""
        return f"127.0.0.1:{self.internal_port}"

    def write_config(self) -> None:
        advertised = {**self.listeners, "INTERNAL": ("PLAINTEXT", self.internal_port)}
        listeners = {**advertised, "CONTROLLER": ("PLAINTEXT", self.controller_port)}
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": self.voters,
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "INTERNAL",
            "listeners": ",".join(f"{n}://127.0.0.1:{p}" for n, (_, p) in listeners.items()),
            "advertised.listeners": ",".join(f"{n}://127.0.0.1:{p}" for n, (_, p) in advertised.items()),
            "listener.security.protocol.map": ",".join(f"{n}:{proto}" for n, (proto, _) in listeners.items()),
            "log.dirs": str(self.log_dir),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            # Fast failure detection for KIP-848 groups too (the classic protocol's session timeout
            # is the client's; the tests use 6 s there).
            "group.consumer.session.timeout.ms": "6000",
            "group.consumer.min.session.timeout.ms": "6000",
            "group.consumer.heartbeat.interval.ms": "500",
            "group.consumer.min.heartbeat.interval.ms": "500",
            "num.network.threads": "2",
            "num.io.threads": "2",
            "background.threads": "2",
            # Rubin alerts with cutouts can pass 1 MB (Kafka's default cap); alert brokers raise it.
            "message.max.bytes": str(8 * 1024 * 1024),
            "replica.fetch.max.bytes": str(8 * 1024 * 1024),
            **self.properties,
        }
        self.config_path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))

    def format(self) -> None:
        """`kafka-storage format`: once per log dir; a restart reuses the formatted log."""
        if (self.log_dir / "meta.properties").exists():
            return
        self.write_config()
        scram = [a for name, pw in self.scram.items()
                 for a in ("--add-scram", f"SCRAM-SHA-512=[name={name},password={pw}]")]
        done = subprocess.run(_java("kafka.tools.StorageTool", "format", "-t", self.cluster_id,
                                    "-c", str(self.config_path), *scram),
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise InfraError(f"kafka-storage format failed: {(done.stdout + done.stderr)[-2000:]}")

    def command(self) -> list[str]:
        return _java("kafka.Kafka", str(self.config_path))

    def launch(self) -> None:
        """Start the JVM without waiting for it (a cluster's nodes must start together)."""
        self.format()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                                         start_new_session=True)

    def start(self, timeout_s: float = 90.0) -> KafkaNode:
        self.launch()
        self.wait_ready(timeout_s)
        return self

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        _wait_for(self.ready, f"kafka node {self.node_id}", timeout_s, self.proc, self.log_path)

    def ready(self) -> bool:
        import socket

        from confluent_kafka.admin import AdminClient

        socket.create_connection(("127.0.0.1", self.internal_port), timeout=1).close()
        metadata = AdminClient({"bootstrap.servers": self.internal_bootstrap}).list_topics(timeout=2)
        return self.node_id in metadata.brokers

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, the log dir is left as a crash leaves it."""
        if self.proc is not None and self.proc.poll() is None:
            self.resume()
            self.proc.kill()
            self.proc.wait(30)
        self.proc = None

    def restart(self, timeout_s: float = 90.0) -> float:
        """Start again on the same log dir; seconds until clients are served."""
        t = time.monotonic()
        self.start(timeout_s)
        return time.monotonic() - t


class KafkaCluster:
    """Three combined-mode KRaft nodes (three voters) on loopback; internal topics at RF 3 with
    min.insync.replicas 2, so that one node can die without stopping transactions."""

    def __init__(self, size: int = 3, properties: dict[str, str] | None = None):
        replicated = {"offsets.topic.replication.factor": str(size),
                      "transaction.state.log.replication.factor": str(size),
                      "transaction.state.log.min.isr": "2",
                      "default.replication.factor": str(size),
                      "min.insync.replicas": "2",
                      "unclean.leader.election.enable": "false",
                      **(properties or {})}
        self.nodes = [KafkaNode(node_id=k + 1, properties=replicated) for k in range(size)]
        voters = ",".join(n.voters for n in self.nodes)
        cluster_id = self.nodes[0].cluster_id
        for node in self.nodes:
            node.voters, node.cluster_id = voters, cluster_id

    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes)

    def node(self, node_id: int) -> KafkaNode:
        return next(n for n in self.nodes if n.node_id == node_id)

    def leader(self, topic: str, partition: int = 0) -> int:
        from confluent_kafka.admin import AdminClient

        metadata = AdminClient({"bootstrap.servers": self.bootstrap}).list_topics(topic, timeout=10)
        return metadata.topics[topic].partitions[partition].leader

    def __enter__(self) -> KafkaCluster:
        for node in self.nodes:
            node.launch()
        for node in self.nodes:
            node.wait_ready(120)
        return self

    def __exit__(self, *exc) -> None:
        for node in self.nodes:
            node.__exit__(*exc)
