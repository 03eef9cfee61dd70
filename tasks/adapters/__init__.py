"""Adapters: one module per outside system, each returning driftloop's own types.

The lake (local folder or S3 through boto3), MLflow (tracking, registry, serving check), Great
Expectations, Evidently, the Prefect API (on-call, promotion locks, approvals, the Dask task
runner) and the webhook. A library's API changes land here and nowhere else.
They may import `driftloop.configs`, the core and each other (tests/unit/test_layout.py).
"""
