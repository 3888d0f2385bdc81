"""Log a repeated message once per cause per interval, with a count of the repeats.

A client that cannot reach its broker reports the same failure at every reconnect attempt
(measured: ~40 lines a second from librdkafka and our error callback together). An operator
needs the first line and then how often it kept happening, not the flood.
"""

from __future__ import annotations

import logging
import threading
import time


class RepeatLimiter:
    """The first message of a cause is logged at once; repeats within `interval_s` are counted
    and the count rides on the cause's next line. `interval_s=0` logs everything."""

    def __init__(self, logger: logging.Logger, interval_s: float):
        self.logger = logger
        self.interval_s = interval_s
        self._seen: dict[str, list[float]] = {}  # cause -> [last logged at, repeats since]
        self._lock = threading.Lock()  # librdkafka calls back from several client threads

    def log(self, level: int, cause: str, msg: str, *args) -> None:
        now = time.monotonic()
        with self._lock:
            seen = self._seen.get(cause)
            if seen is not None and now - seen[0] < self.interval_s:
                seen[1] += 1
                return
            repeats, since = (int(seen[1]), now - seen[0]) if seen is not None else (0, 0.0)
            self._seen[cause] = [now, 0]
        if repeats:
            msg += " (repeated %d times in the last %.0f s)"
            args = (*args, repeats, since)
        self.logger.log(level, msg, *args)
