"""The MLflow adapter: tracking runs, the model registry and aliases.

The rest of driftloop sees only `ModelVersionInfo` and plain values. Models are logged with
skops (no pickle), an explicit signature and explicit pip requirements (MLflow otherwise infers
them, which is slow: see benchmarks/README.md).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import version as pkg_version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from driftloop.configs.settings import RegistrySettings, TrackingSettings

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure
    from sklearn.pipeline import Pipeline

TAG_PREFIX = "driftloop."

#: Types skops must be told to trust when loading our pipelines (numpy/sklearn internals that
#: skops does not whitelist by default). Anything else in a model file refuses to load.
SKOPS_TRUSTED_TYPES: list[str] = [
    "numpy.dtype",
    "sklearn._loss.link.Interval",
    "sklearn._loss.link.IdentityLink",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.link.MultinomialLogit",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss.loss.HalfMultinomialLoss",
    "sklearn._loss.loss.HalfSquaredError",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils._bunch.Bunch",
]


class RegistryError(RuntimeError):
    """The registry could not answer; the message says which model, alias or URI."""


class ModelVersionInfo(BaseModel):
    """What the pipeline needs to know about one registered version."""

    name: str
    version: str
    run_id: str
    source: str
    tags: dict[str, str]

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def tag(self, key: str, default: str = "") -> str:
        return self.tags.get(TAG_PREFIX + key, default)


def quiet_mlflow() -> None:
    """No telemetry, no network calls from MLflow at run time."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def configure_tracking(tracking: TrackingSettings, registry: RegistrySettings) -> str:
    """Point MLflow at the configured store and return the experiment id (created if new)."""
    quiet_mlflow()
    import mlflow

    if tracking.uri.startswith("sqlite:///"):
        Path(tracking.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking.uri)
    mlflow.set_registry_uri(tracking.uri)
    try:
        experiment = mlflow.get_experiment_by_name(registry.experiment)
        if experiment is not None:
            return str(experiment.experiment_id)
        location = tracking.artifact_location
        if location is not None and "://" not in location:
            Path(location).mkdir(parents=True, exist_ok=True)
            location = Path(location).as_uri()
        return str(mlflow.create_experiment(registry.experiment, artifact_location=location))
    except Exception as err:
        raise RegistryError(
            f"MLflow tracking store {tracking.uri} is unreachable or refused the experiment "
            f"{registry.experiment!r}: {err}. Check tracking.uri in the config and that the "
            "MLflow server (if any) is up."
        ) from err


def _info(mv: Any) -> ModelVersionInfo:
    return ModelVersionInfo(
        name=mv.name,
        version=str(mv.version),
        run_id=mv.run_id or "",
        source=mv.source or "",
        tags=dict(mv.tags or {}),
    )


def _client() -> Any:
    from mlflow import MlflowClient

    return MlflowClient()


def version_by_alias(registry: RegistrySettings, alias: str) -> ModelVersionInfo | None:
    """The version an alias points to, or None when the model or alias does not exist yet."""
    from mlflow.exceptions import MlflowException

    try:
        mv = _client().get_model_version_by_alias(registry.model_name, alias)
    except MlflowException as err:
        if "RESOURCE_DOES_NOT_EXIST" in str(err.error_code) or "not found" in str(err).lower():
            return None
        raise RegistryError(
            f"could not read alias {alias!r} of model {registry.model_name!r}: {err}"
        ) from err
    return _info(mv)


#: Registry bookkeeping MLflow writes into the model folder after registration, not model content.
DIGEST_IGNORES = {"registered_model_meta"}


def artifact_digest(folder: str | Path) -> str:
    """sha256 over every file of a model folder (names and bytes), in a stable order."""
    root = Path(folder)
    digest = hashlib.sha256()
    files = (p for p in root.rglob("*") if p.is_file() and p.name not in DIGEST_IGNORES)
    for path in sorted(files):
        digest.update(path.relative_to(root).as_posix().encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


@contextmanager
def downloaded_model(model_uri: str) -> Iterator[Path]:
    """The model's files in a temporary folder, removed on exit.

    Why: without a destination MLflow downloads into a fresh temporary folder it never
    removes, so a worker that loads the champion for every run would slowly fill its disk.
    """
    import mlflow

    with tempfile.TemporaryDirectory(prefix="driftloop-model-") as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp)
        except Exception as err:
            raise RegistryError(f"model {model_uri} could not be downloaded: {err}") from err
        yield Path(local)


def registered_by_driftloop(info: ModelVersionInfo) -> bool:
    """Whether driftloop registered this version: it tags its lineage (the data digest) in the
    same call that creates the version.

    Why: a version driftloop made must carry its file digest; one registered by hand or by
    another tool (no lineage) is loaded without the check, as before."""
    return bool(info.tag("data_digest"))


