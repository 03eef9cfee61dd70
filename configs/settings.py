"""The one strict settings model for driftloop.

A YAML typo must fail before any task runs, naming the key: every model forbids extra keys,
and `load_settings` turns pydantic's error into one message per bad key.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

CONFIG_DIR = Path(__file__).resolve().parent
HOME_ENV = "DRIFTLOOP_HOME"


def project_root(environ: Mapping[str, str] | None = None) -> Path:
    """Where relative paths (lake, MLflow store, .prefect, .stack) resolve.

    $DRIFTLOOP_HOME when set; else the checkout when the code runs from one (an editable
    install: pyproject.toml next to configs/); else the working directory, never the
    installed package's folder (site-packages in an image).
    """
    env = os.environ if environ is None else environ
    if env.get(HOME_ENV):
        return Path(env[HOME_ENV]).expanduser().resolve()
    if (CONFIG_DIR.parent / "pyproject.toml").is_file():
        return CONFIG_DIR.parent
    return Path.cwd().resolve()


PROJECT_ROOT = project_root()

DType = Literal["string", "int", "float", "category", "datetime", "bool"]
Severity = Literal["error", "warning"]
TaskType = Literal["binary", "multiclass", "regression"]
Derived = Literal["row_id", "batch_day"]

#: The column a dataset without `id_column` gets: "<first 16 hex of the input's sha256>-<row
#: position in the file>", so identical rows get different ids and the same file the same ids.
ROW_ID_COLUMN = "row_id"
#: The column a dataset without `timestamp_column` gets: the start of the batch's day (in
#: `dataset.time_zone`), the event time of every row of that batch.
BATCH_TIME_COLUMN = "event_time"

MetricName = Literal[
    "roc_auc", "average_precision", "log_loss", "brier", "accuracy", "f1", "recall_at_precision",
    "f1_macro", "rmse", "mae", "r2",
]  # fmt: skip

#: The metrics each task type can compute; a config naming another fails at load.
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "binary": (
        "roc_auc", "average_precision", "log_loss", "brier", "accuracy", "f1",
        "recall_at_precision",
    ),
    "multiclass": ("log_loss", "f1_macro", "accuracy"),
    "regression": ("rmse", "mae", "r2"),
}  # fmt: skip

#: Per task type, what a config that leaves them out gets (docs/data-scientist.md, "Task
#: types"). Multi-class is judged on log loss: it scores every class probability (the drift
#: check and the bootstrap see a calibrated model degrade before its argmax flips), it is
#: defined on any slice, and a prior-only dummy gives it a meaningful baseline (the class
#: entropy); macro F1 is kept as a second rule so a small class is not sacrificed.
#: Regression is judged on RMSE, relative to the champion's (units differ per dataset).
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "binary": {
        "estimator": "sklearn.ensemble.HistGradientBoostingClassifier",
        "primary_metric": "roc_auc",
        "metrics": {"roc_auc": {"threshold": 0.6, "min_absolute_change": -0.01}},
        "baseline": {
            "estimator": "sklearn.dummy.DummyClassifier",
            "params": {"strategy": "prior"},
            "min_absolute_change": 0.1,
        },
        "slice_rule": {"threshold": 0.55, "min_absolute_change": -0.05},
    },
    "multiclass": {
        "estimator": "sklearn.ensemble.HistGradientBoostingClassifier",
        "primary_metric": "log_loss",
        "metrics": {
            "log_loss": {"min_absolute_change": -0.02},
            "f1_macro": {"min_absolute_change": -0.03},
        },
        "baseline": {
            "estimator": "sklearn.dummy.DummyClassifier",
            "params": {"strategy": "prior"},
            "min_absolute_change": 0.1,
        },
        "slice_rule": {"min_absolute_change": -0.1},
    },
    "regression": {
        "estimator": "sklearn.ensemble.HistGradientBoostingRegressor",
        "primary_metric": "rmse",
        "metrics": {"rmse": {"min_relative_change": -0.02}, "mae": {"min_relative_change": -0.03}},
        "baseline": {
            "estimator": "sklearn.dummy.DummyRegressor",
            "params": {"strategy": "mean"},
            "min_absolute_change": None,
            "min_relative_change": 0.05,
        },
        "slice_rule": {"min_relative_change": -0.1},
    },
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(Strict):
    """The contract for one column: what a valid value looks like."""

    dtype: DType
    nullable: bool = True
    max_null_fraction: float = Field(1.0, ge=0.0, le=1.0)
    min: float | None = None
    max: float | None = None
    categories: list[str] | None = None
    unique: bool = False
    severity: Severity = "error"
    description: str = ""
    format: str | None = Field(
        None,
        description="datetime columns only: the strftime format of text values (e.g. "
        "'%d/%m/%Y %H:%M'); unset means ISO 8601. Values that do not match are quarantined, "
        "never guessed",
    )

    derived: Derived | None = Field(
        None,
        description="set by driftloop, not read from the file: row_id (dataset without "
        "id_column) or batch_day (dataset without timestamp_column)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ColumnSpec:
        if self.derived == "row_id" and self.dtype != "string":
            raise ValueError("a derived row_id column has dtype string")
        if self.derived == "batch_day" and self.dtype != "datetime":
            raise ValueError("a derived batch_day column has dtype datetime")
        if self.format is not None and self.dtype != "datetime":
            raise ValueError("format is only allowed on dtype 'datetime'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if self.categories is not None and self.dtype not in ("category", "string"):
            raise ValueError("categories are only allowed on dtype 'category' or 'string'")
        if (self.min is not None or self.max is not None) and self.dtype not in ("int", "float"):
            raise ValueError("min/max are only allowed on dtype 'int' or 'float'")
        return self


RuleOp = Literal["<", "<=", ">", ">=", "=="]


class CrossColumnRule(Strict):
    """A row-level rule over two columns: `column_a op factor * column_b`.

    Rows with a null in either column are not judged. Datetime pairs compare as they are
    (factor must stay 1).
    """

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    column_a: str
    op: RuleOp
    column_b: str
    factor: float = Field(1.0, gt=0.0, description="column_b is scaled by this before comparing")
    severity: Severity = "error"
    description: str = ""

    @model_validator(mode="after")
    def _distinct(self) -> CrossColumnRule:
        if self.column_a == self.column_b:
            raise ValueError(f"rule {self.name!r} compares column {self.column_a!r} with itself")
        return self


#: `{date}` or `{date:<strftime format>}` in `dataset.raw_pattern`.
DATE_PLACEHOLDER = re.compile(r"\{date(?::([^{}]*))?\}")
#: strftime directives a file name can be read back with, as regular expressions.
DATE_DIRECTIVES: dict[str, str] = {
    "Y": r"\d{4}", "y": r"\d{2}", "m": r"\d{2}", "d": r"\d{2}", "j": r"\d{3}",
    "b": r"[A-Za-z]{3}", "%": "%",
}  # fmt: skip
RAW_SUFFIXES: tuple[str, ...] = tuple(
    f"{fmt}{zip_}" for fmt in (".csv", ".parquet") for zip_ in ("", ".gz", ".bz2", ".xz", ".zip")
)


def check_raw_pattern(pattern: str) -> str:
    """A raw file pattern names its day with `{date[:format]}` and its format by its suffix
    (see `DatasetSettings.raw_pattern`); the error says what is wrong with it."""
    formats = [m.group(1) or "%Y-%m-%d" for m in DATE_PLACEHOLDER.finditer(pattern)]
    if not formats:
        raise ValueError(
            f"'dataset.raw_pattern' {pattern!r} has no date placeholder: write the day as "
            "{date} (YYYY-MM-DD) or {date:%Y%m%d}, e.g. exports/sales_{date:%Y%m%d}.csv.gz"
        )
    full = False
    for fmt in formats:
        directives = re.findall(r"%(.)", fmt)
        unknown = sorted({d for d in directives if d not in DATE_DIRECTIVES})
        if unknown:
            raise ValueError(
                f"'dataset.raw_pattern' {pattern!r}: {', '.join('%' + d for d in unknown)} "
                f"cannot be read back from a file name; use "
                f"{', '.join('%' + d for d in DATE_DIRECTIVES if d != '%')}"
            )
        found = set(directives)
        full = full or (bool(found & {"Y", "y"}) and ({"m", "d"} <= found or "j" in found))
    if not full:
        raise ValueError(
            f"'dataset.raw_pattern' {pattern!r}: no placeholder holds a whole date (a year "
            "with month and day, or day of year), e.g. {date:%Y%m%d}"
        )
    if not pattern.lower().endswith(RAW_SUFFIXES):
        raise ValueError(
            f"'dataset.raw_pattern' {pattern!r} must end in the file's format: .csv or "
            ".parquet, optionally compressed (.gz, .bz2, .xz, .zip), e.g. .csv.gz"
        )
    return pattern


class FeatureSelection(Strict):
    """Which contract columns the model learns from (`dataset.features`).

    Every contract column is validated and monitored whatever this says; a column left out
    (say a leaky one) is only kept out of the model, and its drift is reported without
    driving the retrain policy (unless `drift.drive_policy` names it).
    """

    include: list[str] | None = Field(
        None, description="only these columns are model features (null: every column)"
    )
    exclude: list[str] = Field(
        default_factory=list, description="these columns are not model features"
    )

    @model_validator(mode="after")
    def _one_way(self) -> FeatureSelection:
        if self.include is not None and self.exclude:
            raise ValueError("'dataset.features' sets both include and exclude: use one of them")
        if self.include is not None and not self.include:
            raise ValueError("'dataset.features.include' is empty: name at least one column")
        return self


class DatasetSettings(Strict):
    """The data contract: columns, roles, cross-column rules and batch-level bounds.

    `id_column` and `timestamp_column` are optional: left out, each is replaced by a column
    driftloop derives for every batch (`ROW_ID_COLUMN`, `BATCH_TIME_COLUMN`), declared in
    `columns` with `derived` set, so the rest of the pipeline sees one contract either way.
    """

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    id_column: str = Field(
        ROW_ID_COLUMN,
        description="the column that identifies a row (labels are joined on it); left out, "
        f"a derived {ROW_ID_COLUMN!r}: '<input sha256[:16]>-<row position>'",
    )
    timestamp_column: str = Field(
        BATCH_TIME_COLUMN,
        description="the row's event time (dtype datetime); left out, a derived "
        f"{BATCH_TIME_COLUMN!r}: the start of the batch's day in time_zone",
    )
    target: str
    task: TaskType = Field(
        "binary",
        description="binary (target == positive_label), multiclass (one class per value of the "
        "target, compared as text) or regression (a numeric target)",
    )
    positive_label: bool | int | str = Field(
        1, description="binary only: the target value counted as positive (int, bool or text)"
    )
    columns: dict[str, ColumnSpec]
    min_rows: int = Field(1, ge=1)
    max_rows: int | None = None
    max_quarantine_fraction: float = Field(0.2, ge=0.0, le=1.0)
    max_future_minutes: int = Field(
        60, ge=0, description="timestamps later than now + this are quarantined"
    )
    extra_columns: Literal["error", "drop"] = "drop"
    time_zone: str = Field(
        "UTC",
        description="the IANA time zone a batch's day is counted in (e.g. 'Europe/Paris'); "
        "naive timestamps in the data are read as UTC",
    )
    event_time_tolerance_hours: float = Field(
        6.0,
        ge=0.0,
        description="rows whose timestamp_column falls outside the batch's day by more than "
        "this are quarantined",
    )
    id_lookback_days: int = Field(
        7,
        ge=0,
        description="an id curated on one of this many earlier days is quarantined as a repeat, "
        "and a file identical to one of those days' input is refused (0: off)",
    )
    rules: list[CrossColumnRule] = Field(
        default_factory=list, description="row-level rules over pairs of columns"
    )
    raw_pattern: str | None = Field(
        None,
        description="where a day's raw file is, relative to storage.root (or an absolute "
        "path / s3:// URI), with the day as {date} or {date:%Y%m%d}, e.g. "
        "exports/sales_{date:%Y%m%d}.csv.gz; the format comes from the suffix. Unset: "
        "raw/<name>/<YYYY-MM-DD>.parquet (or .csv)",
    )
    features: FeatureSelection = Field(
        default_factory=FeatureSelection,
        description="{include: [...]} or {exclude: [...]}: the model's features among the "
        "columns; every column is still validated and monitored",
    )
    data_docs: Literal["failures", "always", "never"] = Field(
        "failures",
        description="when to build a Great Expectations Data Docs site for a validation: "
        "'failures' (a batch where a check failed), 'always' or 'never' (a site costs about a "
        "second per batch, whatever its size)",
    )

    @field_validator("data_docs", mode="before")
    @classmethod
    def _data_docs_flag(cls, value: Any) -> Any:
        """true/false, the earlier form of this key, still mean always/never."""
        if isinstance(value, bool):
            return "always" if value else "never"
        return value

    @model_validator(mode="before")
    @classmethod
    def _derive_roles(cls, data: Any) -> Any:
        """A dataset without an id or a timestamp gets a derived column for each (see class
        docstring); a declared column of the derived name must be named as the role instead."""
        if not isinstance(data, dict) or not isinstance(data.get("columns"), dict):
            return data
        data = dict(data)
        columns = dict(data["columns"])
        for role, name, kind, spec in (
            (
                "id_column",
                ROW_ID_COLUMN,
                "row_id",
                {"dtype": "string", "nullable": False, "unique": True},
            ),
            ("timestamp_column", BATCH_TIME_COLUMN, "batch_day", {"dtype": "datetime"}),
        ):
            if data.get(role) is not None:
                continue
            if name in columns:
                raise ValueError(
                    f"'dataset.{role}' is not set but a column {name!r} is declared: set "
                    f"'dataset.{role}: {name}' to use it, or rename it (driftloop derives a "
                    f"{name!r} column when {role} is left out)"
                )
            what = (
                "derived: <input sha256[:16]>-<row position in the file>"
                if kind == "row_id"
                else "derived: the start of the batch's day"
            )
            columns[name] = {
                **spec,
                "nullable": False,
                "derived": kind,
                "description": what,
            }
            data[role] = name
        data["columns"] = columns
        return data

    @property
    def derived_columns(self) -> dict[str, str]:
        """Column name -> what it is derived from, for the columns no file carries."""
        return {name: spec.derived for name, spec in self.columns.items() if spec.derived}

    @model_validator(mode="after")
    def _features_known(self) -> DatasetSettings:
        roles = {self.id_column, self.timestamp_column, self.target}
        candidates = [c for c in self.columns if c not in roles]
        named = [("include", n) for n in self.features.include or []]
        named += [("exclude", n) for n in self.features.exclude]
        for key, name in named:
            if name in roles:
                raise ValueError(
                    f"'dataset.features.{key}' names {name!r}, which is the dataset's id, "
                    "timestamp or target, never a model feature: remove it"
                )
            if name not in self.columns:
                raise ValueError(
                    f"'dataset.features.{key}' names column {name!r}, which is not one of the "
                    f"declared columns ({', '.join(candidates)})"
                )
        if not [c for c in candidates if self._is_feature(c)]:
            raise ValueError(
                "'dataset.features' leaves the model no feature: include at least one of "
                f"{', '.join(candidates)}"
            )
        return self

    def _is_feature(self, name: str) -> bool:
        if self.features.include is not None:
            return name in self.features.include
        return name not in self.features.exclude

    @model_validator(mode="after")
    def _roles_exist(self) -> DatasetSettings:
        for role in ("id_column", "timestamp_column", "target"):
            name = getattr(self, role)
            if name not in self.columns:
                raise ValueError(f"{role} {name!r} is not one of the declared columns")
        if self.columns[self.timestamp_column].dtype != "datetime":
            raise ValueError(f"timestamp_column {self.timestamp_column!r} must have dtype datetime")
        return self

    @model_validator(mode="after")
    def _target_fits_task(self) -> DatasetSettings:
        """The target's dtype must suit `task`; a binary positive_label takes the target's type."""
        spec = self.columns[self.target]
        if self.task == "regression" and spec.dtype not in ("int", "float"):
            raise ValueError(
                f"'dataset.target' {self.target!r} has dtype {spec.dtype} but 'dataset.task' is "
                "regression: a regression target must be int or float"
            )
        if self.task != "binary":
            if "positive_label" in self.model_fields_set:
                raise ValueError(
                    f"'dataset.positive_label' only applies to task binary, not {self.task}: "
                    "remove it"
                )
            return self
        label = self.positive_label
        if spec.dtype in ("string", "category"):
            label = str(label).lower() if isinstance(label, bool) else str(label)
            if spec.categories is not None and label not in spec.categories:
                raise ValueError(
                    f"'dataset.positive_label' {label!r} is not one of the target's categories "
                    f"{spec.categories}"
                )
        elif spec.dtype == "bool":
            text = str(label).strip().lower()
            if text not in ("true", "false", "1", "0"):
                raise ValueError(
                    f"'dataset.positive_label' {label!r} does not fit the bool target "
                    f"{self.target!r}: use true or false"
                )
            label = text in ("true", "1")
        elif spec.dtype in ("int", "float"):
            try:
                number = float(label)
            except ValueError as err:
                raise ValueError(
                    f"'dataset.positive_label' {label!r} does not fit the {spec.dtype} target "
                    f"{self.target!r}: use a number, or declare the target as string/category"
                ) from err
            label = int(number) if spec.dtype == "int" and number.is_integer() else number
        else:
            raise ValueError(
                f"'dataset.target' {self.target!r} has dtype {spec.dtype}, which cannot hold "
                "class labels"
            )
        object.__setattr__(self, "positive_label", label)
        return self

    @field_validator("raw_pattern")
    @classmethod
    def _readable_pattern(cls, pattern: str | None) -> str | None:
        return None if pattern is None else check_raw_pattern(pattern)

    @field_validator("time_zone")
    @classmethod
    def _known_time_zone(cls, zone: str) -> str:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown time zone {zone!r}; use an IANA name like 'UTC'") from err
        return zone

    @field_validator("rules")
    @classmethod
    def _unique_rule_names(cls, rules: list[CrossColumnRule]) -> list[CrossColumnRule]:
        names = [r.name for r in rules]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"rule names must be unique; repeated: {repeated}")
        return rules

    @model_validator(mode="after")
    def _rules_fit_columns(self) -> DatasetSettings:
        numeric = ("int", "float")
        for i, rule in enumerate(self.rules):
            key = f"'dataset.rules.{i}' ({rule.name})"
            for side in ("column_a", "column_b"):
                name = getattr(rule, side)
                if name not in self.columns:
                    raise ValueError(
                        f"{key}: {side} {name!r} is not one of the declared columns "
                        f"({', '.join(self.columns)})"
                    )
            a = self.columns[rule.column_a].dtype
            b = self.columns[rule.column_b].dtype
            if a in numeric and b in numeric:
                continue
            if a == b == "datetime":
                if rule.factor != 1.0:
                    raise ValueError(f"{key}: factor must be 1 when comparing datetime columns")
                continue
            raise ValueError(
                f"{key}: compares {rule.column_a!r} ({a}) with {rule.column_b!r} ({b}); "
                "both columns must be numeric (int/float) or both datetime"
            )
        return self

    @property
    def monitored_columns(self) -> list[str]:
        """Every column but the roles: validated and checked for drift, model feature or not."""
        roles = {self.id_column, self.timestamp_column, self.target}
        return [c for c in self.columns if c not in roles]

    @property
    def feature_columns(self) -> list[str]:
        """The model's features: `monitored_columns` narrowed by `dataset.features`."""
        return [c for c in self.monitored_columns if self._is_feature(c)]

    @property
    def excluded_columns(self) -> list[str]:
        """Monitored columns kept out of the model (`dataset.features`)."""
        return [c for c in self.monitored_columns if not self._is_feature(c)]

    @property
    def numeric_features(self) -> list[str]:
        return [c for c in self.feature_columns if self.columns[c].dtype in ("int", "float")]

    @property
    def categorical_features(self) -> list[str]:
        return [
            c
            for c in self.feature_columns
            if self.columns[c].dtype in ("category", "string", "bool")
        ]

    @property
    def monitored_numeric(self) -> list[str]:
        """Numeric columns summarised for drift, model features or not."""
        return [c for c in self.monitored_columns if self.columns[c].dtype in ("int", "float")]

    @property
    def monitored_categorical(self) -> list[str]:
        return [
            c
            for c in self.monitored_columns
            if self.columns[c].dtype in ("category", "string", "bool")
        ]

    def contract_columns(self, with_target: bool = True) -> dict[str, ColumnSpec]:
        """Scoring inputs use the same contract minus the target: labels come later."""
        if with_target:
            return dict(self.columns)
        return {k: v for k, v in self.columns.items() if k != self.target}


