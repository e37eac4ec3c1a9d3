"""The training pipeline: data -> train -> evaluate -> register -> gated promote.

The steps a person runs (README, "The data scientist's workflow"): make prepare, make baseline, the run's
held-out scores read back from MLflow, make promote's register (a new registry version as @challenger and
config/production/<task>.json), then make retrain's champion/challenger gate, the one way @champion moves
after a first deployment: it trains the registered recipe as the challenger, scores challenger and
champion through their registered artifacts on the same held-out rows, and promotes only if the gate
passes. The last task succeeds only when @champion moved; it is skipped, with the reason, when not.

    airflow dags trigger convo_mlops_pipeline -c '{"task": "support-intent", "min_f1": 0.8}'
"""
from __future__ import annotations

import re
from datetime import datetime

from airflow.sdk import Param, dag, task
from airflow.sdk.exceptions import AirflowFailException

from convo_mlops import DEFAULT_ARGS, MAKE, TS_NODE, gated_retrain, mlflow_get, params, run, task_param


@dag(
    dag_id="convo_mlops_pipeline",
    schedule=None,  # triggered: new data or a new recipe, not the calendar
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["mlops", "train"],
    params={
        "task": task_param("support-category", "task = MLflow experiment = registered model"),
        "small_data": Param(0, type="integer", minimum=0, description="rows per split for make prepare (0: all)"),
        "min_f1": Param(None, type=["null", "number"], description="gate: minimum test macro-F1 (default 0.6)"),
        "tolerance": Param(
            None, type=["null", "number"], description="gate: how much below the champion (default 0.005)"
        ),
    },
)
def convo_mlops_pipeline() -> None:
    @task
    def prepare() -> None:
        p = params()
        small = [f"SMALL_DATA={p['small_data']}"] if p["small_data"] else []
        run([*MAKE, "prepare", f"TASK={p['task']}", *small])

    @task
    def train() -> str:
        _, output = run([*MAKE, "baseline", f"TASK={params()['task']}"])
        return re.findall(r"\brun ([0-9a-f]{32})\b", output)[-1]  # the run id make baseline prints

    @task
    def evaluate(training_run: str) -> dict[str, float]:
        """The candidate's held-out scores, as its training run logged them in MLflow."""
        r = mlflow_get("runs/get", run_id=training_run)["run"]
        metrics = {m["key"]: m["value"] for m in r["data"].get("metrics", [])}
        if r["info"]["status"] != "FINISHED" or "test_macro_f1" not in metrics:
            raise AirflowFailException(f"run {training_run} is {r['info']['status']} with no test_macro_f1")
        scores = {k: v for k, v in metrics.items() if k.startswith(("val_", "test_")) and "/" not in k}
        print(f"run {training_run}: " + ", ".join(f"{k} {v:.4f}" for k, v in sorted(scores.items())))
        return scores

    @task
    def register(training_run: str) -> str:
        _, output = run([TS_NODE, "scripts/promote.ts", "register", "--run", training_run, "--task", params()["task"]])
        return re.search(r"version (\d+); models:/", output).group(1)  # type: ignore[union-attr]

    @task
    def promote(version: str) -> dict[str, str]:
        p = params()
        gate: list[str] = []
        for key, flag in (("min_f1", "--min-f1"), ("tolerance", "--tolerance")):
            if p[key] is not None:
                gate += [flag, str(p[key])]
        print(f"version {version} is @challenger; the gate retrains its recipe and compares with @champion")
        return gated_retrain(p["task"], ("--force", *gate))

    training_run = train()
    prepare() >> training_run
    version = register(training_run)
    evaluate(training_run) >> version
    promote(version)


convo_mlops_pipeline()
