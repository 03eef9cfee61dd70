"""ingest: a raw daily batch becomes curated parquet; bad rows go to quarantine with reasons."""

from __future__ import annotations

from datetime import date

from prefect import flow
from prefect.utilities.annotations import quote

from driftloop.configs.settings import load_settings
from driftloop.flows.params import Day, Overrides, Profile, flow_timeout
from driftloop.tasks import common
from driftloop.tasks import ingest as steps
from driftloop.tasks.adapters.oncall import on_failure_hook
from driftloop.tasks.adapters.storage import Lake
from driftloop.tasks.core.results import IngestSummary


@flow(
    name="ingest",
    timeout_seconds=flow_timeout("ingest"),
    flow_run_name="ingest-{day}",
    log_prints=True,
    on_failure=[on_failure_hook],
    on_crashed=[on_failure_hook],
)
def ingest(
    day: Day,
    source: str | None = None,
    profile: Profile | None = None,
    overrides: Overrides = None,
) -> IngestSummary:
    """Validate one day's raw batch against the data contract and store the valid rows.

    Rows whose time is not on `day` (dataset.event_time_tolerance_hours) or whose id was
    curated on an earlier day (dataset.id_lookback_days) are quarantined; a file identical to
    an earlier day's is refused.

    Args:
        day: the day of the raw batch (YYYY-MM-DD).
        source: a file or s3:// URI to read instead of the day's file under raw/ in the lake.
        profile: config profile, configs/PROFILE.yaml read over base.yaml, e.g. prod (empty:
            the worker's DRIFTLOOP_PROFILE, else local).
        overrides: dotted config keys for this run only, validated like the YAML, e.g.
            {"gate.metrics.roc_auc.threshold": 0.7}.
    """
    settings = load_settings(profile, overrides)
    lake = Lake(settings.storage.root, settings.dataset.name, settings.dataset.raw_pattern)
    received = steps.receive_batch(lake, day, settings.dataset, source)
    batch = steps.validate_batch(
        quote(received.raw),
        settings.dataset,
        source=received.uri,
        with_target=True,
        day=day,
        known_ids=quote(received.earlier.ids),
        digest=received.digest,
    )
    summary = steps.store_validated(
        quote(batch), lake, day, curated=True, input_digest=received.digest
    )
    common.enforce_contract(
        quote(batch), settings.dataset.name, summary.quarantine_uri, summary.data_docs_uri
    )
    return summary


if __name__ == "__main__":
    import sys

    print(ingest(date.fromisoformat(sys.argv[1])))
