"""The core: driftloop's decisions and arithmetic, as plain functions on plain values.

Contract rules and the batch verdict, metrics, the gate and its evidence, drift signals, the
retraining policy, search planning, lineage, the backtest's replay. Nothing here touches an
outside system: no files, no network, no Prefect, MLflow, Great Expectations or Evidently.
It may import `driftloop.configs` and other core modules only (tests/unit/test_layout.py).
"""
