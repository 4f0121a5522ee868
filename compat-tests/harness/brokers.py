"""Start/stop real broker processes for the compatibility suite.

    b = Broker("sluice")   # or Broker("kafka")
    b.start()              # waits until a real ApiVersions request succeeds
    b.bootstrap            # "127.0.0.1:PORT"
    b.kill9(); b.restart() # same data dir and port
    b.stop()               # SIGTERM, bounded wait, then SIGKILL

Sluice: $SLUICE_BIN or <project>/build/bin/sluice.
Kafka:  KRaft single node (broker+controller) from the jars that kafka-ref/fetch.sh puts in
        ${SLUICE_CACHE:-~/.cache/sluice}/kafka-<version>/libs ($KAFKA_LIBS overrides).
Everything listens on 127.0.0.1 only; every wait is bounded.
"""
from __future__ import annotations

import base64
import ctypes
import functools
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from . import kwire

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COMPAT_DIR = PROJECT_ROOT / "compat-tests"
KINDS = ("sluice", "kafka")

START_TIMEOUT = {"sluice": 20.0, "kafka": 60.0}
STOP_TIMEOUT = {"sluice": 15.0, "kafka": 30.0}


@functools.cache
def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago, for a listener started later.

    It is taken from below the kernel's ephemeral range (ip_local_port_range): a port from
    bind(0) is an ephemeral one, and any outgoing connection of a running broker or client
    could take it before the listener binds it ("Address already in use"). A port is handed
    out once per test process."""
    low, high = 10000, _ephemeral_low()
    for _ in range(500 if high - low >= 1000 else 0):
        port = random.randrange(low, high)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # no room below the range
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sluice_bin() -> Path:
    return Path(os.environ.get("SLUICE_BIN") or PROJECT_ROOT / "build" / "bin" / "sluice")


_kafka_libs_cache: Path | None = None


def kafka_libs() -> Path:
    """The Kafka libs dir: $KAFKA_LIBS, or whatever kafka-ref/fetch.sh prints (fetching if needed)."""
    global _kafka_libs_cache
    if os.environ.get("KAFKA_LIBS"):
        return Path(os.environ["KAFKA_LIBS"])
    if _kafka_libs_cache is None:
        out = subprocess.run(["bash", str(COMPAT_DIR / "kafka-ref" / "fetch.sh")],
                             check=True, capture_output=True, text=True, timeout=960)
        _kafka_libs_cache = Path(out.stdout.strip().splitlines()[-1])
    return _kafka_libs_cache


def _die_with_parent() -> None:
    # Child gets SIGKILL if the test runner dies, so CI never leaks a broker.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass
    os.setsid()


KAFKA_LOG4J = """\
log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=WARN
log4j.logger.org.apache.kafka=WARN
log4j.logger.kafka.server.KafkaServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
log4j.logger.kafka.network.Processor=INFO
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
"""


class BrokerError(RuntimeError):
    pass


class Broker:
    def __init__(self, kind: str, workdir: str | Path | None = None, port: int | None = None,
                 extra_config: dict[str, str] | None = None, host: str = "127.0.0.1",
                 exec_prefix: list[str] | None = None):
        """host and exec_prefix: a Sluice node in a network namespace of harness/netlab.py."""
        if kind not in KINDS:
            raise ValueError(f"unknown broker kind {kind!r}; expected one of {KINDS}")
        self.kind = kind
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix=f"compat-{kind}-"))
        self._own_workdir = workdir is None
        self.data_dir = self.workdir / "data"
        self.log_path = self.workdir / "broker.log"
        self.port = port or free_port()
        self.controller_port = free_port() if kind == "kafka" else None
        self.extra_config = dict(extra_config or {})
        self._host = host
        self.exec_prefix = list(exec_prefix or [])
        self.proc: subprocess.Popen | None = None
        self._formatted = False
        self._log = None

    # ------------------------------------------------------------------ public
    @property
    def host(self) -> str:
        return self._host

    @property
    def bootstrap(self) -> str:
        return f"{self._host}:{self.port}"

    def __repr__(self) -> str:
        return f"Broker({self.kind}, {self.bootstrap}, pid={self.proc.pid if self.proc else None})"

    def start(self, wait: bool = True) -> "Broker":
        """wait=False: return once the process runs; wait_ready() waits for it to answer."""
        if self.running():
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = self.exec_prefix + (self._sluice_cmd() if self.kind == "sluice" else self._kafka_cmd())
        self._log = open(self.log_path, "ab")
        self._log.write(f"\n==== start {time.strftime('%H:%M:%S')}: {' '.join(map(str, cmd))}\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, cwd=self.workdir,
                                     preexec_fn=_die_with_parent)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float | None = None) -> None:
        self._wait_ready(timeout or START_TIMEOUT[self.kind])

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM and wait (bounded); SIGKILL if it does not exit in time."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT[self.kind])
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._close_log()

    def kill9(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self._close_log()

    def restart(self) -> "Broker":
        """Stop if running (SIGTERM), then start again on the same data dir and port."""
        self.stop()
        self._wait_port_free(15.0)
        return self.start()

    def cleanup(self) -> None:
        """Stop and remove the work dir (only if this object created it)."""
        self.stop()
        if self._own_workdir and not os.environ.get("COMPAT_KEEP"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, n: int = 60) -> str:
        try:
            lines = self.log_path.read_bytes().decode(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:])

    def api_versions(self) -> dict[int, tuple[int, int]]:
        return kwire.api_versions(self.host, self.port)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    # ----------------------------------------------------------------- private
    def _close_log(self) -> None:
        if self._log:
            self._log.close()
            self._log = None

    def _sluice_cmd(self) -> list[str]:
        binary = sluice_bin()
        if not binary.exists():
            raise BrokerError(f"sluice binary not found at {binary} (build it, or set SLUICE_BIN)")
        cmd = [str(binary), "server",
               "--override", "node.id=1",
               "--override", f"listeners=PLAINTEXT://{self._host}:{self.port}",
               "--override", f"log.dirs={self.data_dir}",
               # As for Kafka below: groups form at once instead of after 3 s.
               "--override", "group.initial.rebalance.delay.ms=0",
               # No admin HTTP server unless a test asks for one (extra_config): many brokers
               # run at once, and the default port is one for all.
               "--override", "admin.listeners="]
        for k, v in self.extra_config.items():
            cmd += ["--override", f"{k}={v}"]
        return cmd

    def _kafka_props(self) -> Path:
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            "auto.create.topics.enable": "true",
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "num.network.threads": "2",
            "num.io.threads": "2",
            "log.cleaner.enable": "false",
            # After a kill -9 the controller waits out the dead incarnation's session before it
            # lets the restarted broker in: 9 s by default; 3 s keeps restart tests short.
            "broker.heartbeat.interval.ms": "500",
            "broker.session.timeout.ms": "3000",
        }
        props.update(self.extra_config)
        path = self.workdir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (self.workdir / "log4j.properties").write_text(KAFKA_LOG4J)
        return path

    def _java(self, main: str, *args: str) -> list[str]:
        libs = kafka_libs()
        return ["java", "-Xmx768m", "-Xms256m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                "-Djava.awt.headless=true",
                f"-Dlog4j.configuration=file:{self.workdir / 'log4j.properties'}",
                f"-Dkafka.logs.dir={self.workdir / 'logs'}",
                "-cp", f"{libs}/*", main, *args]

    def _kafka_cmd(self) -> list[str]:
        props = self._kafka_props()
        if not self._formatted and not (self.data_dir / "meta.properties").exists():
            cluster_id = "-"
            while cluster_id.startswith("-"):  # a leading '-' reads as an option to the storage tool
                cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            fmt = self._java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props))
            try:
                res = subprocess.run(fmt, capture_output=True, text=True, timeout=60, cwd=self.workdir)
            except subprocess.TimeoutExpired as e:
                raise BrokerError(f"kafka storage format timed out: {e}") from e
            if res.returncode != 0:
                raise BrokerError(f"kafka storage format failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
            self._formatted = True
        return self._java("kafka.Kafka", str(props))

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrokerError(f"{self.kind} exited with {self.proc.returncode} during startup\n"
                                  f"--- log tail ({self.log_path}) ---\n{self.log_tail()}")
            try:
                kwire.api_versions(self.host, self.port, timeout=2.0)
                if self.kind == "kafka" and kwire.metadata_broker_count(self.host, self.port, 2.0) < 1:
                    raise BrokerError("metadata lists no brokers yet")
                return
            except Exception as e:  # not up yet
                last = e
            time.sleep(0.2)
        self.proc.kill()
        self.proc.wait(10)
        self._close_log()
        raise BrokerError(f"{self.kind} not ready on {self.bootstrap} after {timeout:.0f}s (last: {last!r})\n"
                          f"--- log tail ({self.log_path}) ---\n{self.log_tail()}")

    def _wait_port_free(self, timeout: float) -> None:
        if self._host != "127.0.0.1":
            return  # a namespace of its own: nothing else binds there
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("127.0.0.1", self.port))
                    return
                except OSError:
                    time.sleep(0.2)