def load_version(info: ModelVersionInfo) -> Pipeline:
    """Load a version by number (not the moving alias), refusing files that changed since.

    The digest recorded at registration must match the downloaded files, so a model swapped
    in the artifact store is caught before it scores anything.
    """
    import mlflow

    expected = _expected_digest(info)
    with downloaded_model(info.uri) as local:
        _check_digest(info, local, expected)
        try:
            return mlflow.sklearn.load_model(str(local))
        except Exception as err:
            raise RegistryError(
                f"model {info.uri} (run {info.run_id}) could not be loaded: {err}"
            ) from err


def verify_version(info: ModelVersionInfo) -> None:
    """Refuse a version whose files changed since registration, without loading it: a rollback
    checks this before its smoke check, which loads the model in another process by URI."""
    expected = _expected_digest(info)
    if expected:
        with downloaded_model(info.uri) as local:
            _check_digest(info, local, expected)


def _expected_digest(info: ModelVersionInfo) -> str | None:
    expected = info.tag("model_sha256")
    if not expected and registered_by_driftloop(info):
        raise RegistryError(
            f"model {info.uri} (run {info.run_id}) was registered by driftloop but carries no "
            f"{TAG_PREFIX}model_sha256 digest (its registration did not finish), so its files "
            "cannot be checked: refused. Register it again (retrain) or roll back to a "
            "previous version."
        )
    return expected or None


def _check_digest(info: ModelVersionInfo, local: Path, expected: str | None) -> None:
    if expected and artifact_digest(local) != expected:
        raise RegistryError(
            f"model {info.uri} (run {info.run_id}) does not match the digest recorded at "
            f"registration ({expected[:12]}...): its artifacts changed. Re-register the "
            "model or roll back to a previous version."
        )


def pip_requirements() -> list[str]:
    """Pinned from the running environment, so the served model matches what was trained."""
    return [f"{name}=={pkg_version(name)}" for name in ("scikit-learn", "skops", "pandas", "numpy")]


def log_candidate(
    *,
    experiment_id: str,
    run_name: str,
    pipeline: Pipeline,
    input_example: pd.DataFrame,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    figures: Mapping[str, Figure],
    tags: Mapping[str, str],
    training_frame: pd.DataFrame,
    training_source: str,
    target: str,
    documents: Mapping[str, Any],
    training_digest: str | None = None,
    run_id: str | None = None,
    task: str = "binary",
) -> tuple[str, str]:
    """One MLflow run holding everything a reviewer needs; returns (run_id, model_uri).

    `run_id` resumes a run opened earlier (the parent of hyperparameter-search trials).
    What the served model returns follows `task`: P(positive) (binary), one probability
    column per class (multiclass, named by class in the signature) or the predicted value
    (regression, through `predict`).
    """
    import mlflow
    from mlflow.models import infer_signature

    if task == "regression":
        output: Any = pipeline.predict(input_example)
    elif task == "multiclass":
        import pandas as pd

        output = pd.DataFrame(
            pipeline.predict_proba(input_example), columns=[str(c) for c in pipeline.classes_]
        )
    else:
        output = pipeline.predict_proba(input_example)[:, 1]
    signature = infer_signature(input_example, output)
    with (
        warnings.catch_warnings(),
        mlflow.start_run(
            run_id=run_id,
            experiment_id=None if run_id else experiment_id,
            run_name=None if run_id else run_name,
        ) as run,
    ):
        # Our sources are plain paths/URIs, and integer columns in the dataset record are
        # never model inputs (the signature is float), so both hints are noise here.
        warnings.filterwarnings("ignore", message=".*can be interpreted in multiple ways.*")
        warnings.filterwarnings("ignore", message=".*Inferred schema contains integer.*")
        mlflow.set_tags({TAG_PREFIX + k: v for k, v in tags.items()})
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v == v})
        dataset = training_dataset(training_frame, training_source, target, training_digest)
        mlflow.log_input(dataset, context="training")
        for filename, fig in figures.items():
            mlflow.log_figure(fig, filename)
        for filename, document in documents.items():
            mlflow.log_dict(document, filename)
        info = mlflow.sklearn.log_model(
            sk_model=pipeline,
            name="model",
            signature=signature,
            input_example=input_example.head(5),
            pip_requirements=pip_requirements(),
            serialization_format="skops",
            skops_trusted_types=SKOPS_TRUSTED_TYPES,
            pyfunc_predict_fn="predict" if task == "regression" else "predict_proba",
        )
        return run.info.run_id, info.model_uri


def open_run(experiment_id: str, run_name: str) -> str:
    """Create a run to log into later (`log_candidate(run_id=...)`); returns its id."""
    run = _client().create_run(experiment_id, run_name=run_name)
    return str(run.info.run_id)


