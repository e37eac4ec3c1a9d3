"""Optuna, driven over JSON lines by src/tune/optuna.ts (ask/tell; the study lives in an RDB storage).

One request per line on stdin, one response per line on stdout:
  {"id": 1, "op": "open", ...}  ->  {"id": 1, "ok": true, "result": {...}}  or  {"id": 1, "ok": false, "error": "..."}
The process exits when stdin closes, so a killed driver leaves no bridge behind; its running trials are
then failed (and retried with the same parameters) by the next driver, through Optuna's own heartbeat
and RetryHeartbeatStaleTrialCallback, or at once when the dead driver ran on this host.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import sys
import threading
import time
import traceback
import warnings
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.trial import TrialState

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
# Optuna records heartbeats itself only inside Study.optimize; with ask/tell this bridge records them.
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed")
logging.getLogger("alembic").setLevel(logging.WARNING)

OWNER_ATTR = "convo.owner"  # "<host>:<pid>" of the driver that asked the trial
HOST = socket.gethostname()


class Bridge:
    def __init__(self) -> None:
        self.study: optuna.Study | None = None
        self.storage: RDBStorage | None = None
        self.trials: dict[int, optuna.Trial] = {}
        self.owner = ""
        self.retry: RetryHeartbeatStaleTrialCallback | None = None
        self.lock = threading.Lock()
        self.beat_stop = threading.Event()

    # ---- ops ------------------------------------------------------------------------------
    def open(self, req: dict[str, Any]) -> dict[str, Any]:
        hb = req.get("heartbeat", {})
        self.retry = RetryHeartbeatStaleTrialCallback(max_retry=int(req.get("max_retry", 2)))
        self.storage = RDBStorage(
            req["storage"],
            heartbeat_interval=int(hb.get("interval", 10)),
            grace_period=int(hb.get("grace", 60)),
            heartbeat_stale_trial_callback=self.retry,
        )
        self.study = optuna.create_study(
            storage=self.storage,
            study_name=req["study"],
            direction=req.get("direction", "maximize"),
            sampler=make_sampler(req.get("sampler", {}), req.get("space", [])),
            pruner=make_pruner(req.get("pruner", {})),
            load_if_exists=True,
        )
        self.owner = f"{HOST}:{int(req['owner_pid'])}"
        for key, value in req.get("study_attrs", {}).items():
            if key not in self.study.user_attrs:
                self.study.set_user_attr(key, value)
        threading.Thread(target=self._heartbeats, daemon=True).start()
        return {"failed_stale": self.fail_stale(), **self.summary({})}

    def fail_stale(self, _req: dict[str, Any] | None = None) -> list[int]:
        """Fails RUNNING trials whose driver is gone: dead pid on this host now, else by heartbeat."""
        assert self.study and self.storage and self.retry
        failed: list[int] = []
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            owner = str(t.user_attrs.get(OWNER_ATTR, ""))
            host, _, pid = owner.rpartition(":")
            if host == HOST and pid.isdigit() and owner != self.owner and not pid_alive(int(pid)):
                if self.storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL):
                    self.retry(self.study, self.storage.get_trial(t._trial_id))
                    failed.append(t.number)
        before = {t.number for t in self.study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
        fail_stale_trials(self.study)
        after = {t.number for t in self.study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
        return sorted(failed + list(after - before))

    def ask(self, req: dict[str, Any]) -> dict[str, Any]:
        assert self.study and self.storage
        trial = self.study.ask(distributions(req["space"]))
        trial.set_user_attr(OWNER_ATTR, self.owner)
        with self.lock:
            self.trials[trial.number] = trial
        self.storage.record_heartbeat(trial._trial_id)
        frozen = self.storage.get_trial(trial._trial_id)
        return {
            "number": trial.number,
            "params": trial.params,
            # A retry of a trial whose driver died (RetryHeartbeatStaleTrialCallback): the same parameters again.
            "retry_of": frozen.system_attrs.get("failed_trial"),
        }

    def enqueue(self, req: dict[str, Any]) -> None:
        """Queues fixed parameters as a coming trial, unless a trial with them exists (resumes stay single)."""
        assert self.study
        self.study.enqueue_trial(req["params"], skip_if_exists=True)

    def set_attr(self, req: dict[str, Any]) -> None:
        self._trial(req["number"]).set_user_attr(req["key"], req["value"])

    def set_study_attr(self, req: dict[str, Any]) -> dict[str, Any]:
        """Sets a study attribute unless one is there already; returns the value that holds."""
        assert self.study
        if req.get("overwrite") or self.study.user_attrs.get(req["key"]) is None:
            self.study.set_user_attr(req["key"], req["value"])
            # Two drivers may both have seen no value: let both writes land, then all read the last one.
            time.sleep(float(req.get("settle_s", 0.5)))
        return {"value": self.study.user_attrs[req["key"]]}

    def report(self, req: dict[str, Any]) -> dict[str, Any]:
        trial = self._trial(req["number"])
        trial.report(float(req["value"]), int(req["step"]))
        return {"prune": bool(trial.should_prune())}

    def tell(self, req: dict[str, Any]) -> dict[str, Any]:
        assert self.study
        state = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "fail": TrialState.FAIL}[req["state"]]
        value = req.get("value")
        frozen = self.study.tell(
            req["number"],
            values=None if state != TrialState.COMPLETE else float(value),
            state=state,
            skip_if_finished=True,
        )
        with self.lock:
            self.trials.pop(req["number"], None)
        return trial_json(frozen)

    def summary(self, _req: dict[str, Any]) -> dict[str, Any]:
        assert self.study
        trials = self.study.get_trials(deepcopy=False)
        counts = {s.name.lower(): 0 for s in TrialState}
        for t in trials:
            counts[t.state.name.lower()] += 1
        best = None
        if counts["complete"]:
            b = self.study.best_trial
            best = {"number": b.number, "value": b.value, "params": b.params}
        return {
            "study": self.study.study_name,
            "counts": counts,
            "best": best,
            "user_attrs": self.study.user_attrs,
            "trials": [trial_json(t) for t in trials],
        }

    def importances(self, _req: dict[str, Any]) -> dict[str, float]:
        assert self.study
        complete = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if len(complete) < 2:
            return {}
        try:
            return {k: float(v) for k, v in optuna.importance.get_param_importances(self.study).items()}
        except (RuntimeError, ValueError):  # a space with one distinct value per param says nothing
            return {}

    # ---- plumbing -------------------------------------------------------------------------
    def _trial(self, number: int) -> optuna.Trial:
        with self.lock:
            trial = self.trials.get(int(number))
        if trial is None:
            raise KeyError(f"trial {number} was not asked by this driver")
        return trial

    def _heartbeats(self) -> None:
        assert self.storage
        interval = self.storage.get_heartbeat_interval() or 10
        while not self.beat_stop.wait(interval):
            with self.lock:
                ids = [t._trial_id for t in self.trials.values()]
            for trial_id in ids:
                try:
                    self.storage.record_heartbeat(trial_id)
                except Exception:  # noqa: BLE001 - a missed beat is retried next interval
                    pass


def make_sampler(cfg: dict[str, Any], space: list[dict[str, Any]]) -> optuna.samplers.BaseSampler:
    name = cfg.get("name", "tpe")
    seed = cfg.get("seed")
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=int(cfg.get("startup_trials", 10)))
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        return optuna.samplers.GridSampler(grid_space(space), seed=seed)
    raise ValueError(f"unknown sampler {name!r}: tpe, random or grid")


def make_pruner(cfg: dict[str, Any]) -> optuna.pruners.BasePruner:
    name = cfg.get("name", "median")
    if name == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=int(cfg.get("startup_trials", 5)), n_warmup_steps=int(cfg.get("warmup_steps", 1))
        )
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=int(cfg.get("min_resource", 1)),
            max_resource=cfg.get("max_resource", "auto"),
            reduction_factor=int(cfg.get("reduction_factor", 3)),
        )
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"unknown pruner {name!r}: median, hyperband or none")


def distributions(space: list[dict[str, Any]]) -> dict[str, optuna.distributions.BaseDistribution]:
    out: dict[str, optuna.distributions.BaseDistribution] = {}
    for p in space:
        kind = p["type"]
        if kind == "float":
            out[p["name"]] = FloatDistribution(p["low"], p["high"], log=bool(p.get("log")), step=p.get("step"))
        elif kind == "int":
            out[p["name"]] = IntDistribution(p["low"], p["high"], log=bool(p.get("log")), step=int(p.get("step", 1)))
        elif kind == "categorical":
            out[p["name"]] = CategoricalDistribution(p["choices"])
        else:
            raise ValueError(f"parameter {p['name']}: unknown type {kind!r}")
    return out


def grid_space(space: list[dict[str, Any]]) -> dict[str, list[Any]]:
    grid: dict[str, list[Any]] = {}
    for p in space:
        if p["type"] == "categorical":
            grid[p["name"]] = list(p["choices"])
        elif p["type"] == "int" and not p.get("log"):
            grid[p["name"]] = list(range(p["low"], p["high"] + 1, int(p.get("step", 1))))
        else:
            raise ValueError(f"grid sampler: parameter {p['name']} needs choices (categorical or stepped int)")
    return grid


def trial_json(t: optuna.trial.FrozenTrial) -> dict[str, Any]:
    value = t.value if t.value is None or math.isfinite(t.value) else None
    return {
        "number": t.number,
        "state": t.state.name.lower(),
        "value": value,
        "params": t.params,
        "intermediate": {str(k): v for k, v in t.intermediate_values.items()},
        "user_attrs": t.user_attrs,
        "retry_of": t.system_attrs.get("failed_trial"),
        "duration_s": t.duration.total_seconds() if t.duration else None,
    }


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


OPS = ("open", "enqueue", "ask", "report", "tell", "set_attr", "set_study_attr", "summary", "fail_stale", "importances")


def main() -> None:
    bridge = Bridge()
    out = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        req: dict[str, Any] = {}
        try:
            req = json.loads(line)
            op = req.get("op")
            if op not in OPS:
                raise ValueError(f"unknown op {op!r}")
            result = getattr(bridge, op)(req)
            out.write(json.dumps({"id": req.get("id"), "ok": True, "result": result}) + "\n")
        except Exception as e:  # noqa: BLE001 - every error goes back to the driver as text
            msg = f"{type(e).__name__}: {e}"
            out.write(json.dumps({"id": req.get("id"), "ok": False, "error": msg, "trace": traceback.format_exc()}) + "\n")
        out.flush()
    bridge.beat_stop.set()


if __name__ == "__main__":
    main()
