"""The fault-injection suite's shared servers: one moto S3 server per session, reached through a
TCP proxy the tests can cut, and the session's Prefect test server (tests/conftest.py).

Every module here sets `pytestmark = pytest.mark.faults` (`make faults`; not in `make test`)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from conftest_proxy import CutProxy


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
