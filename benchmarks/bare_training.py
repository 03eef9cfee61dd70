"""The bare side of `benchmarks/training.py`: the train flow's library calls, with no driftloop.

Why a separate file: the benchmark runs each side in a fresh interpreter so that import and
start-up costs count. This script imports only the libraries the work needs (pandas, pyarrow,
scikit-learn, MLflow, matplotlib) and does, in a plain top-to-bottom script, what the `train`
flow does on the same curated parquet files with the same settings (given as a JSON spec by
the benchmark):

    read the curated days (hash each file for lineage) -> features/casts -> seeded stratified
    split -> champion from the registry (download, hash, load, predict) -> fit the candidate ->
    fit the baseline -> 7 metrics each -> paired bootstrap -> slices -> ROC + confusion plots ->
    one MLflow run (tags, params, metrics, dataset input, figures, JSON, skops model with
    signature and pip requirements) -> register -> training snapshot parquet -> version tags
    (incl. model digest) -> serving smoke check in a fresh process -> gate -> alias move +
    ledger JSON -> model card.

    python benchmarks/bare_training.py SPEC.json
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from importlib import import_module
from importlib.metadata import version as pkg_version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SMOKE = (
    "import sys, mlflow, pandas as pd\n"
    "m = mlflow.pyfunc.load_model(sys.argv[1]); s = pd.read_parquet(sys.argv[2])\n"
    "assert len(m.predict(s)) == len(s)\n"
)


def sha256_folder(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.name == "registered_model_meta":
            continue
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def weighted_auc(groups: np.ndarray, y: np.ndarray, weights: np.ndarray) -> float:
    """ROC AUC under row weights: the Mann-Whitney statistic over tied-score groups."""
    pos = np.bincount(groups, weights=weights * y)
    neg = np.bincount(groups, weights=weights * (1.0 - y))
    below = np.cumsum(neg) - neg
    return float((pos * (below + 0.5 * neg)).sum() / (pos.sum() * neg.sum()))


def metrics_of(y: np.ndarray, p: np.ndarray, min_precision: float) -> dict[str, float]:
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        brier_score_loss,
        f1_score,
        log_loss,
        precision_recall_curve,
        roc_auc_score,
    )

    p = np.clip(p, 1e-7, 1 - 1e-7)
    hard = (p >= 0.5).astype(int)
    precision, recall, _ = precision_recall_curve(y, p)
    reachable = recall[precision >= min_precision]
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "average_precision": float(average_precision_score(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "accuracy": float(accuracy_score(y, hard)),
        "f1": float(f1_score(y, hard, zero_division=0)),
        "recall_at_precision": float(reachable.max()) if reachable.size else 0.0,
    }


def build(spec: dict[str, Any], estimator: str, params: dict[str, Any], scale: bool) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy=spec["numeric_impute"]))]
    if scale:
        numeric.append(("scale", StandardScaler()))
    categorical = [
        ("impute", SimpleImputer(strategy="constant", fill_value="__missing__")),
        ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
    ]
    prep = ColumnTransformer(
        [
            ("num", Pipeline(numeric), spec["numeric"]),
            ("cat", Pipeline(categorical), spec["categorical"]),
        ]
    )
    module, _, name = estimator.rpartition(".")
    return Pipeline([("prep", prep), ("model", getattr(import_module(module), name)(**params))])


def main(spec_path: str) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow
    import pyarrow.parquet as pq
    from mlflow import MlflowClient
    from mlflow.models import infer_signature
    from mlflow.types import ColSpec, Schema
    from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay, roc_auc_score
    from sklearn.model_selection import train_test_split

    spec = json.loads(Path(spec_path).read_text())
    # Both URIs: an inherited $MLFLOW_REGISTRY_URI would otherwise point the registry elsewhere.
    mlflow.set_tracking_uri(spec["tracking_uri"])
    mlflow.set_registry_uri(spec["tracking_uri"])
    client = MlflowClient()
    name, target = spec["model_name"], spec["target"]
    features = spec["numeric"] + spec["categorical"]

    # read + lineage digest
    digest, frames = hashlib.sha256(), []
    for path in spec["files"]:
        digest.update(hashlib.sha256(Path(path).read_bytes()).hexdigest().encode())
        frames.append(pq.read_table(path).to_pandas())
    frame = pd.concat(frames, ignore_index=True)

    # features, casts, split
    x = frame[features].copy()
    for col in spec["numeric"]:
        x[col] = pd.to_numeric(x[col], errors="coerce").astype("float64")
    for col in spec["categorical"]:
        values = x[col].astype("object")
        x[col] = values.where(values.notna(), None).astype("object")
    y = (frame[target] == spec["positive_label"]).astype("int64")
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=spec["test_size"], random_state=spec["split_seed"], stratify=y
    )
    x_train, x_test = x_train.reset_index(drop=True), x_test.reset_index(drop=True)
    y_test = y_test.to_numpy()

    # champion: download, verify digest, load, predict
    champ = client.get_model_version_by_alias(name, "champion")
    champ_uri = f"models:/{name}/{champ.version}"
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=champ_uri, dst_path=tmp))
        assert sha256_folder(local) == champ.tags["driftloop.model_sha256"]
        p_champion = mlflow.sklearn.load_model(str(local)).predict_proba(x_test)[:, 1]

    # candidate + baseline
    candidate = build(spec, spec["estimator"], spec["params"], spec["scale_numeric"])
    candidate.fit(x_train, y_train)
    p_candidate = candidate.predict_proba(x_test)[:, 1]
    baseline = build(spec, spec["baseline_estimator"], spec["baseline_params"], True)
    baseline.fit(x_train, y_train)
    min_precision = spec["min_precision"]
    scores = {
        "candidate": metrics_of(y_test, p_candidate, min_precision),
        "champion": metrics_of(y_test, p_champion, min_precision),
        "baseline": metrics_of(y_test, baseline.predict_proba(x_test)[:, 1], min_precision),
    }

    # paired bootstrap of the roc_auc gain (resamples as row counts, as driftloop does), slices
    rng = np.random.default_rng(spec["bootstrap_seed"])
    groups_c = np.unique(p_candidate, return_inverse=True)[1]
    groups_h = np.unique(p_champion, return_inverse=True)[1]
    gains = []
    for _ in range(spec["resamples"]):
        counts = np.bincount(rng.integers(0, len(y_test), len(y_test)), minlength=len(y_test))
        gains.append(
            weighted_auc(groups_c, y_test, counts) - weighted_auc(groups_h, y_test, counts)
        )
    tail = (1 - spec["confidence"]) / 2
    interval = (float(np.quantile(gains, tail)), float(np.quantile(gains, 1 - tail)))
    slices = {}
    for column in spec["slices"]:
        values = x_test[column].astype("object").where(x_test[column].notna(), "<null>")
        for value, idx in values.groupby(values, sort=True).indices.items():
            safe = "".join(ch if ch.isalnum() or ch in "_-." else "_" for ch in str(value))
            slices[f"slice_{column}_{safe}_roc_auc"] = (
                roc_auc_score(y_test[idx], p_candidate[idx]),
                roc_auc_score(y_test[idx], p_champion[idx]),
            )

    # figures + one MLflow run with the model
    roc_fig, roc_ax = plt.subplots(figsize=(5, 4))
    RocCurveDisplay.from_predictions(y_test, p_candidate, ax=roc_ax, name="candidate")
    cm_fig, cm_ax = plt.subplots(figsize=(4, 4))
    ConfusionMatrixDisplay.from_predictions(y_test, (p_candidate >= 0.5).astype(int), ax=cm_ax)
    experiment = mlflow.get_experiment_by_name(spec["experiment"])
    example = x_train.head(50)
    signature = infer_signature(example, candidate.predict_proba(example)[:, 1])
    tags = {"window": spec["window"], "data_digest": digest.hexdigest(), "trigger": "manual"}
    with mlflow.start_run(experiment_id=experiment.experiment_id, run_name="bare") as run:
        mlflow.set_tags({f"driftloop.{k}": v for k, v in tags.items()})
        mlflow.log_params({"estimator": spec["estimator"], **spec["params"]})
        metrics = dict(scores["candidate"])
        metrics.update({f"champion_{k}": v for k, v in scores["champion"].items()})
        metrics.update({f"baseline_{k}": v for k, v in scores["baseline"].items()})
        metrics.update({k: v[0] for k, v in slices.items()})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v == v})
        # typed frame: schema from dtypes, our file digest (MLflow's own inference visits
        # every value in Python, ~80 s at 1M rows; driftloop does the same as here)
        dataset = mlflow.data.from_pandas(
            frame, source=",".join(spec["files"]), targets=target, digest=digest.hexdigest()[:32]
        )
        kinds = {"i": "long", "u": "long", "f": "double", "b": "boolean", "M": "datetime"}
        dataset.schema = Schema(
            [
                ColSpec(kinds.get(frame[c].dtype.kind, "string"), c, not frame[c].isna().any())
                for c in frame.columns
            ]
        )
        mlflow.log_input(dataset, context="training")
        mlflow.log_figure(roc_fig, "roc_curve.png")
        mlflow.log_figure(cm_fig, "confusion_matrix.png")
        mlflow.log_dict({"scores": scores, "interval": interval}, "gate_evidence.json")
        requirements = [
            f"{p}=={pkg_version(p)}" for p in ("scikit-learn", "skops", "pandas", "numpy")
        ]
        model_info = mlflow.sklearn.log_model(
            sk_model=candidate,
            name="model",
            signature=signature,
            input_example=example.head(5),
            pip_requirements=requirements,
            serialization_format="skops",
            skops_trusted_types=spec["trusted_types"],
            pyfunc_predict_fn="predict_proba",
        )
    plt.close(roc_fig)
    plt.close(cm_fig)

    # register, training snapshot, version tags with the model digest
    version = mlflow.register_model(model_info.model_uri, name).version
    reference = Path(spec["reference_dir"]) / f"v{version}.parquet"
    reference.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(reference, index=False)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = mlflow.artifacts.download_artifacts(model_info.model_uri, dst_path=tmp)
        tags = {"reference_uri": str(reference), "model_sha256": sha256_folder(Path(model_dir))}
    for key, value in tags.items():
        client.set_model_version_tag(name, version, f"driftloop.{key}", value)

    # serving smoke check in a fresh process
    sample = io.BytesIO()
    x_test.head(spec["smoke_rows"]).to_parquet(sample, index=False)
    sample_path = Path(spec["reference_dir"]) / "smoke.parquet"
    sample_path.write_bytes(sample.getvalue())
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": spec["tracking_uri"],
        "MLFLOW_REGISTRY_URI": spec["tracking_uri"],
    }
    subprocess.run(
        [sys.executable, "-c", SMOKE, f"models:/{name}/{version}", str(sample_path)],
        check=True, env=env, capture_output=True,
    )  # fmt: skip

    # gate (the same rules), alias move + ledger, model card
    gain = scores["candidate"]["roc_auc"] - scores["champion"]["roc_auc"]
    passed = bool(
        scores["candidate"]["roc_auc"] >= spec["roc_auc_floor"]
        and interval[0] >= spec["min_lower_bound"]
        and gain >= spec["min_gain"]
    )
    alias = "champion" if passed else "challenger"
    ledger = Path(spec["ledger_dir"])
    ledger.mkdir(parents=True, exist_ok=True)
    entry = {"alias": alias, "to": str(version), "at": time.time(), "id": uuid.uuid4().hex}
    (ledger / f"{entry['id']}.intent.json").write_text(json.dumps(entry))
    client.set_registered_model_alias(name, alias, str(version))
    (ledger / f"{entry['id']}.commit.json").write_text(json.dumps(entry))
    client.set_model_version_tag(name, str(version), "driftloop.gate_passed", str(passed))
    client.log_dict(run.info.run_id, {"passed": passed, "gain": gain}, "gate_decision.json")
    card = "\n".join(f"| {k} | {v:.4f} |" for k, v in scores["candidate"].items())
    client.log_text(run.info.run_id, card, "model_card.md")
    print(json.dumps({"version": str(version), "alias": alias, "roc_auc": metrics["roc_auc"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
