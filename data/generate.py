"""Deterministic, seeded demo data for driftloop: a loan-default classification problem.

Why a generator and not a downloaded data set: the continuous-training loop has to be shown
reacting to *known* drift. Each scenario changes exactly one part of the joint distribution,
from a chosen day on, so the drift checks, the gate and the retrain trigger can be demonstrated
and tested against a ground truth:

- ``none``: the stable world.
- ``covariate_shift``: P(x) moves (poorer, more indebted, renting applicants asking for
  small-business and medical loans); P(y|x) is unchanged, so the default rate rises only
  because the applicants are riskier.
- ``prior_shift``: P(y) rises from ~17% to ~40% while P(x|y) stays the same (rows are drawn
  from the stable world and resampled by label).
- ``concept_drift``: the applicants are exactly those of ``none`` but P(y|x) changes (credit
  score and ownership protect less; region, car and home-improvement loans, long employment,
  many open accounts and high income become risk factors), so a model trained before the
  drift scores clearly worse after it (its ROC AUC falls close to chance) and a retrained one
  recovers.
- ``corrupt``: the rows of ``none`` with ~8% of them broken in ways the contract forbids
  (nulls in required columns, out-of-range values, unknown categories, duplicate ids,
  timestamps decades in the future); every other row is untouched and valid.
- ``seasonal``: data that behaves like a real year rather than a switch: the applicants and
  the default mechanism move gradually and sinusoidally with the day of the year, weekends
  differ from weekdays, and a fixed share of labels is flipped (see :class:`Seasonal` for the
  parameters and what they are chosen to make true).

Reproducibility: every day draws from its own random streams derived from ``(seed, day
ordinal)`` through :class:`numpy.random.SeedSequence`, so any day can be regenerated alone and
days before ``drift_start`` are byte-identical to scenario ``none``. Within a day, features,
labels, ids/timestamps, missing values and corruption use separate child streams: concept drift
keeps the features of ``none`` and corruption keeps every untouched row of ``none``.

The committed sample ``data/samples/loans_sample.csv`` (200 rows of 2026-11-01, scenario
``none``, seed 0) is regenerated from the project root with::

    python -c "import datetime as d; from driftloop.data.generate import generate_day; \\
from driftloop.tasks.adapters.storage import write_frame; \\
write_frame(generate_day(d.date(2026, 11, 1), 200), 'data/samples/loans_sample.csv')"

CLI (writes one raw file per day into the lake layout of
:class:`driftloop.tasks.adapters.storage.Lake`)::

    python -m driftloop.data.generate --root data/lake --dataset loans --start 2026-11-01 \\
        --days 10 --rows 2000 --scenario covariate_shift --drift-day 2026-11-08 --seed 0
"""

from __future__ import annotations

import argparse
import datetime
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from driftloop.tasks.adapters import storage

SCENARIOS: tuple[str, ...] = (
    "none",
    "covariate_shift",
    "prior_shift",
    "concept_drift",
    "corrupt",
    "seasonal",
)

COLUMNS: tuple[str, ...] = (
    "loan_id",
    "event_time",
    "age",
    "income",
    "loan_amount",
    "term_months",
    "interest_rate",
    "credit_score",
    "debt_to_income",
    "num_open_accounts",
    "employment_years",
    "home_ownership",
    "purpose",
    "region",
    "default",
)

HOME_OWNERSHIP: tuple[str, ...] = ("RENT", "OWN", "MORTGAGE", "OTHER")
PURPOSES: tuple[str, ...] = (
    "debt_consolidation",
    "credit_card",
    "home_improvement",
    "small_business",
    "car",
    "medical",
    "other",
)
REGIONS: tuple[str, ...] = ("north", "south", "east", "west")
TERMS: tuple[int, ...] = (12, 24, 36, 48, 60, 72)

# Share of missing values in the nullable columns (the contract allows more).
NULL_RATES: dict[str, float] = {
    "income": 0.05,
    "credit_score": 0.05,
    "employment_years": 0.08,
    "region": 0.03,
}
CORRUPT_FRACTION = 0.08
PRIOR_SHIFT_RATE = 0.40
UNKNOWN_CATEGORY = "SPACESHIP"
CORRUPTION_KINDS: tuple[str, ...] = (
    "null_required",
    "age_out_of_range",
    "negative_amount",
    "other_out_of_range",
    "unknown_category",
    "duplicate_id",
    "future_time",
)

