"""Network namespaces for cutting a node off the network (root only; iproute2).

Each node is a host of its own: a network namespace with one interface, 10.<a>.<b>.<n>/24, joined to
the others by a bridge in the test's own namespace, which holds 10.<a>.<b>.1, so the test process
(its clients) reaches every node and every node reaches the others, as on a LAN. cut(n) takes node
n's link down: it can reach nobody and nobody can reach it, while its process runs on (unlike SIGSTOP).
heal(n) brings the link back.

    with NetLab() as lab:
        ip = lab.add_host(2)                       # "10.x.y.2"
        cmd = lab.exec_prefix(2) + ["sluice", ...]  # run inside node 2's namespace
        lab.cut(2); lab.heal(2)

Names carry a per-lab tag so that labs of concurrent runs do not collide; close() removes everything.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import threading

_counter = 0
_lock = threading.Lock()


def available() -> bool:
    """Whether this process may make namespaces (root, with iproute2)."""
    return os.geteuid() == 0 and shutil.which("ip") is not None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


class NetLab:
    def __init__(self):
        global _counter
        with _lock:
            _counter += 1
            serial = _counter
        # A subnet and names unique to this process and lab: 10.<a>.<b>.0/24.
        n = (os.getpid() * 8 + serial) % (200 * 250)
        self.subnet = f"10.{30 + n // 250}.{n % 250}"
        self.tag = f"{n:05d}"
        self.bridge = f"slb{self.tag}"
        self.hosts: dict[int, str] = {}
        _ip("link", "add", self.bridge, "type", "bridge")
        try:
            _ip("addr", "add", f"{self.subnet}.1/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
        except Exception:
            self.close()
            raise

    def _ns(self, node: int) -> str:
        return f"sln{self.tag}_{node}"

    def _veth(self, node: int) -> str:
        return f"slv{self.tag}_{node}"

    def add_host(self, node: int) -> str:
        """A namespace for `node` (2..254) on the bridge; returns its address."""
        assert 2 <= node <= 254 and node not in self.hosts
        ns, veth, ip = self._ns(node), self._veth(node), f"{self.subnet}.{node}"
        _ip("netns", "add", ns)
        self.hosts[node] = ip
        _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _ip("link", "set", veth, "master", self.bridge)
        _ip("link", "set", veth, "up")
        _ip("-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        return ip

    def exec_prefix(self, node: int) -> list[str]:
        """Put before a command to run it inside `node`'s namespace (ip execs it: same pid)."""
        return ["ip", "netns", "exec", self._ns(node)]

    def cut(self, node: int) -> None:
        _ip("link", "set", self._veth(node), "down")

    def heal(self, node: int) -> None:
        _ip("link", "set", self._veth(node), "up")

    def block(self, node: int, peer: int) -> None:
        """`node` can no longer reach `peer` (a route to nowhere in its namespace); it still
        reaches every other node, and they reach it."""
        _ip("-n", self._ns(node), "route", "add", "blackhole", f"{self.hosts[peer]}/32")

    def unblock(self, node: int, peer: int) -> None:
        _ip("-n", self._ns(node), "route", "del", "blackhole", f"{self.hosts[peer]}/32")

    def close(self) -> None:
        for node in list(self.hosts):
            subprocess.run(["ip", "netns", "del", self._ns(node)], capture_output=True, timeout=10)
            subprocess.run(["ip", "link", "del", self._veth(node)], capture_output=True, timeout=10)
        self.hosts.clear()
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, timeout=10)

    def __enter__(self) -> "NetLab":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
