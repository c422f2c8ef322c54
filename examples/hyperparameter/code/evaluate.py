"""Score one iris model: a standard-library stand-in for the seed's scikit-learn `evaluate.py`.

Same command line and output as the seed's script, so the `test` pipeline runs it unchanged:

    evaluate.py <model.pkl> <test.csv> <out dir>

loads a model written by `pytrain.py` (a pickle of plain dicts and lists: an RBF-kernel SVC,
one-vs-one), predicts every row of the CSV (four features and a label, no header; a header row
is skipped) and writes the accuracy to `<out dir>/<model name without .pkl>_metric.txt` as the
seed did, `str()` of the fraction of correct predictions (`0.95`, `1.0`), no newline: the
`select` pipeline compares these texts with `awk` and with `==`.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import pickle
import re
import sys
from pathlib import Path
from typing import Any

FEATURE_COUNT = 4
FORMAT = "dsc-example-svc/1"


def read_rows(path: Path) -> tuple[list[list[float]], list[str]]:
    """The feature vectors and labels of a CSV file of `f1,f2,f3,f4,label` rows."""
    features: list[list[float]] = []
    labels: list[str] = []
    with path.open(newline="") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != FEATURE_COUNT + 1:
                sys.exit(f"{path}:{number}: expected {FEATURE_COUNT + 1} fields, got {len(row)}")
            try:
                vector = [float(cell) for cell in row[:FEATURE_COUNT]]
            except ValueError:
                if not features and not labels:
                    continue  # a header row
                sys.exit(f"{path}:{number}: a feature is not a number: {row}")
            features.append(vector)
            labels.append(row[-1].strip())
    return features, labels


def predict(model: dict[str, Any], vector: list[float]) -> str:
    """The class with the most one-vs-one votes; a tie goes to the class sorted first, as in
    libsvm."""
    gamma: float = model["gamma"]
    votes: dict[str, int] = dict.fromkeys(model["classes"], 0)
    for pair in model["pairs"]:
        decision = pair["intercept"]
        for support, coef in zip(pair["support_vectors"], pair["dual_coef"], strict=True):
            squared = sum((a - b) * (a - b) for a, b in zip(support, vector, strict=True))
            decision += coef * math.exp(-gamma * squared)
        first, second = pair["classes"]
        votes[first if decision > 0 else second] += 1
    best = max(votes.values())
    return next(label for label, count in votes.items() if count == best)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Evaluate a model for iris classification.")
    parser.add_argument("model", help="The model file written by pytrain.py")
    parser.add_argument("testdata", help="The test set (CSV)")
    parser.add_argument("out", help="Output directory for the evaluation results")
    args = parser.parse_args(argv)
    with open(args.model, "rb") as handle:
        model = pickle.load(handle)
    if not isinstance(model, dict) or model.get("format") != FORMAT:
        sys.exit(f"{args.model}: not a model written by pytrain.py ({FORMAT})")
    rows, labels = read_rows(Path(args.testdata))
    if not rows:
        sys.exit(f"{args.testdata}: no rows to evaluate")
    correct = sum(predict(model, vector) == label
                  for vector, label in zip(rows, labels, strict=True))
    accuracy = correct / len(rows)
    model_name = re.sub(r"\.pkl$", "", os.path.basename(args.model))
    with open(os.path.join(args.out, model_name + "_metric.txt"), "w") as handle:
        handle.write(str(accuracy))


if __name__ == "__main__":
    main()
