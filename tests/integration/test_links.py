"""Links people click (UI artifacts, messages) open in a browser: S3 objects are presigned."""

from __future__ import annotations

import urllib.request
from pathlib import Path

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