class PreprocessingSettings(Strict):
    numeric_impute: Literal["mean", "median", "most_frequent"] = "median"
    scale_numeric: bool = True
    categorical_impute: Literal["most_frequent", "constant"] = "constant"
    max_categories: int | None = Field(None, ge=2)


class SearchSettings(Strict):
    """A hyperparameter search before the candidate is fitted (off unless configured).

    Trials are scored on a validation split carved from the training rows (never the gate's
    evaluation rows); the best trial's params, merged over `model.params`, train the candidate.
    """

    strategy: Literal["grid", "random"] = "grid"
    params: dict[str, list[Any]] = Field(
        description="estimator parameter -> the values to try, e.g. {max_depth: [3, 5]}"
    )
    trials: int | None = Field(
        None, ge=1, description="random: how many distinct combinations; grid: an upper bound"
    )
    metric: MetricName = Field(
        "roc_auc", description="any gate metric of the task (default: gate.primary_metric)"
    )
    validation_size: float = Field(0.2, gt=0.0, lt=1.0)
    seed: int = 0

    @model_validator(mode="after")
    def _sound(self) -> SearchSettings:
        if not self.params:
            raise ValueError("'model.search.params' is empty: name at least one parameter")
        for name, values in self.params.items():
            if not values:
                raise ValueError(f"'model.search.params.{name}' has no values to try")
        size = 1
        for values in self.params.values():
            size *= len(values)
        if self.strategy == "random" and self.trials is None:
            raise ValueError("'model.search.trials' is required with strategy 'random'")
        if self.strategy == "grid" and self.trials is not None and self.trials < size:
            raise ValueError(
                f"'model.search.trials' is {self.trials} but the grid has {size} combinations: "
                "raise trials, shrink model.search.params, or use strategy 'random'"
            )
        return self