_DAY_US = 86_400 * 1_000_000
# Appended streams never change the earlier ones: SeedSequence children are numbered.
_STREAMS = ("features", "labels", "ids", "nulls", "corrupt", "prior", "noise")


@dataclass(frozen=True)
class _World:
    """Parameters of P(x); the covariate-shift world differs from the stable one only here."""

    employment_beta: tuple[float, float] = (2.0, 2.5)
    rent_bias: float = 0.0
    income_log_shift: float = 0.0
    credit_shift: float = 0.0
    purpose_p: tuple[float, ...] = (0.38, 0.22, 0.10, 0.06, 0.10, 0.06, 0.08)
    rate_shift: float = 0.0
    other_debt_scale: float = 0.09


_STABLE = _World()
_SHIFTED = _World(
    employment_beta=(1.8, 2.9),
    rent_bias=1.2,
    income_log_shift=float(np.log(0.8)),
    credit_shift=-20.0,
    purpose_p=(0.28, 0.16, 0.06, 0.19, 0.07, 0.17, 0.07),
    rate_shift=0.5,
    other_debt_scale=0.11,
)

_PURPOSE_AMOUNT = np.array([0.15, -0.25, 0.35, 0.55, 0.1, -0.45, -0.35])
_PURPOSE_RATE = np.array([0.3, 0.8, -0.3, 1.8, -0.8, 0.6, 0.8])
# Default log-odds per category, before and after the concept drift.
_HOME_RISK = np.array([0.30, -0.35, -0.15, 0.25])
_PURPOSE_RISK = np.array([0.10, 0.00, -0.25, 0.65, -0.30, 0.40, 0.15])
_REGION_RISK = np.array([-0.05, 0.10, 0.0, -0.05])
_HOME_RISK_DRIFT = np.array([0.0, 0.1, 0.1, 0.2])
_PURPOSE_RISK_DRIFT = np.array([0.0, 0.1, 0.9, 0.0, 1.0, 0.0, 0.0])
_REGION_RISK_DRIFT = np.array([-0.8, 1.0, -0.4, 0.0])

# Mean and std of the stable and drifted default log-odds over the stable world's applicants,
# and their correlation (measured once on 10^6 rows): the seasonal blend is rescaled with them
# so it keeps the stable world's spread.
_LOGIT_MOMENTS = ((-2.095, 1.394), (-2.020, 1.047))
_LOGIT_CORRELATION = 0.23
# How the purposes tilt with the season (home improvement and car loans in summer) and on
# weekends (card and medical bills), in log-odds of the purpose mix.
_PURPOSE_SEASON = np.array([-0.2, -0.3, 1.0, 0.0, 0.7, -0.2, 0.0])
_PURPOSE_WEEKEND = np.array([-0.2, 0.5, -0.3, -0.4, 0.0, 0.5, 0.2])


@dataclass(frozen=True)
class Seasonal:
    """The ``seasonal`` scenario's parameters: fixed, because the policy defaults in
    ``configs/base.yaml`` were tuned on data made with exactly these.

    Why this shape: real credit data neither stands still nor switches overnight. The season
    ``s = (1 - cos(2*pi*(day_of_year - trough_day) / period_days)) / 2`` runs from 0 in
    mid-January (the stable world of ``none``) to 1 in mid-July and back. Everything that moves,
    moves with it, so the drift is gradual and recurs every year:

    - the default mechanism: the log-odds blend the ``none`` and ``concept_drift`` mechanisms,
      a share ``concept_amplitude*s`` of the drifted one (each standardised, the blend rescaled
      to the stable world's spread: the season changes *who* defaults, not how predictable
      defaults are); a model trained in winter ranks summer applicants clearly worse, and one
      trained in the last weeks recovers;
    - the applicants: income falls by ``income_amplitude`` (log), credit scores by
      ``credit_amplitude`` points, rates rise by ``rate_amplitude`` points, renting by
      ``rent_amplitude`` (log-odds), and the purposes tilt by ``purpose_amplitude`` toward home
      improvement and car loans at the season's peak;
    - a weekly cycle: Saturdays and Sundays add ``weekend_risk`` to the default log-odds,
      ``weekend_rent`` to renting and tilt purposes by ``weekend_purpose`` toward cards and
      medical bills, so a window of a few days looks different by weekday alone;
    - label noise: ``label_noise`` of the labels are flipped, independently of everything, so
      a few days of rows teach a model less than months (a retrain on the drift window alone
      loses to a champion trained on months; one on a rolling window of weeks wins once the
      season has moved).
    """

    period_days: float = 365.25
    trough_day: int = 15
    concept_amplitude: float = 0.7
    income_amplitude: float = 0.12
    credit_amplitude: float = 15.0
    rate_amplitude: float = 0.8
    rent_amplitude: float = 0.4
    purpose_amplitude: float = 0.8
    weekend_risk: float = 0.25
    weekend_rent: float = 0.3
    weekend_purpose: float = 1.0
    label_noise: float = 0.1


