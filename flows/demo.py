"""The whole loop on embedded defaults, in one process, told as a timeline.

One process means Prefect's temporary local server starts once for all the flows below. The
demo keeps its state under `data/demo/` (lake + MLflow store) and starts it afresh each time,
so it always tells the same story: v1 becomes champion, drift arrives, v2 is judged.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from driftloop.configs.settings import PROJECT_ROOT, load_settings
from driftloop.data.generate import generate_day, labels_of
from driftloop.flows.check_drift import check_drift
from driftloop.flows.ingest import ingest
from driftloop.flows.score import score
from driftloop.flows.train import train
from driftloop.tasks.adapters import registry, storage
from driftloop.tasks.core.results import DriftSummary, TrainSummary

DEMO_HOME = PROJECT_ROOT / "data" / "demo"


def demo_overrides(home: Path) -> dict[str, Any]:
    return {
        "storage.root": str(home / "lake"),
        "tracking.uri": f"sqlite:///{home / 'mlflow.db'}",
        "tracking.artifact_location": str(home / "mlartifacts"),
    }


@dataclass(frozen=True)
class DemoPlan:
    """The story: a training window, quiet days, one messy day, then a shift."""

    start: date = date(2026, 11, 1)
    train_days: int = 3
    quiet_days: int = 4
    drift_days: int = 3
    rows_per_day: int = 2000
    scenario: str = "covariate_shift"
    corrupt_day_offset: int | None = 4
    seed: int = 0

    @property
    def days(self) -> list[date]:
        total = self.train_days + self.quiet_days + self.drift_days
        return [self.start + timedelta(days=i) for i in range(total)]

    @property
    def drift_start(self) -> date:
        return self.start + timedelta(days=self.train_days + self.quiet_days)


@dataclass
class Timeline:
    lines: list[str] = field(default_factory=list)
    trainings: list[TrainSummary] = field(default_factory=list)
    drift_checks: list[DriftSummary] = field(default_factory=list)
    metric: str = "roc_auc"  # the primary metric each training line shows

    def add(self, when: str, what: str, detail: str) -> None:
        line = f"  {when:<22} {what:<12} {detail}"
        self.lines.append(line)
        print(line, flush=True)

    def train(self, when: str, summary: TrainSummary) -> None:
        self.trainings.append(summary)
        value = summary.metrics.get(self.metric, float("nan"))
        self.add(
            when,
            "train",
            f"v{summary.version} -> {summary.alias} ({self.metric} {value:.3f}); "
            f"{summary.gate_reason}",
        )


def write_demo_data(plan: DemoPlan, lake: storage.Lake) -> None:
    """Raw daily batches; the scenario starts at the plan's drift day."""
    for offset, day in enumerate(plan.days):
        scenario = plan.scenario if day >= plan.drift_start else "none"
        if offset == plan.corrupt_day_offset:
            scenario = "corrupt"
        frame = generate_day(
            day, plan.rows_per_day, scenario=scenario, drift_start=day, seed=plan.seed
        )
        storage.write_frame(frame, lake.raw(day))
        # The outcomes arrive as their own feed (delayed labels), joined by id at drift checks.
        storage.write_frame(labels_of(frame), lake.labels(day))


def run_demo(plan: DemoPlan | None = None, home: Path = DEMO_HOME) -> Timeline:
    """Run the loop and return its timeline (also printed as it happens)."""
    plan = plan or DemoPlan()
    if home.exists():
        shutil.rmtree(home)
    overrides = demo_overrides(home)
    settings = load_settings("local", overrides)
    lake = storage.Lake(settings.storage.root, settings.dataset.name)
    timeline = Timeline()
    print(
        f"driftloop demo: {settings.dataset.name}, {plan.rows_per_day} rows/day, "
        f"'{plan.scenario}' from {plan.drift_start}; state in {home}",
        flush=True,
    )
    write_demo_data(plan, lake)
    timeline.add(
        f"{plan.days[0]}..{plan.days[-1]}",
        "generate",
        f"{len(plan.days)} raw daily batches in {lake.raw(plan.days[0]).rsplit('/', 1)[0]}",
    )
    run = {"profile": "local", "overrides": overrides}
    train_days = plan.days[: plan.train_days]
    for day in train_days:
        got = ingest(day, **run)
        detail = f"{got.rows_valid} valid, {got.rows_quarantined} quarantined"
        timeline.add(str(day), "ingest", detail)
    timeline.train(
        f"{train_days[0]}..{train_days[-1]}", train(train_days[0], train_days[-1], **run)
    )
    # Two checks in a row see the shift: the policy wants consecutive breaching windows.
    check_days = {plan.drift_start - timedelta(days=1), plan.days[-2], plan.days[-1]}
    for day in plan.days[plan.train_days :]:
        got = ingest(day, **run)
        scored = score(day, **run)
        quarantine = f", quarantine: {got.quarantine_uri}" if got.quarantine_uri else ""
        timeline.add(
            str(day),
            "ingest+score",
            f"{got.rows_valid} valid / {got.rows_quarantined} quarantined; champion "
            f"v{scored.model_version} scored {scored.rows} rows "
            f"({scored.predictions_text()}){quarantine}",
        )
        if day in check_days:
            checked = check_drift(day, **run)
            timeline.drift_checks.append(checked)
            verdict = "DRIFT" if checked.drifted else "no drift"
            breached = [name for name, hit in checked.signals.items() if hit]
            timeline.add(
                checked.window,
                "check_drift",
                f"{verdict} vs baseline v{checked.baseline_version} "
                f"(share {checked.share:.2f}{': ' if checked.drifted_columns else ''}"
                f"{', '.join(checked.drifted_columns)}); signals: {', '.join(breached) or 'none'}; "
                f"policy: {checked.rule}; report: {checked.report_uri or 'none (quiet window)'}",
            )
            if checked.retrain is not None:
                timeline.train(checked.retrain.window, checked.retrain)
    print_versions(settings)
    print_next_steps(home)
    return timeline


