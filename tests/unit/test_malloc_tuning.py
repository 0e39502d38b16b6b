"""A fixed glibc mmap threshold: freed large buffers go back to the system, even after a
larger block was freed (which, by default, moves the threshold up for good)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from synth.agent import malloc_tuning

_GROWTH = """
import sys
if sys.argv[1] == "fixed":
    from synth.agent import malloc_tuning  # only ctypes: the heap stays as small as "default"

    assert malloc_tuning.fix_mmap_threshold()
def rss_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
big = bytearray(8 << 20)  # freed: glibc's dynamic threshold moves above 1 MB
del big
before = rss_kb()
buffers, keepers = [], []
for _ in range(32):  # a live small block after each buffer: freed, they are holes
    buffers.append(bytearray(1 << 20))
    keepers.append(bytearray(4096))
del buffers
print(rss_kb() - before)
"""


def _growth_kb(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _GROWTH, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout)


@pytest.fixture(autouse=True)
def _glibc() -> None:
    assert platform.libc_ver()[0] == "glibc", "synth's image and CI run on glibc"


def test_freed_buffers_leave_rss_only_with_the_threshold_fixed() -> None:
    assert _growth_kb("default") > 16 * 1024  # the allocator kept 32 freed MB
    assert _growth_kb("fixed") < 4 * 1024


def test_fixing_reports_success_on_glibc() -> None:
    assert malloc_tuning.fix_mmap_threshold() is True
