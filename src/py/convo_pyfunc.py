"""MLflow ``python_function`` flavor of the models this project logs.

The project serves its models from TypeScript (``make serve``); this module lets the same model
folders load in Python too: ``mlflow.pyfunc.load_model("models:/support-intent@champion")`` and
``mlflow models serve``. It runs the computation the TypeScript runtime runs, on the same files:

* ``tfidf-logreg``: scikit-learn-style TF-IDF (the saved token pattern and lowercasing, word n-grams,
  smooth idf, optional sublinear tf, L2 rows) and a multinomial logistic regression, in numpy
  (``src/estimators/tfidf.ts``, ``src/estimators/logreg.ts``);
* ``bert-finetune``: the Hugging Face tokenizer of the fine-tuned checkpoint and the exported ONNX
  graph (``probs`` output), in onnxruntime (``src/kinds/bert/model.ts``);
* ``frozen-encoder-logreg``: the pretrained encoder's ONNX graph (``mean_pooled`` output), L2
  normalised, and the logistic-regression head (``src/kinds/frozen-encoder/model.ts``);
* ``tabular-onnx``: the fitted feature transform (``feature_transform.json``: derived features as
  saved expressions, standardised numbers, one-hot categories; ``src/features/tabular.ts``) and the learner's ONNX graph
  (``src/kinds/tabular/model.ts``), temperature-scaled when the folder has a ``scope.json``;
* ``hybrid-frozen-logreg``: the frozen encoder's embedding of a text column and the encoded account
  features, concatenated, into a logistic-regression head (``src/kinds/hybrid/model.ts``).

Input: for the text kinds, a DataFrame with a ``text`` column (or a list of strings). Texts are taken
as they are; the project's server applies the task's cleaning first, so pass cleaned text for the same
answers. For the record kinds, a DataFrame (or a list of dicts) with the model's feature columns (and
the text column for ``hybrid-frozen-logreg``); a missing column or an undeclared category is an error
that names the column, as on the server.
Output: a DataFrame with ``label`` and one ``p(<label>)`` column per class, the model's signature.
This file (src/py/convo_pyfunc.py) is copied into every model folder (``code/``) by ``src/kinds/pyfunc.ts``.
"""

import base64
import hashlib
import json
import os
import re

import numpy as np
import pandas as pd

def _f32(b64):
    return np.frombuffer(base64.b64decode(b64), dtype="<f4").astype(np.float64)


def _logreg_head(logreg):
    """A saved logistic regression (``src/estimators/logreg.ts``): weights [features, classes] and bias."""
    k = int(logreg["numClasses"])
    return _f32(logreg["weights"]).reshape(int(logreg["numFeatures"]), k), _f32(logreg["bias"])


def _ort_session(file):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(os.environ.get("CONVO_PYFUNC_THREADS", "0"))
    return ort.InferenceSession(file, opts, providers=["CPUExecutionProvider"])


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _texts(model_input):
    if isinstance(model_input, pd.DataFrame):
        if "text" not in model_input.columns:
            raise ValueError(f"expected a 'text' column, got columns {list(model_input.columns)}")
        return [str(t) for t in model_input["text"].tolist()]
    if isinstance(model_input, dict) and "text" in model_input:
        values = model_input["text"]
        return [str(t) for t in (values if isinstance(values, (list, tuple)) else [values])]
    if isinstance(model_input, (list, tuple, np.ndarray, pd.Series)):
        return [str(t) for t in model_input]
    raise ValueError(f"unsupported input type {type(model_input).__name__}; give a DataFrame with a 'text' column")


