"""score: the champion scores a daily batch; every prediction says which model made it."""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow

from driftloop.configs.settings import load_settings
from driftloop.flows.params import run_name, yesterday
from driftloop.tasks import steps
from driftloop.tasks.oncall import on_failure_hook
from driftloop.tasks.results import ScoreSummary
from driftloop.tasks.scoring import score_summary
from driftloop.tasks.storage import Lake


@flow(
    name="score",
    flow_run_name=run_name("score", "day"),
    log_prints=True,
    on_failure=[on_failure_hook],
    on_crashed=[on_failure_hook],
)
def score(
    day: date | None = None,
    source: str | None = None,
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
    dry_run: bool = False,
) -> ScoreSummary:
    """Validate inputs with the contract (minus the target), predict, write predictions.

    Args:
        day: the day of the batch to score (YYYY-MM-DD; empty: yesterday, UTC).
        source: a file or s3:// URI to score instead of the day's file under raw/ in the lake.
        profile: config profile, configs/<profile>.yaml over base.yaml (empty: the
            worker's $DRIFTLOOP_PROFILE, else local).
        overrides: dotted config keys for this run only, validated like the YAML, e.g.
            {"gate.metrics.roc_auc.threshold": 0.7}.
        dry_run: validate and predict, but write no predictions (quarantine is still kept).
    """
    day = day or yesterday()
    settings = load_settings(profile, overrides)
    lake = Lake(settings.storage.root, settings.dataset.name)
    model_name = settings.registry.model_name
    champion = steps.require_champion(settings)
    uri = source or steps.locate_raw(settings.storage.root, settings.dataset.name, day)
    raw = steps.read_frame(uri)
    batch = steps.validate_batch(raw, settings.dataset, source=uri, with_target=False)
    stored = steps.store_validated(batch, lake, day, curated=False)
    steps.publish_validation(
        batch, settings.dataset.name, stored.quarantine_uri, stored.data_docs_uri
    )
    steps.enforce_contract(batch)
    predictions = steps.predict(champion, batch.valid, settings, uri, steps.digest(uri))
    output_uri = (
        "(dry run: not written)"
        if dry_run
        else steps.write_predictions(predictions, lake.predictions(model_name, day))
    )
    stats = score_summary(predictions)
    summary = ScoreSummary(
        day=day,
        source=uri,
        output_uri=output_uri,
        model_version=champion.version,
        rows=int(stats["rows"]),
        rows_quarantined=stored.rows_quarantined,
        positive_rate=stats["positive_rate"],
    )
    steps.publish_scoring(model_name, summary_markdown(summary))
    return summary


def summary_markdown(summary: ScoreSummary) -> str:
    return (
        f"## Scoring {summary.day}\n\n| field | value |\n|---|---|\n"
        f"| model version | {summary.model_version} |\n| rows scored | {summary.rows} |\n"
        f"| rows quarantined | {summary.rows_quarantined} |\n"
        f"| predicted positive rate | {summary.positive_rate:.3f} |\n"
        f"| input | `{summary.source}` |\n| output | `{summary.output_uri}` |\n"
    )


if __name__ == "__main__":
    import sys

    print(score(date.fromisoformat(sys.argv[1])))
