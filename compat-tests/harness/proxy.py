"""A small TCP proxy on 127.0.0.1 that forwards to a broker and can cut every connection on demand,
to break clients' connections without touching the broker.

    px = Proxy(target_port)          # listens on 127.0.0.1:px.port at once
    broker = Broker(kind, port=target_port,
                    extra_config={"advertised.listeners": f"PLAINTEXT://127.0.0.1:{px.port}"})
    px.drop_all()                    # close every open client<->broker connection (RST to the client)
    px.close()

With record_requests=True it also keeps every request the clients sent, in px.requests.

The broker must advertise the proxy's address, or clients would go around it after bootstrap.
While the broker is down the proxy still accepts and then closes the client's connection at once.
Two daemon threads per connection; every blocking call has a timeout (select 0.2 s, send 5 s), so close() returns in bounded
time.
"""
from __future__ import annotations

import select
import socket
import struct
import threading


class Proxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1", connect_timeout: float = 2.0,
                 record_requests: bool = False):
        self.target = (target_host, target_port)
        # With record_requests, every request frame a client sends (without its length prefix).
        self.record_requests = record_requests
        self.requests: list[bytes] = []
        self.connect_timeout = connect_timeout
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind(("127.0.0.1", 0))
        self._lsock.listen(64)
        self._lsock.settimeout(0.2)
        self.port = self._lsock.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self._closed = threading.Event()
        self.accepted = 0
        self.dropped = 0
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"proxy-{self.port}", daemon=True)
        self._acceptor.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ public
    def drop_all(self) -> int:
        """Abort every open connection (both sides); returns how many were cut."""
        with self._lock:
            pairs = list(self._pairs)
            self._pairs.clear()
        for pair in pairs:
            for s in pair:
                _abort(s)
        self.dropped += len(pairs)
        return len(pairs)

    def close(self) -> None:
        self._closed.set()
        self._acceptor.join(2.0)
        self._lsock.close()
        self.drop_all()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ----------------------------------------------------------------- private
    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted += 1
            try:
                upstream = socket.create_connection(self.target, timeout=self.connect_timeout)
            except OSError:  # broker down: the client sees its connection closed
                _abort(client)
                continue
            for s in (client, upstream):
                s.settimeout(5.0)  # bounds sendall to a peer that stops reading
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = (client, upstream)
            with self._lock:
                self._pairs.add(pair)
            threading.Thread(target=self._pump, args=(pair, client, upstream, self.record_requests),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(pair, upstream, client, False), daemon=True).start()

    def _pump(self, pair, src: socket.socket, dst: socket.socket, record: bool) -> None:
        """Copy src -> dst until either side closes, the pair is dropped, or the proxy closes."""
        pending = b""
        try:
            while not self._closed.is_set():
                with self._lock:
                    if pair not in self._pairs:
                        return
                readable, _, _ = select.select([src], [], [], 0.2)
                if not readable:
                    continue
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
                if record:
                    pending += data
                    while len(pending) >= 4:
                        size = struct.unpack(">i", pending[:4])[0]
                        if size < 0:  # not Kafka framing: stop recording this connection
                            record = False
                            break
                        if len(pending) < 4 + size:
                            break
                        with self._lock:
                            self.requests.append(pending[4:4 + size])
                        pending = pending[4 + size:]
        except (OSError, ValueError):  # reset, timeout, or closed under us by drop_all()
            pass
        with self._lock:
            live = pair in self._pairs
            self._pairs.discard(pair)
        if live:
            for s in pair:
                _abort(s)


def _abort(s: socket.socket) -> None:
    """Close with RST (SO_LINGER 0), like a connection cut in the network."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass
