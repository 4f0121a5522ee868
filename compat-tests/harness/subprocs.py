"""Running a client program (Node, Java) as a bounded subprocess."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def run_bounded(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float) -> tuple[int | None, str, float]:
    """Run cmd in its own process group; kill the whole group on timeout. Returns (rc, output, secs)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out, time.monotonic() - t0
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return None, out + f"\n*** killed after {timeout}s timeout ***", time.monotonic() - t0