class ModelSettings(Strict):
    """The estimator as an importable sklearn class path plus its hyperparameters."""

    estimator: str = "sklearn.ensemble.HistGradientBoostingClassifier"
    params: dict[str, Any] = Field(default_factory=dict)
    preprocessing: PreprocessingSettings = PreprocessingSettings()
    search: SearchSettings | None = Field(
        None, description="hyperparameter search; null (the default) fits model.params as is"
    )

    @field_validator("estimator")
    @classmethod
    def _allowed_module(cls, value: str) -> str:
        if not value.startswith("sklearn.") or "." not in value:
            raise ValueError(
                f"estimator {value!r} must be a scikit-learn class path, "
                "e.g. sklearn.linear_model.LogisticRegression"
            )
        return value


class SplitSettings(Strict):
    """Which rows of a training window judge the candidate (and the champion beside it).

    `out_of_time`: the window's last `holdout_days` days, after the champion's own window when
    there is one: the present distribution, which neither model learnt from. A random split
    would let a candidate be judged on the very weeks it trained on, and a champion on rows it
    had seen. `time` holds out the latest `test_size` share of rows; `random` a stratified share.
    """

    strategy: Literal["out_of_time", "random", "time"] = "out_of_time"
    test_size: float = Field(0.25, gt=0.0, lt=1.0)
    holdout_days: int = Field(
        1, ge=1, description="out_of_time: the most recent days the gate judges on"
    )
    seed: int = 42


