"""MLflow ``python_function`` flavor of the models this project logs.

The project serves its models from TypeScript (``make serve``); this module lets the same model
folders load in Python too: ``mlflow.pyfunc.load_model("models:/support-intent@champion")`` and
``mlflow models serve``. It runs the computation the TypeScript runtime runs, on the same files:

* ``tfidf-logreg``: scikit-learn-style TF-IDF (the saved token pattern and lowercasing, word n-grams,
  smooth idf, optional sublinear tf, L2 rows) and a multinomial logistic regression, in numpy
  (``src/estimators/tfidf.ts``, ``src/estimators/logreg.ts``);
* text kinds with a ``scope.json``: the out-of-scope rule's ONNX graph (``scope.onnx``), run as saved;
* ``bert-finetune``: the Hugging Face tokenizer of the fine-tuned checkpoint and the exported ONNX
  graph (``probs`` output), in onnxruntime (``src/kinds/bert/model.ts``);
* ``frozen-encoder-logreg``: the pretrained encoder's ONNX graph (``mean_pooled`` output), L2
  normalised, and the logistic-regression head (``src/kinds/frozen-encoder/model.ts``);
* ``tabular-onnx``: the fitted feature transform (``feature_transform.json``: derived features as
  saved expressions, standardised numbers, one-hot categories; ``src/features/tabular.ts``,
  ``convo_features.py``) and the learner's ONNX graph (``src/kinds/tabular/model.ts``),
  temperature-scaled when the folder has a ``scope.json``;
* ``hybrid-frozen-logreg``: the frozen encoder's embedding of a text column and the encoded account
  features, concatenated, into a logistic-regression head (``src/kinds/hybrid/model.ts``).

Input: for the text kinds, a DataFrame with a ``text`` column (or a list of strings). Texts are taken
as they are; the project's server applies the task's cleaning first, so pass cleaned text for the same
answers. For the record kinds, a DataFrame (or a list of dicts) with the model's feature columns (and
the text column for ``hybrid-frozen-logreg``); a missing column or an undeclared category is an error
that names the column, as on the server.
Output: a DataFrame with ``label`` and one ``p(<label>)`` column per class, the model's signature.
This file (src/py/convo_pyfunc.py) and its record side (convo_features.py) are copied into every
model folder (``code/``) by ``src/kinds/pyfunc.ts``. Rules that are data in the folder are run, not
restated: the TF-IDF token pattern, derived-feature expressions, and the scope rule's ONNX graph.
"""

import base64
import hashlib
import json
import os
import re

import numpy as np
import pandas as pd

from convo_features import FeatureTransform, as_records

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
    """A model's scope.json (``src/kinds/scope/rule.ts``): temperature, threshold, fallback label, and
    the out-of-scope rule as an ONNX graph (``scope.onnx``, written by ``src/kinds/scope/graph.ts``),
    which this module runs and does not re-implement.

    The graph takes what it names of: the raw ``logits`` and pooled ``features`` (float64), and for
    ``mahalanobis+knn`` the ``view`` (the texts embedded by the pretrained encoder the folder carries,
    float32) and the neighbour ``bank`` (the file scope.json names, checked by its sha256).
    """

    def __init__(self, root, path):
        with open(path, encoding="utf-8") as f:
            s = json.load(f)
        self.temperature = float(s["temperature"])
        self.threshold = float(s["threshold"])
        self.fallback_label = s["fallback_label"]
        graph = s.get("graph")
        if not isinstance(graph, str) or os.path.basename(graph) != graph:
            raise ValueError(
                "scope.json names no rule graph (saved before the rule was saved as scope.onnx): load the "
                "model with the convo_pyfunc.py in its own code/ folder, or fit its scope again"
            )
        self.session = _ort_session(os.path.join(root, graph))
        self.inputs = [i.name for i in self.session.get_inputs()]
        if "view" in self.inputs or "bank" in self.inputs:
            n = s["knn"]
            with open(os.path.join(root, n["bank"]), "rb") as f:
                raw = f.read()
            if hashlib.sha256(raw).hexdigest() != n["sha256"]:
                raise ValueError(f"{n['bank']} is not the neighbour bank scope.json was fitted with (sha256 differs)")
            self.bank = np.frombuffer(raw, dtype="<f4").reshape(int(n["rows"]), int(n["dim"]))
            encoder = n["encoder"]
            self.view = _OnnxGraph(root, encoder, os.path.join(encoder, "model.onnx"), n["max_length"])

    def scores(self, logits, features, texts):
        feeds = {}
        for name in self.inputs:
            if name == "logits":
                feeds[name] = np.ascontiguousarray(logits, dtype=np.float64)
            elif name == "features":
                if features is None:
                    raise ValueError("this model's graph gives no pooled features for its scope score")
                feeds[name] = np.ascontiguousarray(features, dtype=np.float64)
            elif name == "view":
                feeds[name] = self.view.embed(texts).astype(np.float32)  # the TypeScript side embeds in float32
            elif name == "bank":
                feeds[name] = self.bank
            else:
                raise ValueError(f"the scope graph asks for {name!r}, which this module does not know")
        return self.session.run(["score"], feeds)[0]


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
        rows = _texts(model_input) if is_text else as_records(model_input)
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