class _TfidfLogReg:
    def __init__(self, root, spec):
        with open(os.path.join(root, spec["model_file"]), encoding="utf-8") as f:
            raw = json.load(f)
        tfidf, logreg = raw["tfidf"], raw["logreg"]
        tokens = tfidf.get("tokens")
        if tokens is None:
            raise ValueError(
                f"{spec['model_file']} has no tfidf.tokens (saved before the token rule was saved with the "
                "model): load it with the convo_pyfunc.py in its own code/ folder, or retrain it"
            )
        # The saved rule (src/estimators/tfidf.ts): its \w and \b are ASCII, as in JavaScript without `i`.
        self.token = re.compile(tokens["pattern"], re.ASCII)
        self.lowercase = bool(tokens["lowercase"])
        self.lo, self.hi = tfidf["options"]["ngramRange"]
        self.sublinear = bool(tfidf["options"]["sublinearTf"])
        self.index = {t: i for i, t in enumerate(tfidf["vocabulary"])}
        self.idf = np.asarray(tfidf["idf"], dtype=np.float64)
        self.weights, self.bias = _logreg_head(logreg)

    def _grams(self, text):
        words = [m.group(0) for m in self.token.finditer(text.lower() if self.lowercase else text)]
        return [" ".join(words[i : i + n]) for n in range(self.lo, self.hi + 1) for i in range(len(words) - n + 1)]

    def raw(self, texts):
        out = np.tile(self.bias, (len(texts), 1))
        for r, text in enumerate(texts):
            counts = {}
            for g in self._grams(text):
                i = self.index.get(g)
                if i is not None:
                    counts[i] = counts.get(i, 0) + 1
            if not counts:
                continue
            idx = np.fromiter(counts.keys(), dtype=np.int64)
            tf = np.fromiter(counts.values(), dtype=np.float64)
            values = ((1 + np.log(tf)) if self.sublinear else tf) * self.idf[idx]
            values = values.astype(np.float32).astype(np.float64)  # the TypeScript side stores float32
            norm = np.sqrt((values**2).sum())
            if norm > 0:
                values = values / norm
            out[r] += values @ self.weights[idx]
        return out, None


class _OnnxGraph:
    """A tokenizer + ONNX Runtime session over one of the project's BERT graphs, fed in batches of 32."""

    def __init__(self, root, tokenizer_dir, onnx_file, max_length):
        from tokenizers import Tokenizer

        hf = os.path.join(root, tokenizer_dir)
        self.tokenizer = Tokenizer.from_file(os.path.join(hf, "tokenizer.json"))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        pad = self.tokenizer.token_to_id("[PAD]")
        if pad is None:
            with open(os.path.join(hf, "config.json"), encoding="utf-8") as f:
                pad = json.load(f).get("pad_token_id") or 0
        self.pad_id = int(pad)
        self.max_length = int(max_length)
        self.session = _ort_session(os.path.join(root, onnx_file))
        self.inputs = {i.name for i in self.session.get_inputs()}

    def _encode(self, text):
        ids = self.tokenizer.encode(text).ids
        # Keep [CLS] + the first tokens and end with [SEP], as Hugging Face truncation does.
        return ids if len(ids) <= self.max_length else ids[: self.max_length - 1] + [ids[-1]]

    def run(self, texts, output, batch_size=32):
        return self.run_outputs(texts, [output], batch_size)[0]

    def has_output(self, name):
        return name in {o.name for o in self.session.get_outputs()}

    def run_outputs(self, texts, outputs, batch_size=32):
        rows = [[] for _ in outputs]
        for start in range(0, len(texts), batch_size):
            encoded = [self._encode(t) for t in texts[start : start + batch_size]]
            width = max(len(e) for e in encoded)
            ids = np.full((len(encoded), width), self.pad_id, dtype=np.int64)
            mask = np.zeros((len(encoded), width), dtype=np.int64)
            for r, e in enumerate(encoded):
                ids[r, : len(e)] = e
                mask[r, : len(e)] = 1
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self.inputs:
                feeds["token_type_ids"] = np.zeros_like(ids)
            for i, value in enumerate(self.session.run(outputs, feeds)):
                rows[i].append(value.astype(np.float64))
        return [np.concatenate(r) for r in rows]

    def embed(self, texts):
        """Mean-pooled encoder output, L2-normalised per row (``src/kinds/frozen-encoder/model.ts``)."""
        pooled = self.run(texts, "mean_pooled")
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.where(norms > 0, norms, 1)


class _BertClassifier:
    def __init__(self, root, spec):
        self.graph = _OnnxGraph(root, spec["hf"], spec["onnx"], spec["max_length"])
        # Graphs saved before the pooled output existed give logits only.
        self.pooled = self.graph.has_output("pooled")

    def raw(self, texts):
        if not self.pooled:
            return self.graph.run(texts, "logits"), None
        logits, pooled = self.graph.run_outputs(texts, ["logits", "pooled"])
        return logits, pooled


class _FrozenEncoderLogReg:
    def __init__(self, root, spec):
        self.graph = _OnnxGraph(root, spec["encoder"], spec["onnx"], spec["max_length"])
        with open(os.path.join(root, spec["head"]), encoding="utf-8") as f:
            self.weights, self.bias = _logreg_head(json.load(f)["logreg"])

    def raw(self, texts):
        embedded = self.graph.embed(texts)
        return embedded @ self.weights + self.bias, embedded


