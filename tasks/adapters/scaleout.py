"""Fan-out inside a flow on an existing engine: a Dask cluster through prefect-dask.

Why one small module: partitioned scoring and hyperparameter trials both fan out on the same
cluster, described once in the `dask` config section. With `dask.address` the runner connects
to that scheduler (a multi-machine cluster); without one it starts a `LocalCluster` bound to
127.0.0.1 for the duration of the (sub)flow and stops it afterwards. Choose the runner at run
time: ``subflow.with_options(task_runner=dask_task_runner(settings.dask))``.

prefect-dask and distributed are imported lazily: importing this module costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from driftloop.configs.settings import DaskSettings

if TYPE_CHECKING:
    from prefect_dask import DaskTaskRunner


def local_cluster_kwargs(dask: DaskSettings) -> dict[str, Any]:
    """LocalCluster arguments: worker processes (no GIL sharing), loopback only.

    The scheduler always serves HTTP (dashboard, /health); ``None`` would mean the default
    fixed port 8787, which two clusters on one machine fight over: a free loopback port."""
    return {
        "n_workers": dask.n_workers,
        "threads_per_worker": dask.threads_per_worker,
        "processes": True,
        "host": "127.0.0.1",
        "dashboard_address": "127.0.0.1:0",
    }


def dask_task_runner(dask: DaskSettings) -> DaskTaskRunner:
    """A DaskTaskRunner for the configured cluster (or a LocalCluster when none is given)."""
    from prefect_dask import DaskTaskRunner

    if dask.address:
        return DaskTaskRunner(address=dask.address)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster", cluster_kwargs=local_cluster_kwargs(dask)
    )


def describe(dask: DaskSettings) -> str:
    """Where the work runs, for logs and artifacts."""
    if dask.address:
        return f"Dask cluster at {dask.address}"
    return (
        f"a LocalCluster on 127.0.0.1 ({dask.n_workers} worker processes x "
        f"{dask.threads_per_worker} threads)"
    )