def log_nested_trials(parent_run_id: str, outcome: Any) -> list[str]:
    """One child run per search trial (params, its validation metric, its real start/end).

    Logged from the flow's process, not from the Dask workers: workers need no access to
    the tracking store, and a SQLite store never sees concurrent writers.
    """
    from mlflow.entities import Metric, Param

    client = _client()
    parent = client.get_run(parent_run_id)
    ids = []
    for trial in outcome.trials:
        child = client.create_run(
            parent.info.experiment_id,
            start_time=trial.started_ms,
            tags={
                "mlflow.parentRunId": parent_run_id,
                TAG_PREFIX + "search_trial": str(trial.index),
            },
            run_name=f"trial-{trial.index}",
        )
        end_ms = trial.started_ms + int(trial.seconds * 1000)
        client.log_batch(
            child.info.run_id,
            metrics=[Metric(f"validation_{trial.metric}", trial.value, end_ms, 0)]
            if trial.value == trial.value
            else [],
            params=[Param(k, str(v)[:500]) for k, v in trial.params.items()],
        )
        client.set_terminated(child.info.run_id, end_time=end_ms)
        ids.append(child.info.run_id)
    client.log_dict(parent_run_id, outcome.model_dump(mode="json"), "search/trials.json")
    client.set_tag(parent_run_id, TAG_PREFIX + "search_best_trial", str(outcome.best.index))
    client.log_batch(
        parent_run_id,
        params=[Param(f"search.best.{k}", str(v)[:500]) for k, v in outcome.best.params.items()],
    )
    return ids


def _column_type(column: pd.Series) -> str:
    """MLflow's column type from the dtype alone (the frame is already typed by the contract)."""
    kind = column.dtype.kind
    if kind in "iu":
        return "long"
    return {"f": "double", "b": "boolean", "M": "datetime"}.get(kind, "string")


def training_dataset(frame: pd.DataFrame, source: str, target: str, digest: str | None) -> Any:
    """The training window as an MLflow dataset, without MLflow's per-value inference.

    Why: `mlflow.data.from_pandas` + `log_input` infer the schema by visiting every value in
    Python and hash the frame for a digest, which is slow on large windows (see
    benchmarks/README.md). The frame is typed already, so types come from dtypes and
    `required` from a vectorised null check; the digest is ours (sha256 of the curated files),
    which also says exactly which bytes were read.
    """
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.types import ColSpec, Schema

    dataset = from_pandas(
        frame, source=source, targets=target, name="training-window",
        digest=digest[:32] if digest else None,
    )  # fmt: skip
    dataset.schema = Schema(
        [
            ColSpec(type=_column_type(frame[c]), name=str(c), required=not frame[c].isna().any())
            for c in frame.columns
        ]
    )  # a functools.cached_property: assigning it is how a known value is supplied
    return dataset


def register(model_uri: str, registry: RegistrySettings, tags: Mapping[str, str]) -> str:
    """Create a new version of the registered model and return its number."""
    import mlflow

    mv = mlflow.register_model(
        model_uri, registry.model_name, tags={TAG_PREFIX + k: v for k, v in tags.items()}
    )
    return str(mv.version)


def set_version_tags(registry: RegistrySettings, version: str, tags: Mapping[str, str]) -> None:
    client = _client()
    for key, value in tags.items():
        client.set_model_version_tag(registry.model_name, version, TAG_PREFIX + key, value)


def set_alias(registry: RegistrySettings, alias: str, version: str) -> None:
    _client().set_registered_model_alias(registry.model_name, alias, version)


def get_version(registry: RegistrySettings, version: str) -> ModelVersionInfo:
    mv = _client().get_model_version(registry.model_name, version)
    return _info(mv)


def log_run_document(run_id: str, document: Mapping[str, Any] | str, artifact_file: str) -> None:
    """Attach a JSON or text document to a finished run (gate decision, model card)."""
    client = _client()
    if isinstance(document, str):
        client.log_text(run_id, document, artifact_file)
    else:
        client.log_dict(run_id, dict(document), artifact_file)


def list_versions(registry: RegistrySettings) -> list[dict[str, Any]]:
    """Every version with its aliases, oldest first, for timelines and tests."""
    client = _client()
    try:
        versions = client.search_model_versions(f"name='{registry.model_name}'")
    except Exception:
        return []
    aliases: dict[str, list[str]] = {}
    try:
        for alias, ver in client.get_registered_model(registry.model_name).aliases.items():
            aliases.setdefault(str(ver), []).append(alias)
    except Exception:
        pass
    return sorted(
        (
            {
                "version": str(mv.version),
                "run_id": mv.run_id,
                "aliases": sorted(aliases.get(str(mv.version), [])),
                "tags": dict(mv.tags or {}),
            }
            for mv in versions
        ),
        key=lambda row: int(row["version"]),
    )


def run_metrics(run_id: str) -> dict[str, float]:
    """The metrics a run logged (a version's held-out metrics at registration)."""
    from mlflow.exceptions import MlflowException

    try:
        return dict(_client().get_run(run_id).data.metrics)
    except MlflowException as err:
        raise RegistryError(f"could not read the metrics of MLflow run {run_id}: {err}") from err
