"""Stages as real processes for tests: start `yujing <stage>` with an environment, and stop
every process a test started (TERM, then KILL after a grace period)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterable


def start_stage(env: dict[str, str], stage: str = "engine") -> subprocess.Popen[bytes]:
    code = f"from yujing.cli import main; import sys; sys.argv = ['yujing', {stage!r}]; main()"
    return subprocess.Popen([sys.executable, "-c", code], env=env)


def stop_all(procs: Iterable[subprocess.Popen[bytes]], grace_s: float = 15) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(grace_s)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
