"""The capacity model's measured inputs: API calls and S3 requests a day of the loop costs.

Why: docs/capacity.md sizes servers for many models and many rows from per-run costs; those
costs are counted here, not guessed. One `process` run works through N days of generated loan
data (ingest, score, drift check per day; v1 trained on the first days) with every part
remote, as in production: Prefect on the local server (embedded PostgreSQL), MLflow as a server,
the lake on S3 (moto's server on 127.0.0.1). Counted in the flow process:
- Prefect REST calls (httpx requests to the API) by route, and events sent (task-run states
  travel as events in Prefect 3);
- MLflow REST calls (requests to the tracking server) by route;
- S3 requests (botocore) by operation.

    python benchmarks/capacity.py --days 6

The first `bootstrap_days` days carry v1's training; the per-day figures are the later days'.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

START = date(2025, 1, 1)
_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}")


def _route(path: str) -> str:
    return _ID.sub("{id}", path.split("?", 1)[0])


def _count(home: Path, days: int, endpoint: str, bucket: str) -> dict[str, Any]:
    """One backfill in this process, every request counted; returns the counts."""
    import httpx
    import requests
    from botocore.session import Session as BotoSession

    counts: dict[str, Counter[str]] = {"prefect": Counter(), "mlflow": Counter(), "s3": Counter()}
    marks: list[dict[str, int]] = []
    sync_send, async_send = httpx.Client.send, httpx.AsyncClient.send

    def count_httpx(request: httpx.Request) -> None:
        if "/api/" in request.url.path:
            route = request.url.path.split("/api/", 1)[1]
            counts["prefect"][f"{request.method} {_route(route)}"] += 1

    def send(self: httpx.Client, request: httpx.Request, **kw: Any) -> Any:
        count_httpx(request)
        return sync_send(self, request, **kw)

    async def asend(self: httpx.AsyncClient, request: httpx.Request, **kw: Any) -> Any:
        count_httpx(request)
        return await async_send(self, request, **kw)

    httpx.Client.send, httpx.AsyncClient.send = send, asend  # type: ignore[method-assign]
    requests_send = requests.Session.send

    def rsend(self: requests.Session, request: Any, **kw: Any) -> Any:
        path = request.path_url.split("/api/2.0/mlflow/", 1)[-1]
        counts["mlflow"][f"{request.method} {_route(path)}"] += 1
        return requests_send(self, request, **kw)

    requests.Session.send = rsend  # type: ignore[method-assign]
    create_client = BotoSession.create_client

    def boto_client(self: BotoSession, *args: Any, **kw: Any) -> Any:
        client = create_client(self, *args, **kw)
        if client.meta.service_model.service_name == "s3":
            client.meta.events.register(
                "before-send.s3",
                lambda request, **_: (
                    counts["s3"].update([request.context.get("operation_name") or request.method])
                    if hasattr(request, "context")
                    else counts["s3"].update([request.method])
                ),
            )
        return client

    BotoSession.create_client = boto_client  # type: ignore[method-assign]

    from prefect.events.clients import PrefectEventsClient

    emit = PrefectEventsClient.emit

    async def count_emit(self: Any, event: Any) -> None:
        counts["prefect"]["events sent"] += 1
        await emit(self, event)

    PrefectEventsClient.emit = count_emit  # type: ignore[method-assign]

    from driftloop.deployments.stack import Stack, StackConfig, free_port, local_server

    config = StackConfig(home=home / "stack", prefect_port=free_port(), mlflow_port=free_port())
    os.environ["PREFECT_API_URL"] = local_server(config, idle_minutes=0)
    os.environ["PREFECT_HOME"] = str(config.home / "prefect")
    stack = Stack(config)
    stack.start_mlflow()
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    from driftloop.flows.cli import embedded_runs, quiet_environment
    from driftloop.flows.process import process

    quiet_environment()
    overrides = {
        "storage.root": f"s3://{bucket}/lake",
        "tracking.uri": config.tracking_url,
        "process.bootstrap_days": 2,
    }
    try:
        with embedded_runs():
            process(str(START), str(START + timedelta(days=1)), True, "local", overrides)
            APILogWorker.drain_all()
            EventsWorker.drain_all()
            marks.append({k: sum(v.values()) for k, v in counts.items()})
            before = {k: Counter(v) for k, v in counts.items()}
            summary = process(
                str(START + timedelta(days=2)),
                str(START + timedelta(days=days - 1)),
                True,
                "local",
                overrides,
            )
            APILogWorker.drain_all()
            EventsWorker.drain_all()
    finally:
        stack.down()
    later = {k: counts[k] - before[k] for k in counts}
    return {
        "days": days - 2,
        "failed": [str(d) for d in summary.failed_days],
        "later": {k: dict(v) for k, v in later.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=6, help="days in all (2 bootstrap + rest)")
    parser.add_argument("--rows", type=int, default=2000)
    args = parser.parse_args(argv)
    if args.days < 3:
        parser.error("--days must be at least 3 (two bootstrap days, then the counted ones)")
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto logs every request
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ.update(
        {
            "AWS_ENDPOINT_URL_S3": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    env = dict(os.environ)
    import boto3

    bucket = "driftloop-capacity"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    try:
        with tempfile.TemporaryDirectory(prefix="driftloop-capacity-") as tmp:
            from driftloop.data.generate import write_batches

            write_batches(f"s3://{bucket}/lake", "loans", START, args.days, args.rows,
                          scenario="none", labels=True)  # fmt: skip
            here = str(Path(__file__).parent)
            code = (
                f"import json, sys; from pathlib import Path; sys.path.insert(0, {here!r}); "
                f"import capacity; print(json.dumps(capacity._count(Path({tmp!r}), {args.days}, "
                f"{endpoint!r}, {bucket!r})))"
            )
            done = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
            )
            if done.returncode != 0:
                sys.stderr.write(done.stderr[-4000:])
                raise SystemExit(f"the counted run failed (exit {done.returncode})")
            result = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        moto.stop()
    n = result["days"]
    print(f"{n} days counted (after 2 bootstrap days), {args.rows} rows a day, stream scoring")
    if result["failed"]:
        print(f"  failed days: {result['failed']}")
    for part in ("prefect", "mlflow", "s3"):
        routes = result["later"][part]
        total = sum(routes.values())
        print(f"{part}: {total / n:.1f} per day (ingest + score + drift check: 3 flow runs)")
        for route, k in sorted(routes.items(), key=lambda kv: -kv[1])[:12]:
            print(f"    {k / n:7.1f}  {route}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
