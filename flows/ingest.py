"""ingest: a raw daily batch becomes curated parquet; bad rows go to quarantine with reasons."""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow

from driftloop.configs.settings import load_settings
from driftloop.flows.params import Day
from driftloop.tasks import common
from driftloop.tasks import ingest as steps
from driftloop.tasks.adapters.oncall import on_failure_hook
from driftloop.tasks.adapters.storage import Lake
from driftloop.tasks.core.results import IngestSummary


@flow(
    name="ingest",
    flow_run_name="ingest-{day}",
    log_prints=True,
    on_failure=[on_failure_hook],
    on_crashed=[on_failure_hook],
)
def ingest(
    day: Day,
    source: str | None = None,
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> IngestSummary:
    """Validate one day's raw batch against the data contract and store the valid rows.

    Rows whose time is not on `day` (dataset.event_time_tolerance_hours) or whose id was
    curated on an earlier day (dataset.id_lookback_days) are quarantined; a file identical to
    an earlier day's is refused.

    Args:
        day: the day of the raw batch (YYYY-MM-DD).
        source: a file or s3:// URI to read instead of the day's file under raw/ in the lake.
        profile: config profile, configs/<profile>.yaml over base.yaml (empty: the
            worker's $DRIFTLOOP_PROFILE, else local).
        overrides: dotted config keys for this run only, validated like the YAML, e.g.
            {"gate.metrics.roc_auc.threshold": 0.7}.
    """
    settings = load_settings(profile, overrides)
    lake = Lake(settings.storage.root, settings.dataset.name, settings.dataset.raw_pattern)
    uri = source or common.locate_raw(
        settings.storage.root, settings.dataset.name, day, settings.dataset.raw_pattern
    )
    digest = common.digest(uri)
    earlier = steps.recall_earlier_days(lake, day, settings.dataset)
    steps.refuse_repeated_batch(uri, digest, earlier, lake, day)
    raw = common.read_frame(uri)
    batch = steps.validate_batch(
        raw,
        settings.dataset,
        source=uri,
        with_target=True,
        day=day,
        known_ids=earlier.ids,
        digest=digest,
    )
    summary = steps.store_validated(batch, lake, day, curated=True, input_digest=digest)
    common.publish_validation(
        batch, settings.dataset.name, summary.quarantine_uri, summary.data_docs_uri
    )
    common.enforce_contract(batch)
    return summary


if __name__ == "__main__":
    import sys

    print(ingest(date.fromisoformat(sys.argv[1])))