SEASONAL = Seasonal()


def season_of(day: datetime.date, params: Seasonal | None = None) -> float:
    """Where ``day`` is in the year's cycle: 0 at ``trough_day``, 1 half a period later."""
    params = params or SEASONAL
    angle = 2.0 * np.pi * (day.timetuple().tm_yday - params.trough_day) / params.period_days
    return float(0.5 * (1.0 - np.cos(angle)))


def _seasonal_world(day: datetime.date, params: Seasonal) -> _World:
    s = season_of(day, params)
    weekend = float(day.weekday() >= 5)
    logits = (
        np.log(np.asarray(_STABLE.purpose_p))
        + params.purpose_amplitude * s * _PURPOSE_SEASON
        + params.weekend_purpose * weekend * _PURPOSE_WEEKEND
    )
    purpose_p = np.exp(logits) / np.exp(logits).sum()
    return _World(
        rent_bias=params.rent_amplitude * s + params.weekend_rent * weekend,
        income_log_shift=-params.income_amplitude * s,
        credit_shift=-params.credit_amplitude * s,
        purpose_p=tuple(float(v) for v in purpose_p),
        rate_shift=params.rate_amplitude * s,
    )


def _seasonal_labels(
    rng: np.random.Generator,
    noise: np.random.Generator,
    f: dict[str, np.ndarray],
    day: datetime.date,
    params: Seasonal,
) -> np.ndarray:
    mix = params.concept_amplitude * season_of(day, params)
    (m0, s0), (m1, s1) = _LOGIT_MOMENTS
    z = (1.0 - mix) * (_default_logit(f, drifted=False) - m0) / s0 + mix * (
        _default_logit(f, drifted=True) - m1
    ) / s1
    spread = np.sqrt((1.0 - mix) ** 2 + mix**2 + 2.0 * mix * (1.0 - mix) * _LOGIT_CORRELATION)
    logit = m0 + s0 * z / spread + params.weekend_risk * float(day.weekday() >= 5)
    p = 1.0 / (1.0 + np.exp(-logit))
    y = (rng.random(len(p)) < p).astype(np.int64)
    flipped = noise.random(len(y)) < params.label_noise
    return np.where(flipped, 1 - y, y)


def _check_scenario(scenario: str) -> None:
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; valid scenarios: {', '.join(SCENARIOS)}")


def _streams(seed: int, day: datetime.date) -> dict[str, np.random.Generator]:
    """One independent stream per concern, so one scenario's change leaves the others alone."""
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    children = np.random.SeedSequence([seed, day.toordinal()]).spawn(len(_STREAMS))
    return {
        name: np.random.Generator(np.random.PCG64(child))
        for name, child in zip(_STREAMS, children, strict=True)
    }


def _choose(rng: np.random.Generator, logits: Sequence[np.ndarray | float], n: int) -> np.ndarray:
    """Draw one category per row from per-row logits, column by column to bound memory."""
    weights = [np.broadcast_to(np.exp(np.asarray(lg, dtype=float)), (n,)) for lg in logits]
    total = np.zeros(n)
    for w in weights:
        total += w
    u = rng.random(n) * total
    codes = np.zeros(n, dtype=np.int8)
    cum = np.zeros(n)
    for w in weights[:-1]:
        cum += w
        codes += u >= cum
    return codes


