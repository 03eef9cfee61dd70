"""The fault-injection suite's shared servers: one moto S3 server per session, reached through a
TCP proxy the tests can cut, and the session's Prefect test server (tests/conftest.py).

Every module here sets `pytestmark = pytest.mark.faults` (`make faults`; not in `make test`)."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import uuid
from collections.abc import Callable, Iterator

import pytest


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


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's S3 in server mode on 127.0.0.1, for the whole fault session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_proxy(moto_endpoint: str) -> Iterator[CutProxy]:
    """The proxy every driftloop S3 call goes through (AWS_ENDPOINT_URL_S3 points at it)."""
    from driftloop.tasks.adapters import storage

    host, port = moto_endpoint.removeprefix("http://").split(":")
    proxy = CutProxy((host, int(port)))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ENDPOINT_URL_S3", proxy.endpoint)
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            env.delenv(name, raising=False)
        storage.clear_client_cache()
        try:
            yield proxy
        finally:
            proxy.go_away()
            storage.clear_client_cache()


@pytest.fixture
def proxy(s3_proxy: CutProxy) -> Iterator[CutProxy]:
    """The session's proxy, up at the start of a test and again after it."""
    s3_proxy.restore()
    s3_proxy.cut_on(None)
    yield s3_proxy
    s3_proxy.cut_on(None)
    s3_proxy.restore()


@pytest.fixture
def bucket(s3_proxy: CutProxy, moto_endpoint: str) -> str:
    """A new bucket, named; created straight on moto (not through the proxy)."""
    import boto3

    name = f"faults-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_keys(moto_endpoint: str) -> Callable[[str, str], list[str]]:
    """`s3_keys(bucket, prefix)`: what a reader of the bucket sees, asked of moto directly
    (never through the proxy), so a partial object would show here."""
    import boto3

    client = boto3.client("s3", endpoint_url=moto_endpoint)

    def keys(bucket: str, prefix: str = "") -> list[str]:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    return keys
