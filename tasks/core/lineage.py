"""Lineage: what every model version records about its data, code, config and evaluation.

The record is built here from plain values, so the MLflow run, the model card and the tests
read the same facts; reading files and git happens in the adapters.
"""

from __future__ import annotations

import hashlib
from typing import Any

from driftloop.configs.settings import Settings
from driftloop.tasks.core.gate import GateDecision, GateEvidence
from driftloop.tasks.core.results import TrainSummary
from driftloop.tasks.core.training import Split


def lineage_record(
    settings: Settings,
    *,
    window: str,
    trigger: str,
    sources: list[str],
    rows: int,
    source_digests: list[str],
    code_version: str,
    flow_run_id: str,
) -> dict[str, str]:
    """The tags every version carries: window, trigger, data digest and location, config
    digest, code version, the flow run that made it."""
    digest = hashlib.sha256()
    for part in source_digests:
        digest.update(part.encode())
    return {
        "window": window,
        "trigger": trigger,
        "data_digest": digest.hexdigest(),
        "data_location": ",".join(sources)[:5000],
        "validation": f"{rows} rows from {len(sources)} curated days (contract checked at "
        "ingest; rejected rows in quarantine)",
        "config_digest": settings.digest(),
        "code_version": code_version,
        "flow_run_id": flow_run_id,
    }


def tracking_record(
    settings: Settings, evidence: GateEvidence, split: Split, window: str
) -> tuple[dict[str, Any], dict[str, float]]:
    """(params, metrics) of a candidate's MLflow run: its metrics beside the champion's and
    the baseline's on the same rows, and one metric per slice."""
    metrics = dict(evidence.candidate)
    for prefix, values in (("champion_", evidence.champion), ("baseline_", evidence.baseline)):
        metrics.update({f"{prefix}{k}": v for k, v in (values or {}).items()})
    for score in evidence.slices:
        value = "".join(ch if ch.isalnum() or ch in "_-." else "_" for ch in score.value)
        metrics[f"slice_{score.column}_{value}_{score.metric}"] = score.candidate
    params: dict[str, Any] = {
        "estimator": settings.model.estimator,
        **{f"model.{k}": v for k, v in settings.model.params.items()},
        "window": window,
        "rows_train": len(split.x_train),
        "rows_test": len(split.x_test),
        "split": settings.split.strategy,
        "task": settings.dataset.task,
    }
    if evidence.classes:
        params["classes"] = ",".join(evidence.classes)
    return params, metrics


def model_card(
    summary: TrainSummary, decision: GateDecision, settings: Settings, lineage: dict[str, str]
) -> str:
    """The model card in markdown: data, model, metrics beside the champion's, slices, gate."""
    dataset = settings.dataset
    title = f"v{summary.version}" if summary.version else "(dry run: not registered)"
    lines = [
        f"# {settings.registry.model_name} {title}",
        "",
        f"**Alias:** `{summary.alias}` (champion before: {summary.champion_before or 'none'}, "
        f"after: {summary.champion_after or 'none'}). **Trigger:** {summary.trigger}.",
        "",
        "## Data",
        f"- window {summary.window}, {summary.rows} rows; {lineage['validation']}",
        f"- data digest `{lineage['data_digest'][:16]}`, location `{lineage['data_location']}`",
        f"- target `{dataset.target}`; features: {', '.join(dataset.feature_columns)}"
        + (
            f"; kept out of the model (validated, monitored): {', '.join(dataset.excluded_columns)}"
            if dataset.excluded_columns
            else ""
        ),
        f"- task: {_task_line(settings)}",
        *(
            [
                f"- **classes never seen in training** (in the evaluation rows): "
                f"{', '.join(repr(c) for c in decision.evidence.unseen_classes)}"
            ]
            if decision.evidence.unseen_classes
            else []
        ),
        "",
        "## Model",
        f"- `{settings.model.estimator}` with {settings.model.params}",
        f"- config digest `{lineage['config_digest']}`, code `{lineage['code_version'][:12]}`, "
        f"Prefect flow run `{lineage['flow_run_id']}`, MLflow run `{summary.run_id}`",
        "",
        f"## Metrics on the held-out rows (primary: {settings.gate.primary_metric})",
        "| metric | candidate | champion | baseline |",
        "|---|---|---|---|",
    ]
    ev = decision.evidence
    for metric, value in ev.candidate.items():
        champ = (ev.champion or {}).get(metric)
        base = (ev.baseline or {}).get(metric)
        lines.append(
            f"| {metric} | {value:.4f} | {'-' if champ is None else f'{champ:.4f}'} | "
            f"{'-' if base is None else f'{base:.4f}'} |"
        )
    if ev.slices:
        lines += ["", "## Slices", "| slice | rows | candidate | champion |", "|---|---|---|---|"]
        for sc in ev.slices:
            champ = "-" if sc.champion is None else f"{sc.champion:.4f}"
            lines.append(f"| {sc.column}={sc.value} | {sc.rows} | {sc.candidate:.4f} | {champ} |")
    lines += ["", "## Gate", decision.markdown()]
    return "\n".join(lines)


def _task_line(settings: Settings) -> str:
    """What the model predicts, in the words of the task type."""
    dataset = settings.dataset
    if dataset.task == "binary":
        return (
            f"binary: P({dataset.target} = {dataset.positive_label!r}), predicted positive at 0.5"
        )
    if dataset.task == "multiclass":
        return f"multiclass: the probability of each class of `{dataset.target}`"
    return f"regression: the value of `{dataset.target}`"