def _features(rng: np.random.Generator, n: int, world: _World) -> dict[str, np.ndarray]:
    """Complete (latent) applicant features; missing values are applied later."""
    age = np.clip(np.rint(18 + rng.gamma(4.0, 6.0, n)), 18, 100).astype(np.int64)
    employment = np.round(np.clip((age - 18) * rng.beta(*world.employment_beta, n), 0.0, 70.0), 1)
    centred_age = (age - 42) / 10.0
    home = _choose(
        rng,
        [
            0.6 + world.rent_bias - 0.30 * centred_age,
            -0.9 + 0.40 * centred_age,
            0.4 + 0.20 * centred_age,
            -2.8,
        ],
        n,
    )
    region = rng.choice(len(REGIONS), size=n, p=[0.27, 0.31, 0.22, 0.20]).astype(np.int8)
    owns = (home == 1) | (home == 2)
    log_income = (
        10.75
        + world.income_log_shift
        + 0.012 * employment
        + 0.30 * owns
        - 0.0002 * (age - 45.0) ** 2
        + rng.normal(0.0, 0.45, n)
    )
    income = np.clip(np.round(np.exp(log_income), -2), 5_000.0, 5_000_000.0)
    credit = np.clip(
        np.rint(
            690.0
            + world.credit_shift
            + 1.0 * (age - 42)
            + 35.0 * (np.log(income) - 11.0)
            + rng.normal(0.0, 60.0, n)
        ),
        300.0,
        850.0,
    )
    purpose = rng.choice(len(PURPOSES), size=n, p=world.purpose_p).astype(np.int8)
    log_amount = 2.7 + 0.65 * np.log(income) + _PURPOSE_AMOUNT[purpose] + rng.normal(0.0, 0.4, n)
    amount = np.clip(np.round(np.exp(log_amount), -1), 500.0, 1_000_000.0)
    size = np.log(amount) - 9.7
    term_code = _choose(
        rng,
        [
            -0.8 - 0.8 * size,
            -0.2 - 0.4 * size,
            0.6 + 0.0 * size,
            -0.3 + 0.2 * size,
            0.2 + 0.5 * size,
            -1.0 + 0.8 * size,
        ],
        n,
    )
    term = np.asarray(TERMS, dtype=np.int64)[term_code]
    rate = np.round(
        np.clip(
            3.0
            + world.rate_shift
            + 0.05 * (820.0 - credit)
            + 0.04 * (term - 36)
            + _PURPOSE_RATE[purpose]
            + rng.normal(0.0, 1.5, n),
            1.0,
            35.0,
        ),
        2,
    )
    monthly = rate / 1200.0
    payment = amount * monthly / (1.0 - (1.0 + monthly) ** (-term.astype(float)))
    other_debt = rng.gamma(2.0, world.other_debt_scale, n)
    # Lenders rarely approve very high ratios: saturate the tail instead of a hard cut.
    raw_dti = other_debt + 12.0 * payment / income
    dti = np.round(np.clip(1.2 * np.tanh(raw_dti / 1.2), 0.0, 10.0), 3)
    accounts = np.clip(
        rng.poisson(2.0 + 0.07 * (age - 18) + 1.2 * (credit > 700), n), 0, 100
    ).astype(np.int64)
    return {
        "age": age,
        "income": income,
        "loan_amount": amount,
        "term_months": term,
        "interest_rate": rate,
        "credit_score": credit,
        "debt_to_income": dti,
        "num_open_accounts": accounts,
        "employment_years": employment,
        "home_ownership": home,
        "purpose": purpose,
        "region": region,
    }


