"""check_drift: the champion's training snapshot vs recently scored inputs -> retrain or not."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from prefect import flow
from pydantic import Field

from driftloop.configs.settings import load_settings
from driftloop.flows.params import run_name, yesterday
from driftloop.flows.train import train
from driftloop.tasks import steps
from driftloop.tasks.oncall import on_failure_hook
from driftloop.tasks.results import DriftSummary
from driftloop.tasks.storage import Lake


@flow(
    name="check_drift",
    flow_run_name=run_name("check_drift", "window_end"),
    log_prints=True,
    on_failure=[on_failure_hook],
    on_crashed=[on_failure_hook],
)
def check_drift(
    window_end: date | None = None,
    window_days: Annotated[int | None, Field(ge=1)] = None,
    retrain: bool | None = None,
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> DriftSummary:
    """Compare the last `window_days` of scored inputs with the champion's reference.

    When drift is found, emit the drift event; with `retrain` (default: the config's
    `drift.retrain_inline`) also train on that window right here.

    Args:
        window_end: last scored day of the window (YYYY-MM-DD; empty: yesterday, UTC).
        window_days: days in the window (empty: drift.window_days from the config).
        retrain: also train here when drift is found (empty: drift.retrain_inline; on a
            server the `train` deployment's trigger on the drift event retrains instead).
        profile: config profile, configs/<profile>.yaml over base.yaml (empty: the
            worker's $DRIFTLOOP_PROFILE, else local).
        overrides: dotted config keys for this run only, validated like the YAML, e.g.
            {"gate.metrics.roc_auc.threshold": 0.7}.
    """
    window_end = window_end or yesterday()
    settings = load_settings(profile, overrides)
    lake = Lake(settings.storage.root, settings.dataset.name)
    model_name = settings.registry.model_name
    days = window_days or settings.drift.window_days
    window_start = window_end - timedelta(days=days - 1)
    window = f"{window_start}..{window_end}"
    champion = steps.require_champion(settings)
    reference = steps.read_frame(champion.tag("reference_uri"))
    current = steps.read_window(
        [lake.predictions(model_name, d) for d in steps.days_in(window_start, window_end)]
    )
    measurement = steps.measure(reference, current, settings)
    decision = steps.decide(measurement, settings)
    report_uri = steps.write_text(
        lake.report("drift", f"{model_name}-{window_end}.html"), measurement.html
    )
    steps.publish_drift(decision, measurement.columns, report_uri, model_name)
    summary = DriftSummary(
        window=window,
        drifted=decision.drifted,
        share=decision.share,
        drifted_columns=decision.drifted_columns,
        reason=decision.reason,
        baseline_version=champion.version,
        report_uri=report_uri,
    )
    if decision.drifted:
        steps.announce_drift(
            settings.drift.event,
            model_name,
            {
                "model": model_name,
                "window_start": str(window_start),
                "window_end": str(window_end),
                "report": report_uri,
                "drifted_columns": decision.drifted_columns,
                "baseline_version": champion.version,
            },
        )
        if settings.drift.retrain_inline if retrain is None else retrain:
            summary.retrain = train(
                window_start, window_end, f"drift:{report_uri}", profile, overrides
            )
    return summary


if __name__ == "__main__":
    import sys

    print(check_drift(date.fromisoformat(sys.argv[1])))
