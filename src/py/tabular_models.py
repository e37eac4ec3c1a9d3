"""Classical learners for tabular tasks, run from TypeScript (src/kinds/tabular/learners.ts) in the project venv.

The TypeScript side owns the data: it builds the feature matrix with the promoted feature transform,
assigns the cross-validation folds, and computes every metric. This script only fits: for each
candidate it returns out-of-fold probabilities (one fit per fold), then fits on all training rows,
exports the model to ONNX (skl2onnx / onnxmltools) and returns the library's own probabilities for
the rows to score, so the caller can check ONNX Runtime against them.

Request (JSON): {"x_train": path, "n_features": d, "y_train": [0|1...], "folds": [k...],
"score": [{"name", "x": path}], "candidates": [{"name", "estimator", "params"}], "seed": int,
"out_dir": path}. Matrices are little-endian float32, row-major. Progress goes to stderr.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

ESTIMATORS = ("logistic_regression", "random_forest", "lightgbm")


def make_estimator(kind: str, params: dict, seed: int):
    if kind == "logistic_regression":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(max_iter=2000, random_state=seed, **params)
    if kind == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(random_state=seed, n_jobs=-1, **params)
    if kind == "lightgbm":
        from lightgbm import LGBMClassifier

        return LGBMClassifier(random_state=seed, verbose=-1, **params)
    raise SystemExit(f"unknown estimator {kind!r} (known: {', '.join(ESTIMATORS)})")


def float32_thresholds(model) -> int:
    """Makes a LightGBM model decide exactly as its ONNX graph will, on float32 inputs.

    LightGBM keeps split thresholds as doubles; ONNX's TreeEnsemble stores them as float32, and a
    threshold that rounds up can land on a float32 input value and send it the other way (measured:
    1.3e-2 on one test row). Replacing each threshold t by the largest float32 <= t keeps every
    decision `x <= t` for every float32 x, so the model is unchanged for the float32 features it is
    given, and the export is then exact. Returns how many thresholds moved.
    """
    import lightgbm as lgb

    moved = 0

    def fix(m: re.Match) -> str:
        nonlocal moved
        out = []
        for tok in m.group(1).split():
            t = float(tok)
            f = np.float32(t)
            if float(f) > t:
                f = np.nextafter(f, np.float32(-np.inf))
            if float(f) != t:
                moved += 1
            out.append(repr(float(f)))
        return "threshold=" + " ".join(out)

    text = re.sub(r"^threshold=(.*)$", fix, model.booster_.model_to_string(), flags=re.M)
    # tree_sizes gives each tree's length in bytes, which the new numbers change; without it the trees are parsed in order.
    text = re.sub(r"^tree_sizes=.*\n", "", text, flags=re.M)
    model._Booster = lgb.Booster(model_str=text)
    return moved


def to_onnx(kind: str, model, n_features: int) -> bytes:
    """ONNX with a float32 input `features` [N, d] and a `probabilities` [N, 2] output (no ZipMap)."""
    if kind == "lightgbm":
        from onnxmltools import convert_lightgbm
        from onnxmltools.convert.common.data_types import FloatTensorType

        onx = convert_lightgbm(
            model, initial_types=[("features", FloatTensorType([None, n_features]))], zipmap=False, target_opset=15
        )
    else:
        from skl2onnx import to_onnx as skl_to_onnx
        from skl2onnx.common.data_types import FloatTensorType

        onx = skl_to_onnx(
            model,
            initial_types=[("features", FloatTensorType([None, n_features]))],
            options={id(model): {"zipmap": False}},
            target_opset={"": 15, "ai.onnx.ml": 3},
        )
    return onx.SerializeToString()


def read_matrix(file: str, n_features: int) -> np.ndarray:
    return np.fromfile(file, dtype="<f4").reshape(-1, n_features)


def versions() -> dict:
    import onnx
    import sklearn

    out = {"python": sys.version.split()[0], "numpy": np.__version__, "scikit-learn": sklearn.__version__,
           "onnx": onnx.__version__}
    for name in ("lightgbm", "skl2onnx", "onnxmltools"):
        try:
            out[name] = __import__(name).__version__
        except ImportError:
            pass
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("request", help="request JSON file")
    args = ap.parse_args()
    req = json.loads(Path(args.request).read_text())
    d = int(req["n_features"])
    x = read_matrix(req["x_train"], d)
    y = np.asarray(req["y_train"], dtype=np.int64)
    folds = np.asarray(req["folds"], dtype=np.int64)
    if len(x) != len(y) or len(y) != len(folds):
        raise SystemExit(f"x_train has {len(x)} rows, y_train {len(y)}, folds {len(folds)}")
    k = int(folds.max()) + 1
    seed = int(req.get("seed", 0))
    out_dir = Path(req["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    to_score = {s["name"]: read_matrix(s["x"], d) for s in req.get("score", [])}
    result = {"versions": versions(), "candidates": []}
    for cand in req["candidates"]:
        name, kind, params = cand["name"], cand["estimator"], cand.get("params", {})
        oof = np.zeros(len(y), dtype=np.float64)
        fit_seconds = []
        for f in range(k):
            tr, va = folds != f, folds == f
            est = make_estimator(kind, params, seed)
            t0 = time.perf_counter()
            est.fit(x[tr], y[tr])
            fit_seconds.append(time.perf_counter() - t0)
            oof[va] = est.predict_proba(x[va])[:, 1]
            print(f"{name}: fold {f + 1}/{k} fitted in {fit_seconds[-1]:.2f} s", file=sys.stderr, flush=True)
        entry = {"name": name, "estimator": kind, "params": params, "fold_fit_seconds": fit_seconds,
                 "oof_proba": oof.tolist()}
        if req.get("export", True):
            est = make_estimator(kind, params, seed)
            t0 = time.perf_counter()
            est.fit(x, y)
            entry["full_fit_seconds"] = time.perf_counter() - t0
            if kind == "lightgbm":
                before = {n: est.predict_proba(m)[:, 1] for n, m in to_score.items()}
                entry["thresholds_moved"] = float32_thresholds(est)
                # The same decisions on float32 inputs: the rounding must not change a single prediction.
                entry["rounding_max_change"] = max(
                    [float(np.abs(est.predict_proba(m)[:, 1] - before[n]).max()) for n, m in to_score.items()] or [0.0]
                )
            onnx_file = out_dir / f"{name}.onnx"
            onnx_file.write_bytes(to_onnx(kind, est, d))
            entry["onnx"] = str(onnx_file)
            entry["scores"] = {s: est.predict_proba(m)[:, 1].tolist() for s, m in to_score.items()}
            print(f"{name}: refit on all {len(y)} rows, exported {onnx_file.name}", file=sys.stderr, flush=True)
        result["candidates"].append(entry)
    (out_dir / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