def _default_logit(f: dict[str, np.ndarray], drifted: bool) -> np.ndarray:
    """Log-odds of default: mostly additive, with thresholds and one interaction."""
    z_credit = (f["credit_score"] - 690.0) / 70.0
    z_income = (np.log(f["income"]) - 11.0) / 0.5
    burden = np.log(f["loan_amount"] / f["income"])
    dti = f["debt_to_income"]
    emp = f["employment_years"]
    age = f["age"]
    if not drifted:
        return (
            -2.55
            - 0.75 * z_credit
            + 0.50 * (f["credit_score"] < 580)
            + 2.0 * (dti - 0.3)
            + 0.06 * (f["interest_rate"] - 10.0)
            - 0.30 * z_income
            + 0.25 * (burden + 1.4)
            + 0.55 * (emp < 1.0)
            - 0.015 * emp
            + 0.30 * ((age - 40.0) / 15.0) ** 2
            + 0.25 * (f["term_months"] >= 60)
            + 0.90 * ((dti > 0.45) & (f["credit_score"] < 640))
            + 0.35 * (f["num_open_accounts"] <= 1)
            + 0.30 * (f["num_open_accounts"] >= 10)
            + _HOME_RISK[f["home_ownership"]]
            + _PURPOSE_RISK[f["purpose"]]
            + _REGION_RISK[f["region"]]
        )
    return (
        -2.6
        - 0.60 * z_credit
        + 1.50 * (dti - 0.3)
        + 0.30 * z_income
        + 0.70 * (emp > 15.0)
        + 0.50 * (f["num_open_accounts"] >= 6)
        + _HOME_RISK_DRIFT[f["home_ownership"]]
        + _PURPOSE_RISK_DRIFT[f["purpose"]]
        + _REGION_RISK_DRIFT[f["region"]]
    )


def _labels(rng: np.random.Generator, f: dict[str, np.ndarray], drifted: bool) -> np.ndarray:
    p = 1.0 / (1.0 + np.exp(-_default_logit(f, drifted)))
    return (rng.random(len(p)) < p).astype(np.int64)


