"""The gate's evidence: candidate, champion and baseline scored on the very same held-out rows.

One function for every caller (the `train` flow and the backtest), so what the gate judges
offline is what it judges in production. The task type decides what a model's output is
(`targets.predict_output`); multiclass outputs are aligned on one class list first, so a class
the champion never saw counts against it instead of breaking the comparison.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from driftloop.configs.settings import ModelSettings, Settings
from driftloop.tasks.core.evaluation import paired_bootstrap, score_metrics, slice_scores
from driftloop.tasks.core.gate import GateEvidence, Override
from driftloop.tasks.core.targets import compare_outputs, predict_output, unseen_classes
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
    dataset = settings.dataset
    task = dataset.task
    target_precision = gate.recall_at_precision
    y = split.y_test.to_numpy()
    fitted_baseline = None
    if baseline and gate.baseline is not None:
        model = ModelSettings(
            estimator=gate.baseline.estimator,
            params=gate.baseline.params,
            preprocessing=settings.model.preprocessing.model_copy(update={"scale_numeric": True}),
        )
        fitted_baseline = fit_pipeline(split, dataset, model)
    compared = compare_outputs(
        [
            predict_output(candidate, split.x_test, dataset),
            None if champion is None else predict_output(champion, split.x_test, dataset),
            None
            if fitted_baseline is None
            else predict_output(fitted_baseline, split.x_test, dataset),
        ],
        y,
        dataset,
    )
    p_candidate, p_champion, p_baseline = compared.outputs
    classes = compared.classes
    assert p_candidate is not None

    def metrics(p: object) -> dict[str, float] | None:
        if p is None:
            return None
        return score_metrics(y, p, min_precision=target_precision, task=task, classes=classes)  # type: ignore[arg-type]

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
            classes=classes,
        )
    slices = slice_scores(
        split.x_test[gate.slices.columns],
        y,
        p_candidate,
        p_champion,
        gate.slices.metric,
        target_precision,
        classes,
    )
    return GateEvidence(
        task=task,
        candidate=metrics(p_candidate) or {},
        champion=metrics(p_champion),
        champion_version=champion_version,
        baseline=metrics(p_baseline),
        improvement=improvement,
        slices=slices,
        override=override,
        classes=list(classes or ()),
        unseen_classes=unseen_classes(split.y_train, split.y_test) if task == "multiclass" else [],
    )