class TrainingSettings(Strict):
    """Which curated days a retrain learns from: a window of its own, not the drift window.

    A drift check looks at a few days to notice change; a model learns from weeks. `rolling`:
    the last `days` days up to the check's window end; `expanding`: every day from `start`;
    `champion_plus_new`: the champion's training window extended to the check's window end
    (the last `days` days when there is no champion). Days never curated are skipped.
    """

    window: Literal["rolling", "expanding", "champion_plus_new"] = "rolling"
    days: int = Field(28, ge=1, description="rolling: days in the window")
    start: date | None = Field(None, description="expanding: the first day of every window")

    @model_validator(mode="after")
    def _expanding_has_a_start(self) -> TrainingSettings:
        if self.window == "expanding" and self.start is None:
            raise ValueError("'training.window' is 'expanding' but 'training.start' is not set")
        return self


class MetricRule(Strict):
    """MLflow `MetricThreshold` semantics, signed so that a positive change is an improvement.

    `threshold` is an absolute floor (a ceiling for lower-is-better metrics). The changes are
    measured against the champion on the same rows: `min_absolute_change: -0.01` tolerates a
    loss of 0.01, `+0.005` demands a gain of 0.005; `min_relative_change` is the same as a
    fraction of the champion's value.
    """

    threshold: float | None = None
    min_absolute_change: float | None = None
    min_relative_change: float | None = None


