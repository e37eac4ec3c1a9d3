"""What the convo-mlops DAGs share: where the project is, and how a task runs one of its commands.

Every task runs a `make` target or a project CLI (scripts/*.ts) in the checkout named by CONVO_MLOPS_DIR,
with the worker's environment (MLFLOW_TRACKING_URI and the project's other variables, see README
"Configuration"), so Airflow runs exactly what a person runs by hand. Commands whose exit code means
something (retrain, monitor, promote) are called directly: make turns every failing exit code into 2.
"""
from __future__ import annotations

import base64
import json
import os
import re
import shlex
import subprocess
from typing import Any
from urllib.parse import urlencode
from urllib.request import Request, urlopen

from airflow.sdk import Param, get_current_context
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

TS_NODE = "node_modules/.bin/ts-node"
MAKE = ["make", "--no-print-directory"]

# Retries are for a flaky moment (MLflow restarting, a full disk); their delay is the deployment's
# [core] default_task_retry_delay (300 s unless configured).
DEFAULT_ARGS: dict[str, Any] = {"retries": 2}

# src/production/lock.ts: a second retrain, promotion or rollback of a task stops at once (exit 1)
# with "<task>.lock is held (<purpose>, pid <n> on <host>, since <time>); not starting a second one."
LOCK_HELD = re.compile(r"\S+\.lock is held \([^)]*\)|could not take the lock \S+")


def project_dir() -> str:
    return os.environ.get("CONVO_MLOPS_DIR", "/opt/convo-mlops")


def task_param(default: str, description: str) -> Param:
    """A `task` param that only a declared task passes (src/data/task-names.json, the list make also checks):
    a trigger's conf is refused before any command is built from it."""
    try:
        with open(os.path.join(project_dir(), "src", "data", "task-names.json"), encoding="utf-8") as f:
            names = json.load(f)
        return Param(default, type="string", enum=names, description=description)
    except FileNotFoundError:  # parsed where the project is not checked out: at least a plain name
        return Param(default, type="string", pattern=r"^[a-z][a-z0-9-]*$", description=description)


def params() -> dict[str, Any]:
    """The run's params: the DAG's defaults, overridden by the trigger's conf."""
    return dict(get_current_context()["params"])


def run(
    args: list[str],
    ok: tuple[int, ...] = (0,),
    lock_held: type[Exception] = AirflowFailException,
) -> tuple[int, str]:
    """Runs a command in the project, its output streamed to the task log; returns (exit code, output).

    An exit code outside `ok` fails the task, and Airflow retries it; a held production lock does not:
    another retrain, promotion or rollback of the task is running, and retrying into it only fights it.
    It raises `lock_held` instead (AirflowFailException, or AirflowSkipException where the other run
    does this task's work anyway); neither is retried.
    """
    print(f"$ {shlex.join(args)}    (in {project_dir()})", flush=True)
    proc = subprocess.Popen(
        args, cwd=project_dir(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        print(line, end="", flush=True)
        lines.append(line)
    code = proc.wait()
    output = "".join(lines)
    if code in ok:
        return code, output
    held = LOCK_HELD.search(output)
    if held:
        raise lock_held(f"{held.group(0)}: another retrain, promotion or rollback of the task is running")
    raise RuntimeError(f"`{shlex.join(args)}` exited with code {code}")


def gated_retrain(
    task: str, extra: tuple[str, ...] = (), lock_held: type[Exception] = AirflowFailException
) -> dict[str, str]:
    """`make retrain` (scripts/retrain.ts run): a challenger of the promoted recipe, scored with the champion
    through their registered artifacts on the same held-out rows; @champion moves only if the gate passes.

    The task's state says whether it moved: success = promoted; skipped (with the reason) = @champion
    unchanged (gate refused, no new data, no drift); failed without retry = drift alert (exit 2).
    """
    code, output = run(
        [TS_NODE, "scripts/retrain.ts", "run", "--task", task, *extra], ok=(0, 2), lock_held=lock_held
    )
    found = re.search(r"^decision: (\S+) - (.*)$", output, re.M)
    if not found:
        raise RuntimeError("scripts/retrain.ts printed no decision")
    decision, reason = found.groups()
    if code == 2:
        raise AirflowFailException(
            f"{task}: {decision}, and ALERT: large drift in the new data, the model needs new experimentation"
        )
    if decision != "promoted":
        raise AirflowSkipException(f"{task}: @champion unchanged: {decision} ({reason})")
    return {"decision": decision, "reason": reason}


def mlflow_get(endpoint: str, **query: str) -> dict[str, Any]:
    """GET on MLflow's REST API at MLFLOW_TRACKING_URI, signed in as the project's client is."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000").rstrip("/")
    req = Request(f"{uri}/api/2.0/mlflow/{endpoint}?{urlencode(query)}")
    if user := os.environ.get("MLFLOW_TRACKING_USERNAME"):
        basic = f"{user}:{os.environ.get('MLFLOW_TRACKING_PASSWORD', '')}".encode()
        req.add_header("Authorization", f"Basic {base64.b64encode(basic).decode()}")
    elif token := os.environ.get("MLFLOW_TRACKING_TOKEN"):
        req.add_header("Authorization", f"Bearer {token}")
    with urlopen(req, timeout=30) as res:
        return json.load(res)
