"""Monitoring -> conditional retrain: make monitor, then make retrain only when the drift policy says so.

make monitor compares the last days of the task's served traffic (SERVING_LOG_DIR) with its training
data and logs the report to MLflow; its policy's action picks what follows: none, a retrain (through
the champion/challenger gate, as `make monitor TRIGGER=1` does), or a retrain and an alert. The alert
is a task that fails, so the run shows red and the deployment's failure notifications fire.
"""
from __future__ import annotations

import re
from datetime import datetime

from airflow.sdk import Param, dag, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from convo_mlops import DEFAULT_ARGS, TS_NODE, gated_retrain, params, run, task_param


@dag(
    dag_id="convo_mlops_monitor",
    schedule="0 6 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["mlops", "monitor"],
    params={
        "task": task_param("support-category", "the promoted task to watch"),
        "days": Param(7, type="number", exclusiveMinimum=0, description="days of served traffic to compare"),
    },
)
def convo_mlops_monitor() -> None:
    @task
    def monitor() -> str:
        p = params()
        # Exit code 2 is the policy's alert: the `alert` task reports it, after the retrain is started.
        _, output = run([TS_NODE, "scripts/monitor.ts", "--task", p["task"], "--days", str(p["days"])], ok=(0, 2))
        return re.search(r"drift \w+, action (\w+)$", output, re.M).group(1)  # type: ignore[union-attr]

    @task.branch
    def decide(action: str) -> list[str]:
        return {"none": [], "retrain": ["retrain"], "retrain_and_alert": ["retrain", "alert"]}[action]

    @task
    def retrain() -> dict[str, str]:
        # A retrain already running (make retrain, the pipeline's gate) holds the lock and does this work.
        return gated_retrain(params()["task"], ("--force",), lock_held=AirflowSkipException)

    @task
    def alert() -> None:
        raise AirflowFailException(
            f"large drift in {params()['task']}'s served traffic: the model needs new experimentation "
            "(see the monitor run in MLflow)"
        )

    decide(monitor()) >> [retrain(), alert()]


convo_mlops_monitor()