class BootstrapSettings(Strict):
    """A paired bootstrap over the evaluation rows, so noise does not churn the champion."""

    resamples: int = Field(300, ge=0, description="0 switches the bootstrap off")
    confidence: float = Field(0.9, gt=0.0, lt=1.0)
    seed: int = 0
    require_lower_bound: bool = Field(
        True,
        description="the lower bound of the primary metric's gain must reach min_lower_bound",
    )
    min_lower_bound: float = Field(
        -0.005,
        description="how much worse the candidate may plausibly be: with the point estimate "
        "required to be a gain, this keeps noise from churning the champion",
    )


class SliceSettings(Strict):
    """Per-value checks on slice columns: a model may not win on average and fail a group."""

    columns: list[str] = Field(default_factory=list)
    min_rows: int = Field(200, ge=1, description="smaller slices are reported, not judged")
    metric: MetricName = "roc_auc"
    rule: MetricRule = MetricRule(threshold=0.55, min_absolute_change=-0.05)


class BaselineSettings(Strict):
    """A simple model trained on the same rows; the candidate must beat it."""

    estimator: str = "sklearn.dummy.DummyClassifier"
    params: dict[str, Any] = Field(default_factory=lambda: {"strategy": "prior"})
    min_absolute_change: float | None = Field(
        0.1, description="required gain on the primary metric"
    )
    min_relative_change: float | None = Field(
        None, description="required gain as a fraction of the baseline's value (regression)"
    )

    @field_validator("estimator")
    @classmethod
    def _sklearn_only(cls, value: str) -> str:
        return ModelSettings._allowed_module(value)


class ApprovalSettings(Strict):
    """A human decision before promotion: the train run pauses with a form in the Prefect UI."""

    required: bool = False
    timeout_minutes: int = Field(24 * 60, ge=1, description="then the run fails, nothing moves")
    poll_seconds: int = Field(10, ge=1)


class GateSettings(Strict):
    """Everything the evaluation gate checks before an alias may move."""

    primary_metric: MetricName = "roc_auc"
    metrics: dict[MetricName, MetricRule] = Field(
        default_factory=lambda: {"roc_auc": MetricRule(threshold=0.6, min_absolute_change=-0.01)}
    )
    recall_at_precision: float = Field(
        0.5, gt=0.0, lt=1.0, description="the precision at which recall_at_precision is read"
    )
    bootstrap: BootstrapSettings = BootstrapSettings()
    slices: SliceSettings = SliceSettings()
    baseline: BaselineSettings | None = BaselineSettings()
    smoke_rows: int = Field(1000, ge=1, description="rows the serving smoke check predicts")
    approval: ApprovalSettings = ApprovalSettings()

    @model_validator(mode="after")
    def _primary_has_rule(self) -> GateSettings:
        if self.primary_metric not in self.metrics:
            raise ValueError(
                f"'gate.primary_metric' {self.primary_metric!r} needs a rule under gate.metrics"
            )
        return self


class RegistrySettings(Strict):
    model_name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    champion_alias: str = "champion"
    challenger_alias: str = "challenger"
    experiment: str = "driftloop"


class DriftSettings(Strict):
    """Per-column drift methods and the thresholds that turn scores into a verdict."""

    numeric_method: Literal["wasserstein", "psi", "jensenshannon", "ks"] = "wasserstein"
    categorical_method: Literal["jensenshannon", "psi", "chisquare"] = "jensenshannon"
    column_threshold: float = Field(0.1, gt=0.0)
    column_thresholds: dict[str, float] = Field(default_factory=dict)
    share_threshold: float = Field(0.3, gt=0.0, le=1.0)
    key_features: list[str] = Field(default_factory=list)
    drive_policy: list[str] = Field(
        default_factory=list,
        description="columns kept out of the model (dataset.features) whose drift counts "
        "toward feature_drift like a feature's; others' drift is reported only",
    )
    window_days: int = Field(3, ge=1)
    sample_size: int = Field(100_000, ge=100)
    min_rows: int = Field(100, ge=1)
    report: Literal["signals", "decisions", "always"] = Field(
        "signals",
        description="when a check writes its drift report and history plot: 'signals' "
        "(a signal breached), 'decisions' (the policy decided to retrain or escalate) or "
        "'always'; the decision never needs them, and every day's statistics are in the drift "
        "history either way; under 'decisions' the loop status page is rewritten only by checks "
        "that decided. A catch-up over many days renders 'decisions' but for its last day",
    )
    evidently_report: bool = Field(
        True,
        description="with each drift report, also render Evidently's per-column report from a "
        "sample of sample_size rows per side, linked from it; it is rendered after the "
        "decision is recorded and announced, and importing Evidently and rendering cost "
        "3-4 s a report, so a long backfill may turn it off",
    )
    event: str = "driftloop.drift.detected"
    retrain_inline: bool = Field(
        True,
        description="start `train` from the drift check itself (embedded mode); on a server "
        "the deployment trigger on `event` does it instead",
    )
    seed: int = 0
    # --- monitoring signals: distances on precomputed statistics, never p-values ---
    quantiles: int = Field(
        200, ge=10, le=5000, description="quantiles stored per numeric column and per window"
    )
    prediction_threshold: float = Field(
        0.1, gt=0.0, description="score distribution vs the reference's scores (same method)"
    )
    production_share_threshold: float = Field(
        0.3, gt=0.0, le=1.0, description="share of features drifted vs the previous window"
    )
    max_null_increase: float = Field(
        0.05, ge=0.0, le=1.0, description="null rate above the reference's, per feature"
    )
    max_quarantine_rate: float = Field(
        0.1, ge=0.0, le=1.0, description="rows quarantined by the contract / rows received"
    )
    decay_metric: MetricName = Field(
        "roc_auc", description="default per task: roc_auc, log_loss (multiclass), rmse"
    )
    max_decay: float = Field(
        0.05,
        ge=0.0,
        description="realised metric worse than at registration by more than this (rmse and "
        "mae: as a fraction of the value at registration)",
    )
    min_labelled_rows: int = Field(500, ge=1, description="fewer labelled rows: decay not judged")


SignalName = Literal[
    "feature_drift", "prediction_drift", "production_drift", "data_quality", "performance_decay"
]


