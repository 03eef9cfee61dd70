"""Each failure kind on-call can be paged for, induced through the stack's deployments.

On the shared `ui_stack` (tests/conftest.py: a Prefect server, the deployments, the on-call
automations posting to a webhook receiver on 127.0.0.1, a process worker), runs are created
through the API as the UI's "Run" button creates them; each breaks in its own way on the
worker. Then, through the real webhook: each failed run is paged exactly once (the flow's own
hook and the server's `notify` automation both try), the message names the runbook entry of
its kind, the entry's heading is where the link lands, and the Prefect link is the run the
REST API knows. A run with bad parameters is refused when it is created and never paged.
Last, a real `process` run over a drifting week whose retrain the gate rejects pages
`retrains-keep-failing` once. Every run reads its own lake (`storage.root` in its overrides),
never the stack's.
"""

from __future__ import annotations

import json
import os
import re
import signal
import urllib.request
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import pytest

from driftloop.data.generate import generate_day
from driftloop.deployments.stack import Stack
from driftloop.tasks.adapters import storage

pytestmark = pytest.mark.e2e

MISSING, UNREADABLE, BROKEN, UNKNOWN_KEY = (date(2026, 9, d) for d in (1, 2, 3, 4))


async def _create(client: Any, name: str, parameters: dict[str, Any]) -> Any:
    deployment = await client.read_deployment_by_name(f"{name}/{name}")
    return await client.create_flow_run_from_deployment(deployment.id, parameters=parameters)


async def _read(client: Any, run_id: Any) -> Any:
    return await client.read_flow_run(run_id)


async def _notify_runs(client: Any) -> list[Any]:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    notify = await client.read_deployment_by_name("notify/notify")
    return await client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[notify.id]))
    )


