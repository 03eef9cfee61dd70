"""Daily batches built from the datasets scikit-learn ships: one example per task type.

| name | task | scikit-learn source | target |
|---|---|---|---|
| `breast_cancer` | binary | `load_breast_cancer` | `diagnosis`: "malignant" / "benign" (text) |
| `wine` | multiclass | `load_wine` | `cultivar`: "class_0", "class_1", "class_2" |
| `diabetes` | regression | `load_diabetes` (unscaled) | `progression`: a number |

Each day resamples the source rows with replacement, adds Gaussian noise to every feature (a
tenth of its spread) and gives the rows an id, a time within the day (`observed_at`) and a
`segment` (north/south, for slice checks). From day `drift_from` on, drift is injected: the `DRIFT`
features move by `shift` standard deviations and, for the classifiers, the class mix changes
too, so the champion's predictions drift as well as its inputs. The contracts that go with
them are `configs/datasets/<name>.yaml`.

    python -m driftloop.data.sklearn_datasets wine --root data/lake --start 2026-11-01 --days 6
"""

from __future__ import annotations

import argparse
import datetime
import re
import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd

from driftloop.tasks.adapters import storage


@dataclass(frozen=True)
class Source:
    """One scikit-learn dataset and how it becomes a driftloop dataset."""

    loader: str
    task: str
    target: str
    id_prefix: str
    drift: tuple[str, ...]  # features shifted from drift_from on
    favoured_class: str | None = None  # classifiers: the class that grows under drift


SOURCES: dict[str, Source] = {
    "breast_cancer": Source(
        "load_breast_cancer", "binary", "diagnosis", "BC", ("mean_radius", "mean_texture"),
        favoured_class="malignant",
    ),
    "wine": Source(
        "load_wine", "multiclass", "cultivar", "W", ("alcohol", "color_intensity", "proline"),
        favoured_class="class_2",
    ),
    "diabetes": Source(
        "load_diabetes", "regression", "progression", "D", ("bmi", "s5", "bp", "s1", "s6"),
    ),
}  # fmt: skip

#: Breast cancer has 30 features; the ten "mean_*" ones keep the contract readable.
_BREAST_CANCER_FEATURES = 10


def _snake(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def source_frame(name: str) -> pd.DataFrame:
    """The scikit-learn dataset as one frame: snake_case features and the named target."""
    import sklearn.datasets

    spec = SOURCES[name]
    loader = getattr(sklearn.datasets, spec.loader)
    bunch = loader(scaled=False) if name == "diabetes" else loader()
    names = [_snake(c) for c in bunch.feature_names]
    if name == "diabetes":  # "age" is also a loans column: keep the contracts apart
        names = ["patient_age" if c == "age" else c for c in names]
    features = pd.DataFrame(bunch.data, columns=names)
    if name == "breast_cancer":
        features = features.iloc[:, :_BREAST_CANCER_FEATURES]
    if spec.task == "regression":
        target = pd.Series(bunch.target.astype(float))
    else:
        target = pd.Series(np.asarray(bunch.target_names, dtype=object)[bunch.target])
    return features.assign(**{spec.target: target.to_numpy()})


def generate_day(
    name: str,
    day: datetime.date,
    rows: int,
    *,
    drifted: bool = False,
    shift: float = 1.0,
    seed: int = 0,
) -> pd.DataFrame:
    """One day's batch (see the module docstring); seeded by the day, so reruns are equal."""
    spec = SOURCES[name]
    base = source_frame(name)
    rng = np.random.default_rng([seed, day.toordinal(), len(name)])
    weights = np.ones(len(base))
    if drifted and spec.favoured_class is not None:
        weights[base[spec.target].to_numpy() == spec.favoured_class] = 4.0
    picks = rng.choice(len(base), size=rows, replace=True, p=weights / weights.sum())
    frame = base.iloc[picks].reset_index(drop=True)
    features = [c for c in frame.columns if c != spec.target]
    spread = base[features].std()
    for column in features:
        noise = rng.normal(0.0, 0.1 * spread[column], rows)
        frame[column] = frame[column] + noise
        if drifted and column in spec.drift:
            frame[column] = frame[column] + shift * spread[column]
    if spec.task == "regression":
        frame[spec.target] = frame[spec.target] + rng.normal(0.0, 5.0, rows)
    start = pd.Timestamp(day, tz="UTC")
    ids = [f"{spec.id_prefix}{day:%Y%m%d}-{i:06d}" for i in range(rows)]
    stamps = start + pd.to_timedelta(np.sort(rng.integers(0, 86_400, rows)), "s")
    segment = np.where(rng.random(rows) < 0.5, "north", "south").astype(object)
    return pd.concat(
        [
            pd.DataFrame({"row_id": ids, "observed_at": stamps, "segment": segment}),
            frame,
        ],
        axis=1,
    )


def write_days(
    root: str,
    name: str,
    start: datetime.date,
    days: int,
    rows: int,
    *,
    drift_from: int | None = None,
    shift: float = 1.0,
    seed: int = 0,
) -> list[str]:
    """Write raw/<name>/<day>.parquet for `days` days (target included); days from index
    `drift_from` (0-based) on are drifted. Returns the URIs."""
    lake = storage.Lake(root, name)
    uris = []
    for i in range(days):
        day = start + datetime.timedelta(days=i)
        drifted = drift_from is not None and i >= drift_from
        frame = generate_day(name, day, rows, drifted=drifted, shift=shift, seed=seed)
        uris.append(storage.write_frame(frame, lake.raw(day)))
    return uris


def write_labels(root: str, name: str, day: datetime.date) -> str:
    """The day's delayed labels (id + target, read back from its raw file) under labels/."""
    lake = storage.Lake(root, name)
    target = SOURCES[name].target
    raw = storage.read_frame(lake.raw(day))
    return storage.write_frame(raw[["row_id", target]], lake.labels(day))


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; prints the written URIs, one per line."""
    parser = argparse.ArgumentParser(
        prog="python -m driftloop.data.sklearn_datasets",
        description="Write daily batches built from a scikit-learn dataset into a driftloop lake.",
    )
    parser.add_argument("name", choices=sorted(SOURCES))
    parser.add_argument("--root", default="data/lake", help="lake root: folder or s3:// prefix")
    parser.add_argument("--start", type=datetime.date.fromisoformat, required=True)
    parser.add_argument("--days", type=int, default=6)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--drift-from", type=int, default=None, help="0-based day index")
    parser.add_argument("--shift", type=float, default=1.0, help="in standard deviations")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.days < 1 or args.rows < 1:
        parser.error("--days and --rows must be >= 1")
    uris = write_days(
        args.root, args.name, args.start, args.days, args.rows,
        drift_from=args.drift_from, shift=args.shift, seed=args.seed,
    )  # fmt: skip
    sys.stdout.write("".join(f"{uri}\n" for uri in uris))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