class PolicySettings(Strict):
    """The retraining policy: which signals count, how they combine, and what holds a retrain.

    Why declarative: thresholds are tuned by replaying history (`driftloop backtest`) before
    automation is switched on, and every decision names the rule that fired or blocked.
    """

    signals: list[SignalName] = Field(
        default_factory=lambda: ["feature_drift", "prediction_drift", "performance_decay"],
        min_length=1,
    )
    combine: Literal["any", "all", "features"] = Field(
        "any", description="any/all of `signals`, or `features`: any of `features` drifted"
    )
    features: list[str] = Field(default_factory=list)
    blocking_signals: list[SignalName] = Field(
        default_factory=lambda: ["data_quality"],
        description="a breach of these holds any retrain (never train on broken data)",
    )
    consecutive_windows: int = Field(2, ge=1, description="hysteresis: breaching checks in a row")
    cooldown_days: int = Field(3, ge=0, description="no retrain this soon after the last one")
    max_retrains: int = Field(3, ge=1, description="at most this many retrain attempts per period")
    max_promotions: int | None = Field(
        None, ge=1, description="at most this many promotions per period (none: no limit)"
    )
    max_rejected_in_episode: int = Field(
        2,
        ge=1,
        description="rejected retrains in one drift episode before the loop stops and pages",
    )
    period_days: int = Field(30, ge=1)
    min_new_rows: int = Field(3000, ge=1, description="rows in the window to train on")
    dedupe_in_flight: bool = Field(
        True, description="ask Prefect for Running/Pending/Scheduled runs of `train_flow`"
    )
    train_flow: str = "train"

    @model_validator(mode="after")
    def _features_mode_names_features(self) -> PolicySettings:
        if self.combine == "features" and not self.features:
            raise ValueError("'policy.combine' is 'features' but 'policy.features' is empty")
        return self


class ProcessSettings(Strict):
    """The unattended loop (`process` flow): every landed day ingested, scored, checked."""

    check: bool = Field(True, description="run the drift check after each day is scored")
    bootstrap_days: int = Field(
        3,
        ge=1,
        description="with no champion yet, train v1 once this many days are curated; days "
        "before that are ingested but not scored",
    )


class StorageSettings(Strict):
    """Where the data lake lives: a local folder or an s3:// prefix."""

    root: str = "data/lake"
    raw_format: Literal["parquet", "csv"] = "parquet"
    score_chunk_rows: int = Field(
        500_000, ge=1, description="rows per predict_proba call (fewer calls: less fork/join)"
    )


class DaskSettings(Strict):
    """The Dask cluster that partitioned work (scoring, hyperparameter trials) fans out on."""

    address: str | None = Field(
        None,
        description="scheduler of an existing cluster, e.g. tcp://10.0.0.5:8786; null starts a "
        "LocalCluster on 127.0.0.1 for the run and stops it afterwards",
    )
    n_workers: int = Field(2, ge=1, description="LocalCluster only: worker processes")
    threads_per_worker: int = Field(1, ge=1, description="LocalCluster only")


class ScoringSettings(Strict):
    """How the score flow reads a large input: streamed batches, or partitions on Dask."""

    mode: Literal["stream", "partitioned"] = Field(
        "stream",
        description="stream: one process reads the input batch by batch and writes "
        "predictions/<model>/<day>.parquet; partitioned: one Prefect task per input partition "
        "(file of a folder/prefix, or row groups of one file) on the `dask` cluster, writing "
        "predictions/<model>/<day>/part-NNNNN.parquet",
    )
    batch_rows: int = Field(
        500_000,
        ge=1,
        description="rows validated and predicted at a time; memory follows this, not the "
        "input size (the time a batch takes is measured in benchmarks/README.md)",
    )
    prefetch_batches: int = Field(
        0,
        ge=0,
        description="batches read and validated on a background thread while the model "
        "predicts the current one; pays off only with idle cores (otherwise it slows scoring: "
        "the predictor's OpenMP threads and validation compete for the same cores)",
    )
    partition_row_groups: int = Field(
        1, ge=1, description="partitioned mode, one parquet file: row groups per partition"
    )


class TrackingSettings(Strict):
    uri: str = "sqlite:///data/mlflow/mlflow.db"
    artifact_location: str | None = Field(
        "data/mlflow/artifacts",
        description="where new experiments keep artifacts; null lets an MLflow tracking "
        "server decide (its --artifacts-destination, proxied through the server)",
    )


