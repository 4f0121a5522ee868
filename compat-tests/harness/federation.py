"""A federation endpoint (`sluice federation`, federation/) over member clusters, for tests: started
on loopback with short health timings, its topic map in its own work dir."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from . import kwire
from .brokers import _die_with_parent, free_port, sluice_bin

# Short timings: a member is asked every 200 ms and unhealthy after 1.5 s without an answer.
# Groups form at once (as the harness's brokers do).
TIMINGS = {"federation.health.check.interval.ms": "200", "federation.member.timeout.ms": "1500",
           "federation.request.timeout.ms": "10000", "group.initial.rebalance.delay.ms": "0"}


class FederationNode:
    def __init__(self, members: dict[str, str], workdir: Path | None = None, extra: dict[str, str] | None = None):
        """members: name -> bootstrap servers, in federation.clusters order."""
        self.members = dict(members)
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="compat-federation-"))
        self._own_workdir = workdir is None
        self.port = free_port()
        self.admin_port = free_port()
        self.extra = dict(extra or {})
        self.proc: subprocess.Popen | None = None
        self.log_path = self.workdir / "federation.log"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def command(self) -> list[str]:
        config = {"listeners": f"PLAINTEXT://127.0.0.1:{self.port}", "log.dirs": str(self.workdir / "map"),
                  "admin.listeners": f"http://127.0.0.1:{self.admin_port}",
                  "federation.clusters": ",".join(self.members), **TIMINGS, **self.extra}
        for name, servers in self.members.items():
            config[f"federation.cluster.{name}.bootstrap.servers"] = servers
        cmd = [str(sluice_bin()), "federation"]
        for k, v in config.items():
            cmd += ["--override", f"{k}={v}"]
        return cmd

    def start(self) -> "FederationNode":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     cwd=self.workdir, preexec_fn=_die_with_parent)
        log.close()
        deadline = time.monotonic() + 20
        while True:
            assert self.proc.poll() is None, f"the federation exited: {self.log_tail()}"
            try:
                kwire.api_versions("127.0.0.1", self.port, timeout=2.0)
                return self
            except Exception:
                assert time.monotonic() < deadline, f"the federation did not start: {self.log_tail()}"
                time.sleep(0.1)

    def kill9(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def cleanup(self) -> None:
        self.stop()
        if self._own_workdir and not os.environ.get("COMPAT_KEEP"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"