def _prior_shifted(rng: np.random.Generator, n: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Rows of the stable world resampled by label: P(x|y) is kept, P(y) becomes ~40%."""
    want_pos = int(rng.binomial(n, PRIOR_SHIFT_RATE))
    want_neg = n - want_pos
    chunk = max(n, 1024)
    parts: list[tuple[dict[str, np.ndarray], np.ndarray]] = []
    while want_pos > 0 or want_neg > 0:
        feats = _features(rng, chunk, _STABLE)
        y = _labels(rng, feats, drifted=False)
        pos = y == 1
        keep = (pos & (np.cumsum(pos) <= want_pos)) | (~pos & (np.cumsum(~pos) <= want_neg))
        want_pos -= int(np.count_nonzero(keep & pos))
        want_neg -= int(np.count_nonzero(keep & ~pos))
        parts.append(({k: v[keep] for k, v in feats.items()}, y[keep]))
    feats = {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]}
    return feats, np.concatenate([p[1] for p in parts])


def _loan_ids(day: datetime.date, n: int) -> np.ndarray:
    """'L<YYYYMMDD>-<row number>', built as fixed-width code points: vectorised, with no
    f-string per row."""
    prefix = f"L{day:%Y%m%d}-"
    width = max(7, len(str(n)))
    codes = np.empty((n, len(prefix) + width), dtype=np.uint32)
    codes[:, : len(prefix)] = np.frombuffer(prefix.encode("utf-32-le"), dtype=np.uint32)
    rest = np.arange(1, n + 1, dtype=np.uint64)
    for col in range(codes.shape[1] - 1, len(prefix) - 1, -1):
        rest, digit = np.divmod(rest, np.uint64(10))
        codes[:, col] = digit + ord("0")
    return codes.view(f"U{codes.shape[1]}").ravel().astype(object)


def _event_times(rng: np.random.Generator, day: datetime.date, n: int) -> np.ndarray:
    """Sorted microsecond timestamps within the UTC day, as int64 nanoseconds since epoch."""
    start_ns = (day.toordinal() - datetime.date(1970, 1, 1).toordinal()) * _DAY_US * 1000
    return start_ns + np.sort(rng.integers(0, _DAY_US, n)) * 1000


def _apply_nulls(rng: np.random.Generator, cols: dict[str, np.ndarray]) -> None:
    n = len(cols["age"])
    for name, rate in NULL_RATES.items():
        mask = rng.random(n) < rate
        if cols[name].dtype == object:
            cols[name][mask] = None
        else:
            cols[name][mask] = np.nan


def _corrupt(rng: np.random.Generator, cols: dict[str, np.ndarray], day: datetime.date) -> None:
    """Break ~8% of the rows, cycling through every kind so each appears once there are 7+."""
    n = len(cols["age"])
    k = min(n, round(CORRUPT_FRACTION * n))
    rows = rng.choice(n, size=k, replace=False)
    kinds = np.arange(k) % len(CORRUPTION_KINDS)
    pick = rng.integers(0, 1 << 30, size=k)
    years_ahead = rng.integers(40, 120, size=k)

    def of(kind: str) -> tuple[np.ndarray, np.ndarray]:
        mask = kinds == CORRUPTION_KINDS.index(kind)
        return rows[mask], pick[mask]

    def spread(targets: Sequence[tuple[str, object]], kind: str) -> None:
        at, choice = of(kind)
        for i, (column, value) in enumerate(targets):
            cols[column][at[choice % len(targets) == i]] = value

    spread(
        [
            ("loan_amount", np.nan),
            ("interest_rate", np.nan),
            ("debt_to_income", np.nan),
            ("home_ownership", None),
            ("purpose", None),
        ],
        "null_required",
    )
    spread([("age", -5), ("age", 250)], "age_out_of_range")
    at, _ = of("negative_amount")
    cols["loan_amount"][at] = -cols["loan_amount"][at]
    spread(
        [
            ("credit_score", 1200.0),
            ("interest_rate", 95.0),
            ("debt_to_income", -0.5),
            ("num_open_accounts", -3),
        ],
        "other_out_of_range",
    )
    spread(
        [(c, UNKNOWN_CATEGORY) for c in ("home_ownership", "purpose", "region")],
        "unknown_category",
    )
    # A duplicate reuses the id of another broken row, so a uniqueness check flags bad rows only.
    at, choice = of("duplicate_id")
    donors = rows[kinds != CORRUPTION_KINDS.index("duplicate_id")]
    if at.size:
        cols["loan_id"][at] = cols["loan_id"][donors[choice % donors.size]]
    # Decades ahead (later than any plausible "now"), kept inside datetime64[ns] (< 2262).
    mask = kinds == CORRUPTION_KINDS.index("future_time")
    years = np.clip(years_ahead[mask], 1, max(1, 2260 - day.year))
    cols["event_time"][rows[mask]] += (years * 365.2425 * 86_400).astype(np.int64) * 10**9


def generate_day(
    day: datetime.date,
    n_rows: int,
    *,
    scenario: str = "none",
    drift_start: datetime.date | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """One day of loan applications with their default outcome.

    The scenario applies when ``day >= drift_start``; ``drift_start=None`` applies it from the
    first day. Same arguments give an identical frame, whatever else was generated before.
    """
    _check_scenario(scenario)
    if n_rows < 1:
        raise ValueError(f"n_rows must be >= 1, got {n_rows}")
    active = scenario if drift_start is None or day >= drift_start else "none"
    rng = _streams(seed, day)
    if active == "prior_shift":
        feats, default = _prior_shifted(rng["prior"], n_rows)
    elif active == "seasonal":
        feats = _features(rng["features"], n_rows, _seasonal_world(day, SEASONAL))
        default = _seasonal_labels(rng["labels"], rng["noise"], feats, day, SEASONAL)
    else:
        feats = _features(
            rng["features"], n_rows, _SHIFTED if active == "covariate_shift" else _STABLE
        )
        default = _labels(rng["labels"], feats, drifted=active == "concept_drift")
    cols: dict[str, np.ndarray] = {
        "loan_id": _loan_ids(day, n_rows),
        "event_time": _event_times(rng["ids"], day, n_rows),
        **{k: v for k, v in feats.items() if k not in ("home_ownership", "purpose", "region")},
        "home_ownership": np.asarray(HOME_OWNERSHIP, dtype=object)[feats["home_ownership"]],
        "purpose": np.asarray(PURPOSES, dtype=object)[feats["purpose"]],
        "region": np.asarray(REGIONS, dtype=object)[feats["region"]],
        "default": default,
    }
    _apply_nulls(rng["nulls"], cols)
    if active == "corrupt":
        _corrupt(rng["corrupt"], cols, day)
    times = pd.DatetimeIndex(cols["event_time"].astype("datetime64[ns]")).tz_localize("UTC")
    data = {name: times if name == "event_time" else cols[name] for name in COLUMNS}
    # The arrays are fresh and owned here: no copy, and no block consolidation (another copy
    # of every column, costly at large sizes).
    return pd.DataFrame(data, copy=False)


def generate_days(
    start: datetime.date,
    days: int,
    rows_per_day: int,
    *,
    scenario: str = "none",
    drift_start: datetime.date | None = None,
    seed: int = 0,
) -> Iterator[tuple[datetime.date, pd.DataFrame]]:
    """Consecutive days, lazily, so a long backfill never holds more than one day in memory.

    Arguments are checked now, not at the first day.
    """
    _check_scenario(scenario)
    if days < 0 or rows_per_day < 1:
        raise ValueError(f"need days >= 0 and rows_per_day >= 1, got {days} and {rows_per_day}")
    return (
        (
            day,
            generate_day(day, rows_per_day, scenario=scenario, drift_start=drift_start, seed=seed),
        )
        for day in (start + datetime.timedelta(days=i) for i in range(days))
    )


def labels_of(frame: pd.DataFrame) -> pd.DataFrame:
    """The delayed labels of a generated day: id and outcome only, as they arrive later.

    Why separate: in production the outcome of a loan is known weeks after it was scored; the
    drift check joins these to stored predictions by id to measure realised performance.
    """
    return frame.loc[:, ["loan_id", "default"]].reset_index(drop=True)


def write_batches(
    root: str,
    dataset: str,
    start: datetime.date,
    days: int,
    rows_per_day: int,
    *,
    scenario: str = "none",
    drift_start: datetime.date | None = None,
    seed: int = 0,
    fmt: str = "parquet",
    labels: bool = False,
) -> list[str]:
    """Write one raw file per day into the lake (local or s3://) and return their URIs.

    With `labels`, each day's labels (id + outcome) are also written to the lake's
    labels/<dataset>/<day>.parquet, as a delayed-label feed would deliver them.
    """
    lake = storage.Lake(root, dataset)
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"unknown format {fmt!r}; use 'parquet' or 'csv'")
    uris = []
    for day, frame in generate_days(
        start, days, rows_per_day, scenario=scenario, drift_start=drift_start, seed=seed
    ):
        uris.append(storage.write_frame(frame, lake.raw(day, fmt)))
        if labels:
            uris.append(storage.write_frame(labels_of(frame), lake.labels(day)))
    return uris


def _date(text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-01") from err


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; prints the written URIs, one per line."""
    parser = argparse.ArgumentParser(
        prog="python -m driftloop.data.generate",
        description="Write seeded demo loan data, one raw file per day, into a driftloop lake.",
    )
    parser.add_argument(
        "--root", default="data/lake", help="lake root: folder or s3://bucket/prefix"
    )
    parser.add_argument("--dataset", default="loans", help="dataset name in the lake layout")
    parser.add_argument("--start", type=_date, required=True, help="first day, YYYY-MM-DD")
    parser.add_argument("--days", type=int, default=1, help="number of consecutive days")
    parser.add_argument("--rows", type=int, default=2000, help="rows per day")
    parser.add_argument("--scenario", choices=SCENARIOS, default="none")
    parser.add_argument(
        "--drift-day",
        type=_date,
        default=None,
        help="first day the scenario applies (default: the first day)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument(
        "--labels", action="store_true", help="also write labels/<dataset>/<day>.parquet"
    )
    args = parser.parse_args(argv)
    if args.days < 1 or args.rows < 1 or args.seed < 0:
        parser.error("--days and --rows must be >= 1 and --seed >= 0")
    uris = write_batches(
        args.root,
        args.dataset,
        args.start,
        args.days,
        args.rows,
        scenario=args.scenario,
        drift_start=args.drift_day,
        seed=args.seed,
        fmt=args.format,
        labels=args.labels,
    )
    sys.stdout.write("".join(f"{uri}\n" for uri in uris))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
