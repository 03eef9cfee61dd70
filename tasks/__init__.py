"""driftloop's steps, in three rooms.

- `core/`: the decisions and arithmetic, pure (see its docstring).
- `adapters/`: one module per outside system (see its docstring).
- this folder's modules: the Prefect tasks, grouped by the flow that runs them (`ingest.py`,
  `train.py`, `score.py`, `check_drift.py`, `rollback.py`, and `common.py` for the steps
  several flows share). Each task is a short wrapper that names a step, with retries on I/O
  only, and calls the core and the adapters; it may import `driftloop.configs` and anything
  under `driftloop.tasks`, never a flow (tests/unit/test_layout.py).
"""
