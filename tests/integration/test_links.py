"""Links people click (UI artifacts, messages) open in a browser: S3 objects are presigned."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from driftloop.tasks.adapters import storage


def test_an_s3_report_link_opens_as_html(s3_bucket: str, s3_server: str) -> None:
    report = f"{s3_bucket}/loans/reports/drift/loan-default-2026-11-05.html"
    storage.write_text(report, "<html><body><h1>Drift</h1><td>income</td><td>age</td></body>")
    link = storage.browser_link(report)
    assert link.startswith(s3_server + "/"), link
    assert "Expires=" in link or "X-Amz-Expires=604800" in link, "it says how long it opens"
    with urllib.request.urlopen(link, timeout=10) as resp:
        body = resp.read().decode()
        content_type = resp.headers["Content-Type"]
    assert "<td>income</td>" in body and "<td>age</td>" in body, "the report itself"
    assert content_type.startswith("text/html"), "rendered, not downloaded"


def test_a_local_report_link_is_a_file_url(tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    report.write_text("<html></html>")
    assert storage.browser_link(str(report)) == report.absolute().as_uri()
    assert storage.browser_link("https://example.org/x") == "https://example.org/x"


def test_the_stack_serves_a_local_lakes_reports_read_only_over_http(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """What `make up` does for a local lake: its reports/ folder on 127.0.0.1, and the flows'
    links pointing there instead of at file:// paths the Prefect UI cannot open."""
    from driftloop.deployments.stack import Stack, StackConfig, free_port

    lake = tmp_path / "lake"
    config = StackConfig(
        home=tmp_path / "stack", reports_port=free_port(), overrides={"storage.root": str(lake)}
    )
    stack = Stack(config)
    raw = lake / "raw" / "loans" / "2026-11-05.csv"
    raw.parent.mkdir(parents=True)
    raw.write_text("id,income\n1,100\n")
    try:
        stack.start_reports()
        for name, value in stack.reports_env().items():
            monkeypatch.setenv(name, value)
        report = lake / "reports" / "drift" / "loan default-2026-11-05.html"
        storage.write_text(str(report), "<html><body><td>income</td><td>age</td></body></html>")
        link = storage.browser_link(str(report))
        assert link == f"{config.reports_url}/drift/loan%20default-2026-11-05.html"
        with urllib.request.urlopen(link, timeout=10) as resp:
            body = resp.read().decode()
            content_type = resp.headers["Content-Type"]
        assert "<td>income</td><td>age</td>" in body and content_type.startswith("text/html")
        assert storage.browser_link(str(raw)) == raw.absolute().as_uri(), "only reports/ is served"
        with pytest.raises(urllib.error.HTTPError) as outside:
            urllib.request.urlopen(f"{config.reports_url}/../raw/loans/2026-11-05.csv", timeout=10)
        assert outside.value.code == 404, "nothing outside reports/ is reachable"
        with pytest.raises(urllib.error.HTTPError) as written:
            urllib.request.urlopen(urllib.request.Request(link, data=b"x", method="PUT"))
        assert written.value.code == 501, "read-only"
        assert stack.status()["reports"].endswith(f"healthy, {config.reports_url}")
    finally:
        stack.down()
    assert not stack.reports_healthy(), "`make down` stops it"
