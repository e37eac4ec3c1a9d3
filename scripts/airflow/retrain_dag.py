"""Airflow alternative to `make schedule`: `make retrain-all` weekly, one mapped task per promoted task.

Each task runs what `make retrain TASK=<task>` runs (scripts/retrain.ts: new labelled data in
data/incoming/<task>/ -> drift gate -> champion/challenger gate). One task per promoted task, so one
task's held lock or failure never hides another's result. Needs the project set up (`make setup`) at CONVO_MLOPS_DIR on the worker.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowSkipException

from convo_mlops import DEFAULT_ARGS, gated_retrain, project_dir


@dag(
    dag_id="convo_mlops_weekly_retrain",
    schedule="0 3 * * 1",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["mlops", "retrain"],
)
def convo_mlops_weekly_retrain() -> None:
    @task
    def promoted_tasks() -> list[str]:
        return sorted(p.stem for p in Path(project_dir(), "config", "production").glob("*.json"))

    @task
    def retrain(name: str) -> dict[str, str]:
        # A retrain already running for this task (by hand, or another DAG) holds the lock and does this work.
        return gated_retrain(name, lock_held=AirflowSkipException)

    retrain.expand(name=promoted_tasks())


convo_mlops_weekly_retrain()
