"""The broker goes away under a running service: it says so once per cause per interval, with a count.

Before the change this ran at ~40 lines a second (2,505 lines in 60 s, measured on main): every
reconnect attempt gave one librdkafka line and one error-callback line.
"""

from __future__ import annotations

import re
import time

from alertfeat.localinfra import LocalKafka
from tests.service_process import ServiceProcess

INTERVAL_S, WATCH_S = 5.0, 20.0


def test_repeated_client_errors_are_one_line_per_cause_per_interval(make_settings, tmp_path):
    # The broker answers at start (with none, `run` now fails fast in one line) and then goes away.
    broker = LocalKafka()
    broker.start()
    nobody = broker.bootstrap
    settings = make_settings(kafka_bootstrap_servers=nobody, create_topics=False, redis_url=None,
                             xmatch_catalogs=[], xmatch_bright_star_catalog=None, log_repeat_interval_s=INTERVAL_S)
    try:
        with ServiceProcess(settings, tmp_path / "service.log") as svc:
            deadline = time.monotonic() + 120
            while "consuming" not in svc.log():
                assert svc.alive() and time.monotonic() < deadline, svc.log()[-3000:]
                time.sleep(0.2)
            broker.stop()
            seen = len(svc.log())
            time.sleep(WATCH_S)
            lines = svc.log()[seen:].splitlines()
    finally:
        broker.stop()
    causes = {re.sub(r"\d+", "#", re.sub(r".*(alertfeat\.\w+): ", r"\1 ", line.split(" (repeated")[0]))
              for line in lines}
    repeats = [int(n) for n in re.findall(r"\(repeated (\d+) times", "\n".join(lines))]
    print(f"\nno broker, {WATCH_S:.0f} s: {len(lines)} lines, {len(causes)} causes, {sum(repeats)} repeats counted")
    assert lines and all(nobody in line or "brokers are down" in line or "not ready" in line for line in lines), lines
    # At most one line per cause per interval (plus the first one of each).
    assert len(lines) <= len(causes) * (WATCH_S / INTERVAL_S + 1), "\n".join(lines)
    assert repeats and max(repeats) > 10  # the flood happened and was counted, not dropped silently
