"""Hyperparameter search: planning, choosing and config errors (pure functions, no servers)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from driftloop.configs.settings import ConfigError, ModelSettings, SearchSettings, load_settings
from driftloop.tasks.core.search import (
    SearchConfigError,
    TrialResult,
    carve_validation,
    choose_best,
    plan_trials,
    with_params,
)
from driftloop.tasks.core.training import Split

HGB = ModelSettings()


def search(**kw) -> SearchSettings:
    return SearchSettings(**{"params": {"max_depth": [3, 5], "learning_rate": [0.05, 0.1]}, **kw})


def test_grid_tries_every_combination_in_written_order() -> None:
    assert plan_trials(search(), HGB) == [
        {"max_depth": 3, "learning_rate": 0.05},
        {"max_depth": 3, "learning_rate": 0.1},
        {"max_depth": 5, "learning_rate": 0.05},
        {"max_depth": 5, "learning_rate": 0.1},
    ]


def test_random_draws_distinct_seeded_combinations() -> None:
    first = plan_trials(search(strategy="random", trials=3, seed=1), HGB)
    assert len(first) == 3 and len({tuple(p.items()) for p in first}) == 3
    assert first == plan_trials(search(strategy="random", trials=3, seed=1), HGB), "seeded"
    everything = plan_trials(search(strategy="random", trials=10), HGB)
    assert len(everything) == 4, "never more trials than distinct combinations"


def test_unknown_parameter_fails_naming_the_key() -> None:
    with pytest.raises(SearchConfigError, match=r"'model\.search\.params\.max_dept'.*max_depth"):
        plan_trials(SearchSettings(params={"max_dept": [3]}), HGB)


@pytest.mark.parametrize(
    ("search_config", "expected"),
    [
        ({"params": {}}, "'model.search.params' is empty"),
        ({"params": {"max_depth": []}}, "'model.search.params.max_depth' has no values"),
        ({"strategy": "random", "params": {"max_depth": [3]}}, "'model.search.trials' is required"),
        ({"params": {"max_depth": [3, 5, 7]}, "trials": 2}, "'model.search.trials' is 2"),
        ({"params": {"max_depth": [3]}, "metric": "auc"}, "model.search.metric"),
        ({"params": {"max_depth": [3]}, "stratgy": "grid"}, "unknown key 'model.search.stratgy'"),
    ],
)
def test_bad_search_config_fails_at_load_naming_the_key(search_config, expected) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings("local", {"model.search": search_config})
    assert expected in str(err.value)


def trial(index: int, value: float, metric: str = "roc_auc") -> TrialResult:
    return TrialResult(index=index, params={"max_depth": index}, metric=metric, value=value,
                       rows_fit=10, rows_validation=5, started_ms=0, seconds=0.1)  # fmt: skip


@pytest.mark.parametrize(
    ("metric", "values", "best"),
    [
        ("roc_auc", [0.71, 0.74, 0.73], 1),  # higher is better
        ("log_loss", [0.41, 0.38, 0.45], 1),  # lower is better
        ("roc_auc", [0.74, 0.74, 0.70], 0),  # a tie goes to the earliest trial
        ("roc_auc", [math.nan, 0.60, 0.59], 1),  # a NaN score never wins
    ],
)
def test_best_trial_is_chosen_by_the_metric(metric, values, best) -> None:
    results = [trial(i, v, metric) for i, v in reversed(list(enumerate(values)))]
    outcome = choose_best(results, SearchSettings(params={"max_depth": [1]}, metric=metric))
    assert outcome.best.index == best
    assert [t.index for t in outcome.trials] == [0, 1, 2]
    assert [row["chosen"] for row in outcome.table()] == [
        "yes" if i == best else "" for i in range(3)
    ]


def test_no_scored_trial_is_a_clear_error() -> None:
    with pytest.raises(SearchConfigError, match="validation_size"):
        choose_best([trial(0, math.nan)], SearchSettings(params={"max_depth": [1]}))


def test_validation_rows_come_from_the_training_part_only() -> None:
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.random(400)})
    y = pd.Series((rng.random(400) < 0.3).astype(int))
    split = Split(x.iloc[:300], y.iloc[:300], x.iloc[300:], y.iloc[300:])
    data = carve_validation(split, SearchSettings(params={"max_depth": [1]}), seed=0)
    assert len(data.x_fit) + len(data.x_val) == 300 and len(data.x_val) == 60
    held_out = set(x.iloc[300:]["a"])
    assert not held_out & set(data.x_val["a"]) and not held_out & set(data.x_fit["a"])


def test_chosen_params_go_over_the_configured_ones() -> None:
    settings = load_settings("local")
    chosen = with_params(settings, {"max_depth": 5})
    assert chosen.model.params["max_depth"] == 5
    assert chosen.model.params["learning_rate"] == settings.model.params["learning_rate"]
    assert settings.model.params["max_depth"] == 3, "the config itself is unchanged"