# Derived features are data: feature_transform.json carries each one's expression (the form of
# src/features/derived.ts, authored in notebooks/05_tabular.ipynb), and this module only evaluates it.
# tests/integration/tabular-loop.test.ts and derived-features.test.ts compare both runtimes' matrices.
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
    if op in _FOLDS and isinstance(e.get("args"), list) and len(e["args"]) >= 2:
        values = [_derived(a, records) for a in e["args"]]
        out = values[0]
        with np.errstate(divide="ignore", invalid="ignore"):  # x / 0 is +-inf, as in JavaScript
            for v in values[1:]:
                out = _FOLDS[op](out, v)
        return out
    raise ValueError(f"not a derived-feature expression: {json.dumps(e)}")


def _records(model_input):
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


def _temperature(root):
    """A record model's scope.json (score "none") temperature; 1 for folders saved without one."""
    scope_file = os.path.join(root, "scope.json")
    if not os.path.exists(scope_file):
        return 1.0
    with open(scope_file, encoding="utf-8") as f:
        return float(json.load(f)["temperature"])


class _TabularOnnx:
    input = "records"

    def __init__(self, root, spec):
        with open(os.path.join(root, spec["transform"]), encoding="utf-8") as f:
            raw = json.load(f)
        with open(os.path.join(root, spec["label_map"]), encoding="utf-8") as f:
            labels = json.load(f)["labels"]
        self.transform = FeatureTransform(raw)
        self.positive = labels.index(raw["positiveLabel"])
        self.session = _ort_session(os.path.join(root, spec["onnx"]))
        self.temperature = _temperature(root)

    def probs(self, records):
        x = self.transform.encode(records)
        p = self.session.run(["probabilities"], {"features": x})[0].astype(np.float64)
        # The learner's column 1 is the positive class; the output follows the label map's order.
        out = np.empty_like(p)
        out[:, self.positive] = p[:, 1]
        out[:, 1 - self.positive] = p[:, 0]
        if self.temperature == 1.0:
            return out
        # softmax(log p / T), log p floored at 1e-12 (src/evaluate/calibration.ts: logitsOfProbs); the
        # TypeScript side scales the float32 probabilities it serves.
        return _softmax(np.log(np.maximum(out.astype(np.float32).astype(np.float64), 1e-12)) / self.temperature)


class _HybridFrozenLogReg:
    """The frozen encoder's L2-normalised embedding of the record's text, then the encoded account
    features, into one logistic-regression head (``src/kinds/hybrid/model.ts``)."""

    input = "records"

    def __init__(self, root, spec):
        with open(os.path.join(root, spec["head"]), encoding="utf-8") as f:
            head = json.load(f)
        with open(os.path.join(root, spec["transform"]), encoding="utf-8") as f:
            self.transform = FeatureTransform(json.load(f))
        self.text_column = head["textColumn"]
        self.graph = _OnnxGraph(root, spec["encoder"], spec["onnx"], head["maxLength"])
        self.weights, self.bias = _logreg_head(head["logreg"])
        self.temperature = _temperature(root)

    def probs(self, records):
        texts = []
        for i, r in enumerate(records):
            text = r.get(self.text_column)
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"row {i}: column {self.text_column!r} must be a non-empty text")
            texts.append(text)
        # The TypeScript side concatenates float32 embeddings with the features.
        embeddings = self.graph.embed(texts).astype(np.float32).astype(np.float64)
        x = np.concatenate([embeddings, self.transform.encode(records).astype(np.float64)], axis=1)
        return _softmax((x @ self.weights + self.bias) / self.temperature)


_KINDS = {
    "tfidf-logreg": _TfidfLogReg,
    "bert-finetune": _BertClassifier,
    "frozen-encoder-logreg": _FrozenEncoderLogReg,
    "tabular-onnx": _TabularOnnx,
    "hybrid-frozen-logreg": _HybridFrozenLogReg,
}


