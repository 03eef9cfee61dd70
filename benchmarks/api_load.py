"""Load test of the stack's servers: many lightweight API clients doing what flow runs do.

Why: past one machine, what limits driftloop is not the 2-core worker host but the shared
servers every flow run talks to. Fifty flow processes on this machine would measure its two
cores; fifty asyncio clients measure the Prefect server and the MLflow server (each on the
embedded PostgreSQL `make up` starts), with latency percentiles per server and the CPU each
server process (and PostgreSQL) used at each level, so the first part to saturate is named.

One client repeats a flow run's API script, taken from a `score` run of the loop:
- Prefect: create the flow run, Running, five task runs (each created Pending, then Running,
  then Completed), one artifact, one batch of log lines, Completed: 20 calls. Task runs go
  through the REST API, which writes them at once; the Prefect 3 client reports them as
  events the server writes in batches, so this is the heavier path (an upper bound).
- MLflow: the champion alias lookup and its run's metrics: 2 calls; every tenth script is a
  training run's (create run, log a batch of metrics and params, finish): 3 calls more.

    python benchmarks/api_load.py                      # 1, 5, 10, 25, 50 clients, 20 s each
    python benchmarks/api_load.py --clients 1 5 --seconds 5    # what the `load` test runs

The baseline is the same script with one client: the ratio column is each level's median
latency over it. Throughput is scripts (flow runs) per second.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

TASKS_PER_RUN = 5
TRAIN_EVERY = 10


@dataclass
class Level:
    """What one concurrency level measured."""

    clients: int
    seconds: float
    scripts: int = 0
    errors: list[str] = field(default_factory=list)
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    cpu: dict[str, float] = field(default_factory=dict)  # percent of one core
    runs: list[str] = field(default_factory=list)  # flow run ids created

    def percentile(self, server: str, q: float) -> float:
        values = sorted(self.latency[server])
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(q * len(values)))] * 1000

    @property
    def throughput(self) -> float:
        return self.scripts / self.seconds


class Script:
    """One flow run's calls against both servers."""

    def __init__(self, prefect: str, mlflow: str, flow_id: str, model: str, experiment: str):
        self.prefect, self.mlflow = prefect, mlflow
        self.flow_id, self.model, self.experiment = flow_id, model, experiment

    async def _call(
        self, level: Level, http: httpx.AsyncClient, server: str, method: str, url: str, **kw: Any
    ) -> Any:
        began = time.perf_counter()
        response = await http.request(method, url, **kw)
        level.latency[server].append(time.perf_counter() - began)
        if response.status_code >= 400:
            level.errors.append(f"{method} {url}: {response.status_code} {response.text[:200]}")
            return None
        return response.json() if response.content else None

    async def run(self, level: Level, http: httpx.AsyncClient, n: int) -> None:
        p, m = self.prefect, self.mlflow
        call = self._call
        run = await call(level, http, "prefect", "POST", f"{p}/flow_runs/", json={
            "flow_id": self.flow_id, "name": f"load-{uuid.uuid4().hex[:8]}",
            "state": {"type": "PENDING"}, "parameters": {"day": "2026-01-01"},
        })  # fmt: skip
        if run is None:
            return
        run_id = run["id"]
        await call(level, http, "prefect", "POST", f"{p}/flow_runs/{run_id}/set_state",
                   json={"state": {"type": "RUNNING"}})  # fmt: skip
        await call(level, http, "mlflow", "GET", f"{m}/registered-models/alias",
                   params={"name": self.model, "alias": "champion"})  # fmt: skip
        await call(level, http, "mlflow", "POST", f"{m}/runs/search",
                   json={"experiment_ids": [self.experiment], "max_results": 1})  # fmt: skip
        for t in range(TASKS_PER_RUN):
            task = await call(level, http, "prefect", "POST", f"{p}/task_runs/", json={
                "flow_run_id": run_id, "task_key": f"step-{t}", "dynamic_key": "0",
                "name": f"step-{t}", "state": {"type": "PENDING"},
            })  # fmt: skip
            if task is None:
                continue
            for state in ("RUNNING", "COMPLETED"):
                await call(level, http, "prefect", "POST", f"{p}/task_runs/{task['id']}/set_state",
                           json={"state": {"type": state}})  # fmt: skip
        await call(level, http, "prefect", "POST", f"{p}/artifacts/", json={
            "key": "load-summary", "type": "markdown", "data": "| rows | 2000 |",
            "flow_run_id": run_id,
        })  # fmt: skip
        now = datetime.now(UTC).isoformat()
        logs = [{"name": "load", "level": 20, "message": f"line {i}", "timestamp": now,
                 "flow_run_id": run_id} for i in range(5)]  # fmt: skip
        await call(level, http, "prefect", "POST", f"{p}/logs/", json=logs)
        if n % TRAIN_EVERY == 0:
            created = await call(level, http, "mlflow", "POST", f"{m}/runs/create",
                                 json={"experiment_id": self.experiment})  # fmt: skip
            if created:
                mlrun = created["run"]["info"]["run_id"]
                ts = int(time.time() * 1000)
                await call(level, http, "mlflow", "POST", f"{m}/runs/log-batch", json={
                    "run_id": mlrun,
                    "metrics": [{"key": f"m{i}", "value": 0.5, "timestamp": ts, "step": 0}
                                for i in range(8)],
                    "params": [{"key": f"p{i}", "value": "1"} for i in range(8)],
                })  # fmt: skip
                await call(level, http, "mlflow", "POST", f"{m}/runs/update",
                           json={"run_id": mlrun, "status": "FINISHED"})  # fmt: skip
        await call(level, http, "prefect", "POST", f"{p}/flow_runs/{run_id}/set_state",
                   json={"state": {"type": "COMPLETED"}})  # fmt: skip
        level.runs.append(run_id)
        level.scripts += 1


