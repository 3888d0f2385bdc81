"""The glibc tuning keeps freed payload-sized blocks in the heap instead of returning them to the
kernel (which the next batch would page-fault back in). Each case runs in a fresh interpreter."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

PROBE = """
import sys, psutil
if sys.argv[1] == "tuned":
    from alertfeat.allocator import keep_freed_heap
    assert keep_freed_heap()
process = psutil.Process()
blocks = [bytearray(1 << 20) for _ in range(200)]  # 200 MB of 1 MB blocks, all touched
peak = process.memory_info().rss
del blocks
print(peak >> 20, process.memory_info().rss >> 20)
"""

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt tuning is glibc-only")


def _rss_mb_before_and_after_free(mode: str) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True).stdout
    peak, after = map(int, out.split())
    return peak, after


def test_default_glibc_returns_freed_megabyte_blocks() -> None:
    peak, after = _rss_mb_before_and_after_free("default")
    assert after < peak - 150  # the control: without tuning, 1 MB blocks are mmapped and unmapped


def test_tuned_heap_keeps_freed_blocks_resident() -> None:
    peak, after = _rss_mb_before_and_after_free("tuned")
    assert after > peak - 20
