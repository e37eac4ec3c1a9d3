"""The record side of the ``python_function`` flavor (``convo_pyfunc.py``): a fitted feature transform
(``feature_transform.json``, ``src/features/tabular.ts``) that turns records into float32 rows.

Derived features are data: the transform carries each one's expression (the form of
``src/features/derived.ts``, authored in notebooks/05_tabular.ipynb), and this module only evaluates
the saved expressions; it holds no feature names or formulas. Copied into every model folder beside
``convo_pyfunc.py`` by ``src/kinds/pyfunc.ts``. tests/integration/tabular-loop.test.ts and
derived-single-source.test.ts (an expression edited in the notebook) compare both runtimes' matrices.
"""

import json

import numpy as np
import pandas as pd

_FOLDS = {
    "add": np.add,
    "mul": np.multiply,
    "sub": np.subtract,
    "div": np.divide,
    "max": np.maximum,  # NaN-propagating, as JavaScript's Math.max
    "min": np.minimum,
}


def _derived(e, records):
    """The float64 values of expression ``e`` over validated records (a vector, one per record)."""
    op = e.get("op") if isinstance(e, dict) else None
    if op == "col":
        return np.array([float(r[e["name"]]) for r in records], dtype=np.float64)
    if op == "const":
        return np.full(len(records), float(e["value"]))
    if op == "eq":
        return np.array([str(r[e["col"]]) == e["value"] for r in records], dtype=np.float64)
    if op == "count":
        return np.array([sum(str(r[c]) == e["value"] for c in e["cols"]) for r in records], dtype=np.float64)
    args = e.get("args") if op in _FOLDS else None
    if isinstance(args, list) and (len(args) == 2 if op in ("sub", "div") else len(args) >= 2):
        values = [_derived(a, records) for a in args]
        out = values[0]
        with np.errstate(divide="ignore", invalid="ignore"):  # x / 0 is +-inf, as in JavaScript
            for v in values[1:]:
                out = _FOLDS[op](out, v)
        return out
    raise ValueError(f"not a derived-feature expression: {json.dumps(e)}")


def as_records(model_input):
    if isinstance(model_input, pd.DataFrame):
        return model_input.to_dict(orient="records")
    if isinstance(model_input, dict):
        return pd.DataFrame(model_input).to_dict(orient="records")
    if isinstance(model_input, (list, tuple)) and all(isinstance(r, dict) for r in model_input):
        return list(model_input)
    raise ValueError(f"unsupported input type {type(model_input).__name__}; give a DataFrame of feature columns")


class FeatureTransform:
    """The fitted encoding of ``feature_transform.json``: a record becomes one float32 row."""

    def __init__(self, t):
        expressions = t.get("expressions") or {}
        missing = [d for d in t["derived"] if d not in expressions]
        if missing:
            raise ValueError(
                f"feature_transform.json names derived feature(s) {missing} without their expressions "
                "(saved before derived features were saved as expressions): load the model with the "
                "convo_pyfunc.py in its own code/ folder, or refit it"
            )
        self.expressions = {d: expressions[d] for d in t["derived"]}
        self.columns = t["columns"]
        self.numeric = t["numeric"]
        self.categorical = t["categorical"]
        self.width = len(t["outputs"])

    def _checked(self, i, record):
        r = dict(record)
        for c in self.columns:
            name = c["name"]
            if name not in r or r[name] is None or (isinstance(r[name], float) and np.isnan(r[name])):
                raise ValueError(f"row {i}: column {name!r} is missing")
            if c["type"] == "number":
                try:
                    r[name] = float(r[name])
                except (TypeError, ValueError):
                    raise ValueError(f"row {i}: column {name!r} must be a number, got {r[name]!r}") from None
            elif str(r[name]) not in c["values"]:
                raise ValueError(f"row {i}: column {name!r} has {r[name]!r}, not one of {c['values']}")
        return r

    def encode(self, records):
        out = np.zeros((len(records), self.width), dtype=np.float32)
        checked = [self._checked(i, record) for i, record in enumerate(records)]
        derived = {name: _derived(e, checked) for name, e in self.expressions.items()}
        for i, r in enumerate(checked):
            for name, values in derived.items():
                r[name] = values[i]
            j = 0
            for n in self.numeric:
                out[i, j] = (float(r[n["name"]]) - n["mean"]) / n["std"]
                j += 1
            for c in self.categorical:
                value = str(r[c["name"]])
                if value in c["categories"]:
                    out[i, j + c["categories"].index(value)] = 1
                j += len(c["categories"])
        return out