def _rest(stack: Stack, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{stack.config.api_url}{path}", timeout=10) as resp:
        return json.loads(resp.read())


def _descendants(root: int) -> set[int]:
    """Every process whose parent chain reaches `root` (only processes this test started)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    for pid in parents:
        chain, seen = pid, set()
        while chain in parents and chain not in seen and chain != root:
            seen.add(chain)
            chain = parents[chain]
        if chain == root and pid != root:
            found.add(pid)
    return found


def _kill_run_process(stack: Stack, run_id: Any) -> list[int]:
    """SIGKILL the worker's processes running flow run `run_id`, as the OOM killer would."""
    worker = stack.worker.pid()
    assert worker is not None, "the stack's worker runs"
    marker = f"PREFECT__FLOW_RUN_ID={run_id}".encode()
    killed = []
    for pid in _descendants(worker):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    return killed


def test_each_failure_kind_pages_once_under_its_entry(
    ui_stack: Stack,
    ui_webhook: tuple[str, list[dict[str, Any]]],
    silent_mlflow: str,
    on_stack: Any,
    wait_for: Any,
    tmp_path: Path,
) -> None:
    from prefect.exceptions import PrefectHTTPStatusError

    _url, received = ui_webhook
    lake_root = str(tmp_path / "lake")
    own = {"storage.root": lake_root}
    hung = {**own, "tracking.uri": silent_mlflow}  # an MLflow that never answers
    lake = storage.Lake(lake_root, "loans")
    raw = Path(lake.raw(UNREADABLE))
    raw.parent.mkdir(parents=True)
    storage.write_frame(generate_day(UNREADABLE, 300), str(raw))
    raw.write_bytes(raw.read_bytes()[:-40])  # cut off: the parquet footer is gone
    storage.write_frame(generate_day(BROKEN, 300).assign(age=5), lake.raw(BROKEN))
    storage.write_frame(generate_day(UNKNOWN_KEY, 300), lake.raw(UNKNOWN_KEY))

    # Refused at creation: no run, so nothing to page.
    for name, parameters, named in (
        ("ingest", {"day": "2026-13-45", "overrides": own}, "2026-13-45"),
        ("train", {"window_start": "2026-09-01", "window_end": "soon"}, "soon"),
        ("ingest", {"day": str(MISSING), "profile": "staging"}, "staging"),
        ("ingest", {"day": str(MISSING), "overrides": "storage.root=/tmp"}, "storage.root=/tmp"),
    ):
        with pytest.raises(PrefectHTTPStatusError, match=re.escape(named)):
            on_stack(ui_stack, _create, name, parameters)

    expected = {  # kind -> the run that must page it
        "input-did-not-arrive": ("ingest", {"day": str(MISSING), "overrides": own}),
        "unreadable-input": ("ingest", {"day": str(UNREADABLE), "overrides": own}),
        "data-validation-failed": ("ingest", {"day": str(BROKEN), "overrides": own}),
        "window-not-curated": (
            "train",
            {"window_start": "2026-09-10", "window_end": "2026-09-12", "overrides": own},
        ),
        "bad-parameters": (  # passes the schema (free JSON), refused by the config's model
            "ingest",
            {"day": str(UNKNOWN_KEY), "overrides": {**own, "dataset.no_such_key": 1}},
        ),
        "timed-out": ("rollback", {"reason": "e2e: a hung rollback", "overrides": hung}),
        "crashed": ("check_drift", {"window_end": str(MISSING), "overrides": hung}),
    }
    runs = {
        kind: on_stack(ui_stack, _create, name, params).id
        for kind, (name, params) in expected.items()
    }
    raw_before = raw.read_bytes()

    # The crash: the check_drift run hangs on MLflow; its process is killed mid-run.
    crash = runs["crashed"]
    wait_for(
        lambda: on_stack(ui_stack, _read, crash).state.is_running(),
        180,
        interval=1,
        what="the check_drift run to be Running",
        detail=lambda: ui_stack.worker.tail(40),
    )
    assert wait_for(lambda: _kill_run_process(ui_stack, crash), 30, interval=1, what="its process")

    def states() -> dict[str, str]:
        return {k: on_stack(ui_stack, _read, i).state.name for k, i in runs.items()}

    wait_for(
        lambda: all(on_stack(ui_stack, _read, i).state.is_final() for i in runs.values()),
        240,
        interval=2,
        what="every induced run to end",
        detail=lambda: f"{states()}\nworker:\n{ui_stack.worker.tail(60)}",
    )
    ended = states()
    assert ended["timed-out"] == "TimedOut" and ended["crashed"] == "Crashed", ended
    assert {s for k, s in ended.items() if k not in ("timed-out", "crashed")} == {"Failed"}

    def pages_of(run_id: Any) -> list[dict[str, Any]]:
        return [m for m in received if m.get("driftloop", {}).get("flow_run_id") == str(run_id)]

    wait_for(
        lambda: all(pages_of(i) for i in runs.values()),
        180,
        interval=1,
        what="a page for every failed run",
        detail=lambda: (
            f"paged: {[k for k, i in runs.items() if pages_of(i)]}\n"
            f"worker:\n{ui_stack.worker.tail(80)}"
        ),
    )

    # Both senders tried for each run: wait for the automation's `notify` runs to end, so a
    # second page would have arrived by now.
    def notify_settled() -> bool:
        ours = [
            r
            for r in on_stack(ui_stack, _notify_runs)
            if any(str(i) in json.dumps(r.parameters, default=str) for i in runs.values())
        ]
        about = {i for i in runs.values() if any(str(i) in str(r.parameters) for r in ours)}
        return about == set(runs.values()) and all(r.state.is_final() for r in ours)

    wait_for(notify_settled, 180, interval=2, what="the notify runs of every failed run")

    runbook_text: dict[Path, str] = {}
    for kind, run_id in runs.items():
        mine = pages_of(run_id)
        assert len(mine) == 1, f"{kind}: paged {len(mine)} times"
        facts = mine[0]["driftloop"]
        assert facts["kind"] == kind, (kind, mine[0]["text"])
        assert facts["flow"] == expected[kind][0]
        link = urlsplit(facts["runbook"])
        assert link.scheme == "file" and link.fragment == kind, facts["runbook"]
        path = Path(url2pathname(link.path))
        text = runbook_text.setdefault(path, path.read_text(encoding="utf-8"))
        assert f'<a id="{kind}"></a>\n## ' in text, f"{kind}: the link lands on its heading"
        assert facts["prefect_url"] == f"{ui_stack.config.prefect_url}/runs/flow-run/{run_id}"
        known = _rest(ui_stack, f"/flow_runs/{run_id}")  # the run the link opens
        assert known["name"] == facts["flow_run_name"], (known["name"], facts)
        assert known["state"]["name"] == facts["state"] == ended[kind], (known["state"], facts)
        assert "no exception" not in mine[0]["text"]
    assert "dataset.no_such_key" in pages_of(runs["bad-parameters"])[0]["text"]
    assert "deliver a corrected file" in pages_of(runs["unreadable-input"])[0]["text"]
    assert raw.read_bytes() == raw_before, "raw input is never modified"
    refused = [m for m in received if "2026-13-45" in json.dumps(m) or "staging" in json.dumps(m)]
    assert not refused, "a run refused at creation is never paged"


async def _run_of(client: Any, name: str, overrides: dict[str, Any]) -> Any:
    return await _create(client, name, {"overrides": overrides})


@pytest.mark.serial  # a week of process runs with inline retrains: timed out beside `make test`
def test_retrains_that_keep_failing_the_gate_page_once(
    ui_stack: Stack,
    ui_webhook: tuple[str, list[dict[str, Any]]],
    on_stack: Any,
    wait_for: Any,
    tmp_path: Path,
) -> None:
    """A drift episode whose retrain the gate rejects: the next breaching check stops
    retraining and pages `retrains-keep-failing`, once, through a real `process` run."""
    from driftloop.tasks.adapters import day_states

    _url, received = ui_webhook
    lake_root = str(tmp_path / "lake")
    days = [date(2026, 8, 1) + timedelta(days=i) for i in range(7)]
    shift = days[3]
    lake = storage.Lake(lake_root, "loans")
    for day in days:
        frame = generate_day(day, 1000, scenario="covariate_shift", drift_start=shift, seed=5)
        storage.write_frame(frame, lake.raw(day))
    overrides = {
        "storage.root": lake_root,
        "tracking.uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "tracking.artifact_location": str(tmp_path / "mlartifacts"),
        "drift.retrain_inline": True,  # this run's checks retrain in place, on this lake
        # v1 has no champion to beat; every retrain must beat it by an impossible 0.5
        "gate.metrics.roc_auc.min_absolute_change": 0.5,
        "policy.consecutive_windows": 1,
        "policy.cooldown_days": 0,
        "policy.min_new_rows": 1000,
        "policy.max_rejected_in_episode": 1,
    }

    def last_day_checked() -> Any:
        state = day_states.read_states(lake).get(days[-1])
        return state is not None and "check" in state.stages

    runs = []
    while not last_day_checked():  # a scheduled `process` run may hold the turn: ask again
        assert len(runs) < 3, f"process runs {runs} left the days undone"
        runs.append(on_stack(ui_stack, _run_of, "process", overrides).id)
        wait_for(
            lambda: on_stack(ui_stack, _read, runs[-1]).state.is_final(),
            480,
            interval=2,
            what="the process run to end",
            detail=lambda: f"{day_states.read_states(lake)}\n{ui_stack.worker.tail(60)}",
        )

    def escalated() -> list[dict[str, Any]]:
        return [
            m
            for m in received
            if m.get("driftloop", {}).get("kind") == "retrains-keep-failing"
            and lake_root in json.dumps(m.get("driftloop", {}).get("parameters"))
        ]

    page = wait_for(
        escalated,
        120,
        interval=1,
        what="the retrains-keep-failing page",
        detail=lambda: f"{day_states.read_states(lake)}\n{[m['text'][:200] for m in received]}",
    )[0]
    facts = page["driftloop"]
    assert facts["flow"] == "check_drift" and facts["exception_type"] == "RetrainsKeepFailing"
    run_id = facts["flow_run_id"]

    def settled() -> bool:
        ours = [r for r in on_stack(ui_stack, _notify_runs) if run_id in str(r.parameters)]
        return bool(ours) and all(r.state.is_final() for r in ours)

    wait_for(settled, 120, interval=2, what="the notify run for the escalating check")
    assert len(escalated()) == 1, "paged once per episode, however many checks follow"
    link = urlsplit(facts["runbook"])
    text = Path(url2pathname(link.path)).read_text(encoding="utf-8")
    assert link.fragment == "retrains-keep-failing"
    assert '<a id="retrains-keep-failing"></a>\n## ' in text
    known = _rest(ui_stack, f"/flow_runs/{run_id}")
    assert known["name"] == facts["flow_run_name"] and known["state"]["type"] == "FAILED"
    assert "max_rejected_in_episode" in facts["exception_message"]
