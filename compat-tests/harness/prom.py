"""Helpers for tests that read an admin HTTP server (a broker's or a federation endpoint's) and
scrape it with Debian's Prometheus: bounded waits, GETs, and a Prometheus process on loopback with
its own config and TSDB, queried over its HTTP API."""
from __future__ import annotations

import http.client
import json
import subprocess
import time
from pathlib import Path
from urllib.parse import urlencode

from .brokers import _die_with_parent, free_port

JOB = "sluice"  # the scrape job's name


def wait_for(what: str, probe, timeout: float, interval: float = 0.5):
    """Call probe() until it returns (True, value); return value. probe() returns (False, detail)
    while the condition does not hold, or raises (both count as "not yet"). Bounded by timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            done, last = probe()
        except Exception as e:  # a node going away mid-request, a view not refreshed yet
            done, last = False, f"{type(e).__name__}: {e}"
        if done:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s; last: {last!r}")
        time.sleep(interval)


def http_get(port: int, path: str, timeout: float = 10.0, method: str = "GET") -> tuple[int, dict, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path)
        res = conn.getresponse()
        return res.status, dict(res.getheaders()), res.read().decode()
    finally:
        conn.close()


def admin_json(port: int, path: str):
    """GET an admin JSON view: 200, Content-Type application/json, a JSON body."""
    status, headers, body = http_get(port, path)
    assert status == 200, f"GET {path} on :{port}: {status} {body[:500]}"
    assert headers.get("Content-Type", "").startswith("application/json"), \
        f"GET {path} on :{port}: Content-Type {headers.get('Content-Type')!r}"
    return json.loads(body)


class Prometheus:
    """Debian's prometheus on a free port with its own config and TSDB in workdir."""

    def __init__(self, binary: str, workdir: Path, targets: list[str]):
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.config_path = workdir / "prometheus.yml"
        self.log_path = workdir / "prometheus.log"
        self.proc: subprocess.Popen | None = None
        self._log = None
        quoted = ", ".join(f"'{t}'" for t in targets)
        self.config_path.write_text(
            "global:\n"
            "  scrape_interval: 1s\n"
            "  scrape_timeout: 1s\n"
            "  evaluation_interval: 1s\n"
            "scrape_configs:\n"
            f"  - job_name: {JOB}\n"
            "    scrape_interval: 1s\n"
            "    scrape_timeout: 1s\n"
            "    static_configs:\n"
            f"      - targets: [{quoted}]\n")

    def start(self, timeout: float = 30.0) -> "Prometheus":
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.binary, f"--config.file={self.config_path}", f"--storage.tsdb.path={self.workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1h"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.workdir,
            preexec_fn=_die_with_parent)  # dies with the test runner, as the brokers do

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited with {self.proc.returncode}:\n{self.log_tail()}")
            status, _, body = http_get(self.port, "/-/ready", timeout=2)
            return status == 200, (status, body[:200])

        try:
            wait_for("prometheus /-/ready", ready, timeout, interval=0.3)
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- prometheus log ---\n{self.log_tail()}") from None
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self._log:
            self._log.close()
            self._log = None

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


def prom_query(prom: Prometheus, expr: str, timeout: float = 10.0) -> dict:
    """POST /api/v1/query (instant, now): Prometheus's JSON answer, errors included (never raises
    for a bad query: {"status": "error", "errorType": ..., "error": ...})."""
    conn = http.client.HTTPConnection("127.0.0.1", prom.port, timeout=timeout)
    try:
        conn.request("POST", "/api/v1/query", body=urlencode({"query": expr}),
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        res = conn.getresponse()
        body = res.read().decode()
    finally:
        conn.close()
    try:
        return json.loads(body)
    except ValueError:
        return {"status": "error", "errorType": f"http {res.status}", "error": body[:500]}


def result_series(answer: dict) -> list[tuple[dict, float]]:
    """A successful answer's series as (labels, value); a scalar is one series without labels."""
    data = answer["data"]
    kind, result = data["resultType"], data["result"]
    if kind == "vector":
        return [(s["metric"], float(s["value"][1])) for s in result]
    if kind == "matrix":
        return [(s["metric"], float(s["values"][-1][1])) for s in result if s["values"]]
    if kind == "scalar":
        return [({}, float(result[1]))]
    return [({}, 0.0)] if result else []  # string


def prom_series(prom: Prometheus, expr: str) -> list[tuple[dict, float]]:
    answer = prom_query(prom, expr)
    assert answer.get("status") == "success", f"{expr}: {answer}"
    return result_series(answer)


def prom_value(prom: Prometheus, expr: str) -> float | None:
    """The value of an expression with at most one series (None for none)."""
    series = prom_series(prom, expr)
    assert len(series) <= 1, f"{expr}: {len(series)} series, expected one: {series}"
    return series[0][1] if series else None


def prom_by(prom: Prometheus, expr: str, label: str) -> dict[str, float]:
    return {labels.get(label, ""): value for labels, value in prom_series(prom, expr)}
