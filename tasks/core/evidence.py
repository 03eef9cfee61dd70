"""The gate's evidence: candidate, champion and baseline scored on the very same held-out rows.

One function for every caller (the `train` flow and the backtest), so what the gate judges
offline is what it judges in production.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from driftloop.configs.settings import ModelSettings, Settings
from driftloop.tasks.core.evaluation import paired_bootstrap, score_metrics, slice_scores
from driftloop.tasks.core.gate import GateEvidence, Override
from driftloop.tasks.core.training import Split, fit_pipeline

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline


def measure_evidence(
    candidate: Pipeline,
    champion: Pipeline | None,
    split: Split,
    settings: Settings,
    *,
    champion_version: str | None = None,
    override: Override | None = None,
    baseline: bool = True,
) -> GateEvidence:
    """Score the candidate (and the champion and the configured baseline, when there are
    any) on `split`'s test rows; `baseline=False` skips fitting the baseline model."""
    gate = settings.gate
    target_precision = gate.recall_at_precision
    y = split.y_test.to_numpy()
    p_candidate = candidate.predict_proba(split.x_test)[:, 1]
    p_champion = None if champion is None else champion.predict_proba(split.x_test)[:, 1]
    baseline_scores = None
    if baseline and gate.baseline is not None:
        model = ModelSettings(
            estimator=gate.baseline.estimator,
            params=gate.baseline.params,
            preprocessing=settings.model.preprocessing.model_copy(update={"scale_numeric": True}),
        )
        fitted = fit_pipeline(split, settings.dataset, model)
        baseline_scores = score_metrics(
            y, fitted.predict_proba(split.x_test)[:, 1], min_precision=target_precision
        )
    improvement = None
    if p_champion is not None and gate.bootstrap.resamples > 0:
        improvement = paired_bootstrap(
            y,
            p_candidate,
            p_champion,
            gate.primary_metric,
            resamples=gate.bootstrap.resamples,
            confidence=gate.bootstrap.confidence,
            seed=gate.bootstrap.seed,
            min_precision=target_precision,
        )
    slices = slice_scores(
        split.x_test[gate.slices.columns],
        y,
        p_candidate,
        p_champion,
        gate.slices.metric,
        target_precision,
    )
    return GateEvidence(
        candidate=score_metrics(y, p_candidate, min_precision=target_precision),
        champion=None
        if p_champion is None
        else score_metrics(y, p_champion, min_precision=target_precision),
        champion_version=champion_version,
        baseline=baseline_scores,
        improvement=improvement,
        slices=slices,
        override=override,
    )