def _processes(stack: Any) -> dict[str, list[psutil.Process]]:
    """Each server's process tree (the embedded PostgreSQL forks a backend per connection)."""

    def tree(pid: int | None) -> list[psutil.Process]:
        if pid is None:
            return []
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]

    return {
        "prefect": tree(stack.prefect.pid()),
        "mlflow": tree(stack.mlflow.pid()),
        "postgres": tree(stack.postgres.pid()),
    }


def _cpu_seconds(procs: dict[str, list[psutil.Process]]) -> dict[str, float]:
    total: dict[str, float] = {}
    for name, members in procs.items():
        seconds = 0.0
        for proc in members:
            try:
                times = proc.cpu_times()
                seconds += times.user + times.system
            except psutil.NoSuchProcess:
                continue
        total[name] = seconds
    return total


async def _level(script: Script, stack: Any, clients: int, seconds: float) -> Level:
    level = Level(clients=clients, seconds=seconds)
    limits = httpx.Limits(max_connections=clients * 2, max_keepalive_connections=clients * 2)
    procs = _processes(stack)
    before = _cpu_seconds(procs)
    deadline = time.monotonic() + seconds

    async def client(http: httpx.AsyncClient) -> None:
        n = 0
        while time.monotonic() < deadline:
            n += 1
            try:
                await script.run(level, http, n)
            except httpx.HTTPError as err:
                level.errors.append(f"{type(err).__name__}: {err}")

    began = time.monotonic()
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    level.seconds = time.monotonic() - began
    procs = _processes(stack)  # PostgreSQL backends come and go; count the ones alive now too
    after = _cpu_seconds(procs)
    level.cpu = {k: 100 * (after[k] - before.get(k, 0.0)) / level.seconds for k in after}
    return level


async def _prepare(prefect: str, mlflow: str) -> tuple[str, str, str]:
    async with httpx.AsyncClient(timeout=60) as http:
        flow = (await http.post(f"{prefect}/flows/", json={"name": "load-score"})).json()
        name = f"load-{uuid.uuid4().hex[:6]}"
        experiment = (await http.post(f"{mlflow}/experiments/create", json={"name": name})).json()[
            "experiment_id"
        ]
        run = (await http.post(f"{mlflow}/runs/create", json={"experiment_id": experiment})).json()[
            "run"
        ]["info"]["run_id"]
        source = {"name": name, "source": f"runs:/{run}/model", "run_id": run}
        for url, body in (
            ("registered-models/create", {"name": name}),
            ("model-versions/create", source),
            ("registered-models/alias", {"name": name, "alias": "champion", "version": "1"}),
        ):
            done = await http.post(f"{mlflow}/{url}", json=body)
            if done.status_code >= 400:
                raise RuntimeError(f"MLflow refused {url}: {done.status_code} {done.text[:300]}")
    return flow["id"], name, experiment


