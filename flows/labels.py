"""labels: a file of delayed labels (id + target) becomes the day's labels the drift check
joins with predictions; bad rows go to quarantine with reasons; the file is never changed."""

from __future__ import annotations

from datetime import date

from prefect import flow

from driftloop.configs.settings import load_settings
from driftloop.flows.params import Day, Overrides, Profile, flow_timeout
from driftloop.tasks import common
from driftloop.tasks import labels as steps
from driftloop.tasks.adapters.oncall import on_failure_hook
from driftloop.tasks.adapters.storage import Lake
from driftloop.tasks.core.results import LabelsSummary


@flow(
    name="labels",
    flow_run_name="labels-{day}",
    timeout_seconds=flow_timeout("labels"),
    log_prints=True,
    on_failure=[on_failure_hook],
    on_crashed=[on_failure_hook],
)
def labels(
    day: Day,
    source: str,
    profile: Profile | None = None,
    overrides: Overrides = None,
) -> LabelsSummary:
    """Check a delayed-labels file with the data contract and store it for `day`.

    Args:
        day: the day whose predictions these labels belong to (YYYY-MM-DD).
        source: the labels file or s3:// URI (.csv or .parquet, compressed or not) with
            dataset.id_column and dataset.target; other columns are ignored.
        profile: config profile, configs/PROFILE.yaml read over base.yaml, e.g. prod (empty:
            the worker's DRIFTLOOP_PROFILE, else local).
        overrides: dotted config keys for this run only, validated like the YAML, e.g.
            {"dataset.max_quarantine_fraction": 0.1}.
    """
    settings = load_settings(profile, overrides)
    lake = Lake(settings.storage.root, settings.dataset.name)
    digest = common.digest(source)
    raw = common.read_frame(source)
    batch = steps.validate_labels(raw, settings.dataset, source)
    summary = steps.store_labels(batch, lake, day, digest)
    common.enforce_contract(batch, settings.dataset.name, summary.quarantine_uri)
    return summary


if __name__ == "__main__":
    import sys

    print(labels(date.fromisoformat(sys.argv[1]), sys.argv[2]))
