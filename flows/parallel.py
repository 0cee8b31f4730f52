"""Scale-out: the ensemble's members trained as separate Prefect tasks on a Dask cluster.

``dask_task_runner(None)`` starts a local cluster (one single-threaded worker
process per core); ``dask_task_runner("tcp://host:8786")`` uses an existing
cluster. With either, the round flow trains each member as its own task.
"""

from __future__ import annotations

import os

from prefect import task
from prefect.cache_policies import NO_CACHE


def dask_task_runner(address: str | None = None):
    """A prefect-dask task runner: local cluster when ``address`` is None."""
    from prefect_dask import DaskTaskRunner

    if address:
        return DaskTaskRunner(address=address)
    workers = max(1, os.cpu_count() or 1)
    return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True, "dashboard_address": "127.0.0.1:0"})


@task(name="train-member", cache_policy=NO_CACHE)
def train_member(model, X, y, groups):
    """Fit one (one-member) ensemble; runs on whichever worker the task runner picks."""
    import torch

    torch.set_num_threads(1)
    return model.fit(X, y, groups=groups)


def fit_members_in_tasks(models, X, y, groups) -> list:
    """Submit each member's training to the flow's task runner and wait for all."""
    futures = [train_member.submit(model, X, y, groups) for model in models]
    return [future.result() for future in futures]