class Settings(Strict):
    """Everything a flow needs, validated once at flow start."""

    profile: str = "local"
    dataset_config: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9_-]*$",
        description="a file configs/datasets/<name>.yaml whose sections replace base.yaml's",
    )
    dataset: DatasetSettings
    model: ModelSettings = ModelSettings()
    split: SplitSettings = SplitSettings()
    training: TrainingSettings = TrainingSettings()
    gate: GateSettings = GateSettings()
    registry: RegistrySettings
    drift: DriftSettings = DriftSettings()
    storage: StorageSettings = StorageSettings()
    tracking: TrackingSettings = TrackingSettings()
    dask: DaskSettings = DaskSettings()
    policy: PolicySettings = PolicySettings()
    scoring: ScoringSettings = ScoringSettings()
    process: ProcessSettings = ProcessSettings()

    @model_validator(mode="before")
    @classmethod
    def _task_defaults(cls, data: Any) -> Any:
        """Fill what the task type decides (estimator, gate metrics, baseline, slice rule,
        decay and search metric) where the config leaves it out; explicit values are kept
        and judged by `_task_consistent`."""
        if not isinstance(data, dict) or not isinstance(data.get("dataset"), dict):
            return data
        task = data["dataset"].get("task", "binary")
        if task not in TASK_DEFAULTS:
            return data  # the field's own validation names the bad value
        defaults = TASK_DEFAULTS[task]
        data = dict(data)
        sections: dict[str, Any] = {}
        for name in ("model", "gate", "drift"):
            value = data.get(name, {})
            if not isinstance(value, dict):
                return data  # already a model (or garbage the field validation reports)
            sections[name] = dict(value)
        model, gate, drift = sections["model"], sections["gate"], sections["drift"]
        model.setdefault("estimator", defaults["estimator"])
        gate.setdefault("primary_metric", defaults["primary_metric"])
        primary = gate["primary_metric"]
        gate.setdefault("metrics", defaults["metrics"])
        gate.setdefault("baseline", defaults["baseline"])
        if isinstance(gate.get("slices"), dict) or "slices" not in gate:
            slices = dict(gate.get("slices") or {})
            slices.setdefault("metric", primary)
            slices.setdefault("rule", defaults["slice_rule"])
            gate["slices"] = slices
        drift.setdefault("decay_metric", primary)
        if isinstance(model.get("search"), dict):
            model["search"] = {"metric": primary, **model["search"]}
        data.update(model=model, gate=gate, drift=drift)
        return data

    @model_validator(mode="after")
    def _task_consistent(self) -> Settings:
        """A metric or estimator of another task type fails at load, naming the key."""
        task = self.dataset.task
        allowed = TASK_METRICS[task]
        named: list[tuple[str, str]] = [
            ("gate.primary_metric", self.gate.primary_metric),
            *((f"gate.metrics.{m}", m) for m in self.gate.metrics),
            ("gate.slices.metric", self.gate.slices.metric),
            ("drift.decay_metric", self.drift.decay_metric),
        ]
        if self.model.search is not None:
            named.append(("model.search.metric", self.model.search.metric))
        for key, metric in named:
            if metric not in allowed:
                raise ValueError(
                    f"'{key}' is {metric!r}, which does not apply to dataset.task {task!r}: "
                    f"use one of {', '.join(allowed)}"
                )
        for key, path in (
            ("model.estimator", self.model.estimator),
            ("gate.baseline.estimator", self.gate.baseline and self.gate.baseline.estimator),
        ):
            if not path:
                continue
            name = path.rsplit(".", 1)[-1]
            regressor = (
                name.endswith("Regressor")
                or (name.endswith("Regression") and name != "LogisticRegression")
                or name in ("Ridge", "Lasso", "ElasticNet", "SVR", "LinearSVR")
            )
            classifier = name.endswith("Classifier") or name in (
                "LogisticRegression", "SVC", "LinearSVC", "GaussianNB",
            )  # fmt: skip
            if task == "regression" and classifier:
                raise ValueError(
                    f"'{key}' {path!r} is a classifier but dataset.task is regression: use a "
                    f"regressor, e.g. {TASK_DEFAULTS['regression']['estimator']}"
                )
            if task != "regression" and regressor:
                raise ValueError(
                    f"'{key}' {path!r} is a regressor but dataset.task is {task}: use a "
                    f"classifier, e.g. {TASK_DEFAULTS[task]['estimator']}"
                )
        return self

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        known = self.dataset.monitored_columns
        excluded = self.dataset.excluded_columns
        for key, names in (
            ("drift.key_features", self.drift.key_features),
            ("drift.column_thresholds", list(self.drift.column_thresholds)),
            ("drift.drive_policy", self.drift.drive_policy),
            ("gate.slices.columns", self.gate.slices.columns),
            ("policy.features", self.policy.features),
        ):
            for name in names:
                if name not in known:
                    raise ValueError(
                        f"'{key}' names column {name!r}, which is not a feature column "
                        f"(features: {', '.join(known)})"
                    )
                if key == "drift.drive_policy" and name not in excluded:
                    raise ValueError(
                        f"'drift.drive_policy' names {name!r}, which is a model feature: its "
                        "drift drives the policy already; list only columns that "
                        "dataset.features keeps out of the model"
                    )
                if key in ("drift.key_features", "policy.features") and (
                    name in excluded and name not in self.drift.drive_policy
                ):
                    raise ValueError(
                        f"'{key}' names {name!r}, which dataset.features keeps out of the "
                        "model, so its drift is reported only: add it to 'drift.drive_policy' "
                        "to let it drive the retrain policy"
                    )
        return self

    @property
    def policy_columns(self) -> list[str]:
        """Columns whose drift drives the retrain policy: the model's features and the
        excluded columns named in `drift.drive_policy`."""
        driving = set(self.drift.drive_policy)
        return [
            c for c in self.dataset.monitored_columns
            if c in self.dataset.feature_columns or c in driving
        ]  # fmt: skip

    @property
    def reported_columns(self) -> list[str]:
        """Excluded columns whose drift is measured and reported but drives nothing."""
        return [c for c in self.dataset.excluded_columns if c not in self.drift.drive_policy]

    def digest(self) -> str:
        """A short hash of the effective config, recorded with every model version."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


class ConfigError(ValueError):
    """A config file or override is wrong; the message names the file and the key."""


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as err:
        raise ConfigError(f"config file {path} does not exist") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def _dotted(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Turn {"model.params.max_iter": 50} into nested dicts; nested input passes through."""
    nested: dict[str, Any] = {}
    for key, value in overrides.items():
        parts = key.split(".")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def _absolute(path_or_uri: str, root: Path) -> str:
    if "://" in path_or_uri:
        return path_or_uri
    path = Path(path_or_uri)
    return str(path if path.is_absolute() else (root / path).resolve())


def _absolute_sqlite(uri: str, root: Path) -> str:
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix) :].startswith("/"):
        return prefix + str((root / uri[len(prefix) :]).resolve())
    return uri


def format_validation_error(err: ValidationError, source: str) -> str:
    lines = [f"invalid driftloop config ({source}):"]
    for item in err.errors():
        key = ".".join(str(p) for p in item["loc"]) or "<top level>"
        if item["type"] == "extra_forbidden":
            lines.append(f"  - unknown key '{key}': remove it or check its spelling")
        else:
            got = repr(item.get("input"))
            got = "" if len(got) > 80 else f" (got {got})"
            lines.append(f"  - '{key}': {item['msg']}{got}")
    return "\n".join(lines)


OVERRIDES_ENV = "DRIFTLOOP_OVERRIDES"


def _env_overrides() -> dict[str, Any]:
    """Dotted overrides a process inherits (JSON in $DRIFTLOOP_OVERRIDES).

    Why: a worker started by the stack must point every flow it runs at that stack's MLflow
    server and lake without a config file per port; explicit overrides still win.
    """
    raw = os.environ.get(OVERRIDES_ENV, "").strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ConfigError(f"${OVERRIDES_ENV} is not valid JSON: {err}") from err
    if not isinstance(value, dict):
        raise ConfigError(f"${OVERRIDES_ENV} must be a JSON object of dotted keys")
    return value


DATASETS_DIR = "datasets"
# Sections a dataset file owns: each one it names replaces base.yaml's section as a whole, since
# deep-merging one dataset's columns (or drift features) into another's would mix two contracts.
DATASET_SECTIONS: tuple[str, ...] = ("dataset", "model", "split", "gate", "registry", "drift")
# Sections a dataset file may also set key by key: where its data lives and how its loop
# retrains are the dataset's business. They are deep-merged over the profile (the dataset file
# wins over local.yaml's default root), and $DRIFTLOOP_OVERRIDES and run overrides win over them.
DATASET_SETTINGS: tuple[str, ...] = ("storage", "policy", "training", "process", "scoring")