async def _final_states(prefect: str, run_ids: list[str]) -> dict[str, int]:
    """Every created run's state as the server now reports it (checked, not assumed)."""
    counts: dict[str, int] = defaultdict(int)
    async with httpx.AsyncClient(timeout=60) as http:
        for start in range(0, len(run_ids), 200):
            body = {"flow_runs": {"id": {"any_": run_ids[start : start + 200]}}, "limit": 200}
            for run in (await http.post(f"{prefect}/flow_runs/filter", json=body)).json():
                counts[run["state_type"]] += 1
    return dict(counts)


def measure(clients: list[int], seconds: float, home: Path) -> dict[str, Any]:
    """Start the default stack's two servers, run each level, stop them."""
    from driftloop.deployments.stack import Stack, StackConfig, free_port

    stack = Stack(StackConfig(home=home, prefect_port=free_port(), mlflow_port=free_port()))
    try:
        stack.start_prefect()
        stack.start_mlflow()
        prefect = stack.config.api_url
        mlflow = f"{stack.config.tracking_url}/api/2.0/mlflow"
        flow_id, model, experiment = asyncio.run(_prepare(prefect, mlflow))
        script = Script(prefect, mlflow, flow_id, model, experiment)
        asyncio.run(_level(script, stack, 1, min(seconds, 3)))  # warm both servers up
        levels = [asyncio.run(_level(script, stack, c, seconds)) for c in clients]
        created = [run for level in levels for run in level.runs]
        states = asyncio.run(_final_states(prefect, created))
    finally:
        stack.down()
    return {"levels": levels, "states": states, "created": len(created)}


def report(levels: list[Level]) -> list[str]:
    base = {s: statistics.median(levels[0].latency[s]) for s in ("prefect", "mlflow")}
    lines = [
        "clients  runs/s  prefect p50/p95/p99 ms   mlflow p50/p95/p99 ms   p50 x1  "
        "errors  CPU % of a core: prefect mlflow postgres"
    ]
    for lv in levels:
        ratio = statistics.median(lv.latency["prefect"]) / base["prefect"]
        lines.append(
            f"{lv.clients:7d} {lv.throughput:7.1f}  "
            f"{lv.percentile('prefect', 0.5):6.0f} {lv.percentile('prefect', 0.95):6.0f} "
            f"{lv.percentile('prefect', 0.99):6.0f}    "
            f"{lv.percentile('mlflow', 0.5):6.0f} {lv.percentile('mlflow', 0.95):6.0f} "
            f"{lv.percentile('mlflow', 0.99):6.0f}    {ratio:5.1f}x  {len(lv.errors):6d}  "
            f"{lv.cpu.get('prefect', 0):14.0f} {lv.cpu.get('mlflow', 0):6.0f} "
            f"{lv.cpu.get('postgres', 0):8.0f}"
        )
    top = levels[-1]
    busiest = max(top.cpu, key=lambda k: top.cpu[k])
    knee = next(
        (b for a, b in itertools.pairwise(levels) if b.throughput < 1.1 * a.throughput),
        None,
    )
    lines.append(
        f"first to saturate: {busiest} ({top.cpu[busiest]:.0f}% of a core at {top.clients} "
        "clients)"
        + (
            f"; throughput stops growing at {knee.clients} clients ({knee.throughput:.1f} runs/s)"
            if knee
            else "; throughput still growing at the top level"
        )
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 5, 10, 25, 50])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="driftloop-load-"))
    result = measure(args.clients, args.seconds, home)
    print(
        f"{len(args.clients)} levels x {args.seconds:.0f} s; one script = "
        f"{5 + 3 * TASKS_PER_RUN} Prefect calls + 2 MLflow (+3 every {TRAIN_EVERY}th)"
    )
    print("\n".join(report(result["levels"])))
    print(f"runs created: {result['created']}; their states on the server: {result['states']}")
    for level in result["levels"]:
        for error in level.errors[:3]:
            print(f"  error at {level.clients} clients: {error}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
