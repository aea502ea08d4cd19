"""Fixtures of the guide and live channel tests: relays in threads, a test source on loopback."""
from __future__ import annotations

import subprocess

import pytest

from streaming import channels, headend


@pytest.fixture
def relays(app):
    """Relays run in threads here (jobs_inline); every one is stopped with its ffmpeg afterwards."""
    app.config["SETTINGS"].channel_backoff_cap_s = 2
    yield
    channels.stop_threads()


def source(port: int, label: str = "测试频道", seconds: float | None = None, size: str = "640x360") -> subprocess.Popen:
    argv = headend.source_command(f"udp://127.0.0.1:{port}", label, size=size, seconds=seconds)
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
