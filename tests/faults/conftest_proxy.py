"""A TCP proxy the fault tests cut to make a real server go away mid-request."""

from __future__ import annotations

import contextlib
import re
import socket
import threading


class CutProxy:
    """A TCP proxy on 127.0.0.1 in front of a real server, which a test can make go away.

    `cut_on(marker)`: the next request whose first bytes contain `marker` (e.g.
    b"PUT /bucket/lake/curated/") is forwarded only up to half of its body, then both
    connections are dropped and the proxy stops listening: the endpoint is gone mid-write, and
    every later request is refused, as when an S3 endpoint or its network fails.
    `restore()` listens on the same port again."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = 0
        self._marker: bytes | None = None
        self.cut_requests: list[bytes] = []
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()
        self.restore()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def restore(self) -> None:
        with self._lock:
            if self._listener is not None:
                return
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(64)
            self.port = listener.getsockname()[1]
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def go_away(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()

    def cut_on(self, marker: bytes | None) -> None:
        self._marker = marker

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                gone = self._listener is not listener
            if gone:
                client.close()
                return
            server = socket.create_connection(self.upstream)
            threading.Thread(target=self._pump_up, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _pump_up(self, client: socket.socket, server: socket.socket) -> None:
        """Client to server; cuts the connection half-way through a marked request's body."""
        budget: int | None = None
        try:
            while data := client.recv(65536):
                marker = self._marker
                if budget is None and marker is not None and marker in data:
                    self._marker = None
                    head_end = data.find(b"\r\n\r\n") + 4
                    length = re.search(rb"(?i)content-length:\s*(\d+)", data[:head_end])
                    body = int(length.group(1)) if length else 0
                    budget = head_end + body // 2
                    self.cut_requests.append(data[: data.find(b"\r\n")])
                if budget is not None:
                    if len(data) >= budget:
                        server.sendall(data[:budget])
                        self.go_away()
                        break
                    budget -= len(data)
                server.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (client, server):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
