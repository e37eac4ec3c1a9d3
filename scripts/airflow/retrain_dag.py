"""Airflow alternative to `make schedule`: the same `make retrain-all` (every promoted task), weekly.

Copy this file into your Airflow dags/ folder and set PROJECT_DIR to the project checkout
(the machine running the task needs the project set up with `make setup`).
"""
import os
from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator

PROJECT_DIR = os.environ.get("CONVO_MLOPS_DIR", "/opt/convo-mlops")

with DAG(
    dag_id="convo_mlops_weekly_retrain",
    schedule="0 3 * * 1",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=30)},
    tags=["mlops", "retrain"],
) as dag:
    # make retrain holds a lock, so an overlapping run fails fast instead of training twice.
    BashOperator(task_id="retrain", bash_command=f"cd {PROJECT_DIR} && make retrain-all")