def available_datasets(config_dir: Path | None = None) -> list[str]:
    """Names usable as `dataset_config` (files in configs/datasets/)."""
    folder = (config_dir or _config_dir()) / DATASETS_DIR
    return sorted(p.stem for p in folder.glob("*.yaml"))


def _config_dir() -> Path:
    return Path(os.environ.get("DRIFTLOOP_CONFIG_DIR", CONFIG_DIR))


def _dataset_layer(config_dir: Path, name: Any, chosen_in: str) -> tuple[dict[str, Any], str]:
    """Read configs/datasets/<name>.yaml; only dataset-owned sections are allowed in it."""
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
        raise ConfigError(
            f"'dataset_config' in {chosen_in} must be a dataset name like 'churn' (a file in "
            f"configs/{DATASETS_DIR}/), got {name!r}"
        )
    path = config_dir / DATASETS_DIR / f"{name}.yaml"
    label = f"{DATASETS_DIR}/{path.name}"
    if not path.exists():
        raise ConfigError(
            f"'dataset_config' {name!r} (set in {chosen_in}) has no file {path}; available "
            f"datasets: {available_datasets(config_dir)}"
        )
    data = _read_yaml(path)
    foreign = [key for key in data if key not in (*DATASET_SECTIONS, *DATASET_SETTINGS)]
    if foreign:
        raise ConfigError(
            f"config file {path}: key(s) {foreign} do not belong in a dataset file; it may hold "
            f"{list(DATASET_SECTIONS)} (each replaces base.yaml's) and "
            f"{list(DATASET_SETTINGS)} (key by key, over the profile); the MLflow server "
            "(tracking) and the dask cluster belong in the profile"
        )
    if "dataset" not in data:
        raise ConfigError(f"config file {path}: missing key 'dataset' (the data contract)")
    return data, label


def _drop_other_task_sections(
    data: dict[str, Any], base: Mapping[str, Any], dataset_data: Mapping[str, Any]
) -> None:
    """A dataset file of another task type than base.yaml's does not inherit base.yaml's
    task-bound choices (its classifier, its gate on ROC AUC, its decay metric): the ones it
    leaves out take the task's defaults (TASK_DEFAULTS) instead of failing as a mix."""
    task = (dataset_data.get("dataset") or {}).get("task", "binary")
    if task == (base.get("dataset") or {}).get("task", "binary"):
        return
    for section in ("model", "gate"):
        if section not in dataset_data:
            data.pop(section, None)
    if "drift" not in dataset_data and isinstance(data.get("drift"), dict):
        data["drift"] = {k: v for k, v in data["drift"].items() if k != "decay_metric"}


def load_settings(
    profile: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    config_dir: Path | None = None,
) -> Settings:
    """Validate base.yaml [+ datasets/<name>.yaml] + <profile>.yaml + overrides into Settings.

    The dataset file is chosen by `dataset_config`, looked up in the overrides, then the
    DRIFTLOOP_DATASET environment variable, then the profile, then base.yaml; without one,
    base.yaml's own dataset (loans) is used. Its DATASET_SECTIONS replace base.yaml's whole;
    the profile is deep-merged over the result, then the dataset file's DATASET_SETTINGS
    (storage, policy...: the dataset's own root wins over the profile's default), then
    $DRIFTLOOP_OVERRIDES, then `overrides`. Raises ConfigError.

    Relative local paths are resolved against the project root, so flows behave the same
    whatever directory a worker starts them from.
    """
    config_dir = config_dir or _config_dir()
    profile = profile or os.environ.get("DRIFTLOOP_PROFILE", "local")
    base_path = config_dir / "base.yaml"
    profile_path = config_dir / f"{profile}.yaml"
    if not profile_path.exists():
        available = sorted(p.stem for p in config_dir.glob("*.yaml") if p.stem != "base")
        raise ConfigError(
            f"profile {profile!r} has no file {profile_path}; available profiles: {available}"
        )
    base, profile_data = _read_yaml(base_path), _read_yaml(profile_path)
    env_overrides = _env_overrides()
    nested_env = _dotted(env_overrides)
    nested_overrides = _dotted(overrides or {})
    layers = [base_path.name]
    chosen = next(
        (
            (value, where)
            for value, where in (
                (nested_overrides.get("dataset_config"), "overrides"),
                (nested_env.get("dataset_config"), f"${OVERRIDES_ENV}"),
                (os.environ.get("DRIFTLOOP_DATASET") or None, "DRIFTLOOP_DATASET"),
                (profile_data.get("dataset_config"), profile_path.name),
                (base.get("dataset_config"), base_path.name),
            )
            if value is not None
        ),
        None,
    )
    data = dict(base)
    dataset_settings: dict[str, Any] = {}
    if chosen is not None:
        dataset_data, label = _dataset_layer(config_dir, *chosen)
        dataset_settings = {k: v for k, v in dataset_data.items() if k in DATASET_SETTINGS}
        data.update({k: v for k, v in dataset_data.items() if k in DATASET_SECTIONS})
        _drop_other_task_sections(data, base, dataset_data)
        data["dataset_config"] = chosen[0]
        layers.append(label)
    data = deep_merge(data, profile_data)
    data = deep_merge(data, dataset_settings)
    data = deep_merge(data, nested_env)
    data = deep_merge(data, nested_overrides)
    if chosen is not None:
        data["dataset_config"] = chosen[0]
    data["profile"] = profile
    layers.append(profile_path.name)
    source = (
        " + ".join(layers)
        + (f" + ${OVERRIDES_ENV}" if env_overrides else "")
        + (" + overrides" if overrides else "")
    )
    try:
        settings = Settings.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, f"{config_dir}: {source}")) from err
    root = project_root()
    return settings.model_copy(
        update={
            "storage": settings.storage.model_copy(
                update={"root": _absolute(settings.storage.root, root)}
            ),
            "tracking": settings.tracking.model_copy(
                update={
                    "uri": _absolute_sqlite(settings.tracking.uri, root),
                    "artifact_location": None
                    if settings.tracking.artifact_location is None
                    else _absolute(settings.tracking.artifact_location, root),
                }
            ),
        }
    )
