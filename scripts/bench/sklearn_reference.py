"""The tool users would otherwise pick, for `make bench-serve`: the same TF-IDF + logistic regression
in scikit-learn, logged with mlflow.sklearn so `mlflow models serve` can serve it.

    .venv/bin/python scripts/bench/sklearn_reference.py data/processed/support-category out_dir

Prints the local model path on the last line.
"""
import json
import sys

import mlflow.sklearn
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

data_dir, out_dir = sys.argv[1], sys.argv[2]
rows = [json.loads(line) for line in open(f"{data_dir}/train.jsonl", encoding="utf-8")]
frame = pd.DataFrame({"text": [r["text"] for r in rows]})
labels = [r["label"] for r in rows]
model = Pipeline([
    ("tfidf", ColumnTransformer([("text", TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True), "text")])),
    ("clf", LogisticRegression(max_iter=1000, class_weight="balanced")),
])
model.fit(frame, labels)
mlflow.sklearn.save_model(model, out_dir, input_example=frame.head(2))
print(out_dir)