class _Scope:
    """A text model's scope.json (``src/kinds/scope/rule.ts``): temperature, out-of-scope score and threshold.

    ``mahalanobis+knn`` also embeds the texts with the pretrained encoder the folder carries and takes
    the cosine similarity to the nearest training text (the bank file, checked by its sha256); both
    parts are z-scored with the saved scales and weighted.
    """

    def __init__(self, root, path):
        with open(path, encoding="utf-8") as f:
            s = json.load(f)
        self.temperature = float(s["temperature"])
        self.score = s["score"]
        self.threshold = float(s["threshold"])
        self.fallback_label = s["fallback_label"]
        if self.score == "mahalanobis+knn":
            n = s["knn"]
            with open(os.path.join(root, n["bank"]), "rb") as f:
                raw = f.read()
            if hashlib.sha256(raw).hexdigest() != n["sha256"]:
                raise ValueError(f"{n['bank']} is not the neighbour bank scope.json was fitted with (sha256 differs)")
            self.bank = np.frombuffer(raw, dtype="<f4").astype(np.float64).reshape(int(n["rows"]), int(n["dim"]))
            encoder = n["encoder"]
            self.view = _OnnxGraph(root, encoder, os.path.join(encoder, "model.onnx"), n["max_length"])
            self.weight = float(n["weight"])
            self.scales = (n["mahalanobis_scale"], n["knn_scale"])
        if self.score in ("mahalanobis", "mahalanobis+knn"):
            m = s["mahalanobis"]
            dim = int(m["dim"])
            chol = np.frombuffer(base64.b64decode(m["cholesky"]), dtype="<f4").astype(np.float64).reshape(dim, dim)
            means = np.frombuffer(base64.b64decode(m["means"]), dtype="<f4").astype(np.float64).reshape(-1, dim)
            # d_c(x) = |L^-1 x - L^-1 mu_c|^2: whiten once, then Euclidean distances to the whitened means.
            self.whiten = np.linalg.solve(chol, np.eye(dim)).T
            self.means = means @ self.whiten

    def scores(self, logits, features, texts):
        if self.score == "none":
            return np.full(len(logits), np.inf)
        if self.score == "msp":
            return _softmax(logits / self.temperature).max(axis=1)
        if self.score == "energy":
            m = logits.max(axis=1, keepdims=True)
            return (m + np.log(np.exp(logits - m).sum(axis=1, keepdims=True)))[:, 0]
        if features is None:
            raise ValueError("this model's graph gives no pooled features for its Mahalanobis score")
        z = features @ self.whiten
        d = (z**2).sum(axis=1, keepdims=True) - 2 * z @ self.means.T + (self.means**2).sum(axis=1)
        maha = -d.min(axis=1)
        if self.score == "mahalanobis":
            return maha
        # The TypeScript side embeds in float32.
        view = self.view.embed(texts).astype(np.float32).astype(np.float64)
        nearest = (view @ self.bank.T).max(axis=1)
        (m, k), w = self.scales, self.weight
        return w * (maha - m["mean"]) / m["std"] + (1 - w) * (nearest - k["mean"]) / k["std"]


class ConversationClassifier:
    """What ``mlflow.pyfunc.load_model`` returns the ``predict`` of."""

    def __init__(self, root, spec):
        with open(os.path.join(root, spec["label_map"]), encoding="utf-8") as f:
            self.labels = json.load(f)["labels"]
        if spec["kind"] not in _KINDS:
            raise ValueError(f"unknown model kind {spec['kind']!r}; this module serves {sorted(_KINDS)}")
        self.model = _KINDS[spec["kind"]](root, spec)
        scope_file = os.path.join(root, "scope.json")
        self.scope = _Scope(root, scope_file) if os.path.exists(scope_file) else None

    def predict(self, model_input, params=None):
        columns = ["label", "top_label", "confidence", "in_scope", *[f"p({label})" for label in self.labels]]
        is_text = getattr(self.model, "input", "text") != "records"
        rows = _texts(model_input) if is_text else _records(model_input)
        if not rows:
            return pd.DataFrame(columns=columns)
        in_scope = np.ones(len(rows), dtype=bool)
        if is_text:
            logits, features = self.model.raw(rows)
            temperature = self.scope.temperature if self.scope else 1.0
            probs = _softmax(logits / temperature)
            if self.scope:
                in_scope = self.scope.scores(logits, features, rows) >= self.scope.threshold
        else:
            probs = self.model.probs(rows)
        top = [self.labels[i] for i in probs.argmax(axis=1)]
        frame = pd.DataFrame(probs, columns=[f"p({label})" for label in self.labels])
        fallback = self.scope.fallback_label if self.scope else None
        frame.insert(0, "label", [t if ok else fallback for t, ok in zip(top, in_scope)])
        frame.insert(1, "top_label", top)
        frame.insert(2, "confidence", probs.max(axis=1))
        frame.insert(3, "in_scope", in_scope)
        return frame


def _load_pyfunc(data_path):
    """MLflow's entry point: ``data_path`` is the flavor's ``data`` file (pyfunc.json) in the model folder."""
    with open(data_path, encoding="utf-8") as f:
        spec = json.load(f)
    return ConversationClassifier(os.path.dirname(os.path.abspath(data_path)), spec)
