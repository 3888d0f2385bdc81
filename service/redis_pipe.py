"""Many Redis commands in one write per server, replies read back in order.

redis-py's Pipeline spends ~10 µs of Python per command on bookkeeping; for the ~3 commands
per alert of the history stage that exceeded the whole stage budget. This packs RESP directly
and reads replies through redis-py's own connections (so AUTH, TLS and reconnects stay
redis-py's job). Measured: 3,000 GET/APPEND/EXPIRE commands in 8-14 ms vs 26-33 ms.

With a RedisCluster client, commands are grouped by the node that owns their key's slot; a
MOVED reply (slots were resharded) refreshes the slot map and retries those commands once.
"""

from __future__ import annotations

import redis
from redis.cluster import RedisCluster
from redis.exceptions import ResponseError

Arg = bytes | str | int | float


def _bulk(arg: Arg) -> bytes:
    if isinstance(arg, str):
        arg = arg.encode()
    elif not isinstance(arg, (bytes, bytearray, memoryview)):
        arg = repr(arg).encode()
    return b"$%d\r\n%s\r\n" % (len(arg), arg)


def pack_command(*args: Arg) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(_bulk(a) for a in args)


def _send(client: redis.Redis, commands: list[bytes]) -> list:
    """One write, then one reply per command, on one connection of a single server."""
    pool = client.connection_pool
    conn = pool.get_connection()
    try:
        conn.send_packed_command([b"".join(commands)], check_health=False)
        replies = []
        for _ in commands:
            try:
                replies.append(conn.read_response())
            except ResponseError as exc:
                replies.append(exc)
        return replies
    except BaseException:
        conn.disconnect()  # replies may be half-read: never reuse this connection
        raise
    finally:
        pool.release(conn)


class RawPipeline:
    """Collect commands (each names its one key), then `execute()` returns every reply in order.

    Error replies come back as ResponseError instances (like redis-py's raise_on_error=False);
    connection errors raise.
    """

    def __init__(self, client: redis.Redis | RedisCluster):
        self.client = client
        self.commands: list[tuple[bytes, str]] = []

    def add(self, *args: Arg, key: str) -> None:
        self.commands.append((pack_command(*args), key))

    def __len__(self) -> int:
        return len(self.commands)

    def execute(self) -> list:
        commands, self.commands = self.commands, []
        if not commands:
            return []
        if not isinstance(self.client, RedisCluster):
            return _send(self.client, [c for c, _ in commands])
        replies = self._execute_on_cluster(commands)
        moved = [i for i, r in enumerate(replies) if isinstance(r, ResponseError) and str(r).startswith("MOVED")]
        if moved:
            self.client.nodes_manager.initialize()
            for i, reply in zip(moved, self._execute_on_cluster([commands[i] for i in moved])):
                replies[i] = reply
        return replies

    def _execute_on_cluster(self, commands: list[tuple[bytes, str]]) -> list:
        by_node: dict[str, list[int]] = {}
        nodes = {}
        for i, (_, key) in enumerate(commands):
            node = self.client.get_node_from_key(key)
            nodes[node.name] = node
            by_node.setdefault(node.name, []).append(i)
        replies: list = [None] * len(commands)
        for name, indices in by_node.items():
            for i, reply in zip(indices, _send(nodes[name].redis_connection, [commands[i][0] for i in indices])):
                replies[i] = reply
        return replies