#: `driftloop demo --dataset NAME`: the task-type examples built from scikit-learn's datasets.
SKLEARN_DEMOS = ("breast_cancer", "wine", "diabetes")


def run_sklearn_demo(
    name: str, rows_per_day: int = 2000, home: Path = DEMO_HOME, start: date = date(2026, 11, 1)
) -> Timeline:
    """The loop on a scikit-learn dataset (`data/sklearn_datasets.py`) of any task type.

    Three clean days train v1; days 4-6 are drifted, scored and labelled; checks on days 5
    and 6 (two-day windows) see the drift twice in a row, so the policy retrains on days 1-6
    and the gate judges the candidate against v1 on day 6.
    """
    from driftloop.data.sklearn_datasets import write_days, write_labels

    if home.exists():
        shutil.rmtree(home)
    overrides = {**demo_overrides(home), "dataset_config": name}
    settings = load_settings("local", overrides)
    days = [start + timedelta(days=i) for i in range(6)]
    timeline = Timeline(metric=settings.gate.primary_metric)
    print(
        f"driftloop demo: {name} ({settings.dataset.task}), {rows_per_day} rows/day, drift "
        f"from {days[3]}; state in {home}",
        flush=True,
    )
    write_days(settings.storage.root, name, start, len(days), rows_per_day, drift_from=3)
    run = {"profile": "local", "overrides": overrides}
    for day in days[:3]:
        got = ingest(day, **run)
        timeline.add(str(day), "ingest", f"{got.rows_valid} valid")
    timeline.train(f"{days[0]}..{days[2]}", train(days[0], days[2], **run))
    for day in days[3:]:
        ingest(day, **run)
        scored = score(day, **run)
        write_labels(settings.storage.root, name, day)
        timeline.add(str(day), "ingest+score", f"champion v{scored.model_version}: "
                     f"{scored.rows} rows ({scored.predictions_text()}) -> "
                     f"{scored.output_uri}")  # fmt: skip
        if day >= days[4]:
            checked = check_drift(day, window_days=2, **run)
            timeline.drift_checks.append(checked)
            breached = [n for n, hit in checked.signals.items() if hit]
            timeline.add(
                checked.window,
                "check_drift",
                f"vs v{checked.baseline_version}: signals {', '.join(breached) or 'none'}; "
                f"policy: {checked.rule}",
            )
            if checked.retrain is not None:
                timeline.train(checked.retrain.window, checked.retrain)
    print_versions(settings)
    print_next_steps(home)
    return timeline


def print_versions(settings: Any) -> None:
    print("\nModel versions in the registry:")
    for row in registry.list_versions(settings.registry):
        tags = row["tags"]
        print(
            f"  v{row['version']:<3} aliases={','.join(row['aliases']) or '-':<11} "
            f"window={tags.get('driftloop.window', '?')} "
            f"trigger={tags.get('driftloop.trigger', '?').split(':', 1)[0]} "
            f"gate={tags.get('driftloop.gate_passed', '?')} run={row['run_id']}"
        )


def print_next_steps(home: Path) -> None:
    print(
        "\nLook closer:\n"
        f"  drift reports (HTML): {home / 'lake' / 'reports' / 'drift'}\n"
        f"  drift history + plot: {home / 'lake' / 'monitoring'} and reports/drift/*-history.png\n"
        f"  predictions:          {home / 'lake' / 'predictions'}\n"
        f"  quarantined rows:     {home / 'lake' / 'quarantine'}\n"
        "  Prefect UI (runs, artifacts): make prefect-ui   then open http://127.0.0.1:4200\n"
        "  MLflow UI (runs, registry):   make mlflow-ui    then open http://127.0.0.1:5000"
    )
