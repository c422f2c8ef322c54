"""Train one iris classifier: a standard-library stand-in for the seed's scikit-learn `pytrain.py`.

Same command line and output as the seed's script, so the `model` pipeline runs it unchanged:

    pytrain.py <dir with iris.csv> <out dir> <C> <gamma>

reads `<dir>/iris.csv` (four features and a label per row, no header; a header row is skipped)
and writes `<out dir>/model_C<C>_G<gamma>.pkl`, C and gamma spelled as Python prints the floats
(`0.500` -> `0.5`, `2.000` -> `2.0`), as the seed's `str(float)` did.

The model is a support vector classifier with the RBF kernel exp(-gamma * |x - y|^2), one
binary classifier per pair of classes with majority voting (one-vs-one, as scikit-learn's SVC
and libsvm do), each trained by SMO with libsvm's second-order working-set selection and
stopping rule. (The seed asked scikit-learn for `kernel='linear'`, which ignores gamma; the RBF
kernel makes the gamma axis of the search mean something.) The pickle holds only dicts, lists,
strings and floats, so loading it imports nothing; `evaluate.py` knows its layout. The same rows
and parameters give the same bytes.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import pickle
import sys
from pathlib import Path
from typing import Any

FEATURES = ["Sepal_Length", "Sepal_Width", "Petal_Length", "Petal_Width"]
RESPONSE = "Species"
FORMAT = "dsc-example-svc/1"

TOLERANCE = 1e-3  # libsvm's default stopping tolerance (scikit-learn's `tol`)
TAU = 1e-12  # libsvm's stand-in for a non-positive curvature
MAX_ITERATIONS = 100_000  # per binary problem; convergence takes a few hundred at most here


def read_rows(path: Path) -> tuple[list[list[float]], list[str]]:
    """The feature vectors and labels of a CSV file of `f1,f2,f3,f4,label` rows."""
    features: list[list[float]] = []
    labels: list[str] = []
    with path.open(newline="") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != len(FEATURES) + 1:
                sys.exit(f"{path}:{number}: expected {len(FEATURES) + 1} fields, got {len(row)}")
            try:
                vector = [float(cell) for cell in row[: len(FEATURES)]]
            except ValueError:
                if not features and not labels:
                    continue  # a header row
                sys.exit(f"{path}:{number}: a feature is not a number: {row}")
            features.append(vector)
            labels.append(row[-1].strip())
    return features, labels


def rbf_kernel(rows: list[list[float]], gamma: float) -> list[list[float]]:
    """The Gram matrix K[i][j] = exp(-gamma * |rows[i] - rows[j]|^2)."""
    kernel = [[1.0] * len(rows) for _ in rows]
    for i, left in enumerate(rows):
        for j in range(i):
            right = rows[j]
            squared = sum((a - b) * (a - b) for a, b in zip(left, right, strict=True))
            kernel[i][j] = kernel[j][i] = math.exp(-gamma * squared)
    return kernel


def solve_binary(kernel: list[list[float]], signs: list[int],
                 c: float) -> tuple[list[float], float]:
    """SMO for min 1/2 a'Qa - sum(a), 0 <= a <= c, sum(signs * a) = 0, Q = signs signs' K, as
    libsvm's Solver does without shrinking. Returns the multipliers and the bias rho of the
    decision function sum(a_i signs_i K(x_i, x)) - rho."""
    size = len(signs)
    q_rows = [[si * sj * k for sj, k in zip(signs, row, strict=True)]
              for si, row in zip(signs, kernel, strict=True)]
    alpha = [0.0] * size
    grad = [-1.0] * size
    for _ in range(MAX_ITERATIONS):
        # The maximal violating index i among those alpha may move "up" (libsvm's I_up).
        g_max, i = -math.inf, -1
        for t in range(size):
            if signs[t] == 1:
                if alpha[t] < c and -grad[t] >= g_max:
                    g_max, i = -grad[t], t
            elif alpha[t] > 0 and grad[t] >= g_max:
                g_max, i = grad[t], t
        # Its partner j by the second-order gain; g_max2 for the stopping rule.
        g_max2, j, best_gain = -math.inf, -1, math.inf
        kernel_i = kernel[i] if i >= 0 else []
        for t in range(size):
            if signs[t] == 1:
                if alpha[t] <= 0:
                    continue
                diff = g_max + grad[t]
                g_max2 = max(g_max2, grad[t])
            else:
                if alpha[t] >= c:
                    continue
                diff = g_max - grad[t]
                g_max2 = max(g_max2, -grad[t])
            if diff > 0:
                curvature = 2.0 - 2.0 * kernel_i[t]
                gain = -(diff * diff) / (curvature if curvature > 0 else TAU)
                if gain <= best_gain:
                    j, best_gain = t, gain
        if i < 0 or j < 0 or g_max + g_max2 < TOLERANCE:
            break
        old_i, old_j = alpha[i], alpha[j]
        if signs[i] != signs[j]:
            curvature = 2.0 + 2.0 * q_rows[i][j]
            delta = (-grad[i] - grad[j]) / (curvature if curvature > 0 else TAU)
            diff = old_i - old_j
            alpha[i] += delta
            alpha[j] += delta
            if diff > 0:
                if alpha[j] < 0:
                    alpha[j], alpha[i] = 0.0, diff
                if alpha[i] > c:
                    alpha[i], alpha[j] = c, c - diff
            else:
                if alpha[i] < 0:
                    alpha[i], alpha[j] = 0.0, -diff
                if alpha[j] > c:
                    alpha[j], alpha[i] = c, c + diff
        else:
            curvature = 2.0 - 2.0 * q_rows[i][j]
            delta = (grad[i] - grad[j]) / (curvature if curvature > 0 else TAU)
            total = old_i + old_j
            alpha[i] -= delta
            alpha[j] += delta
            if total > c:
                if alpha[i] > c:
                    alpha[i], alpha[j] = c, total - c
                if alpha[j] > c:
                    alpha[j], alpha[i] = c, total - c
            else:
                if alpha[j] < 0:
                    alpha[j], alpha[i] = 0.0, total
                if alpha[i] < 0:
                    alpha[i], alpha[j] = 0.0, total
        step_i, step_j = alpha[i] - old_i, alpha[j] - old_j
        grad = [g + qi * step_i + qj * step_j
                for g, qi, qj in zip(grad, q_rows[i], q_rows[j], strict=True)]
    return alpha, _rho(alpha, grad, signs, c)


def _rho(alpha: list[float], grad: list[float], signs: list[int], c: float) -> float:
    """libsvm's bias: the mean of signs*grad over free vectors, else the middle of the bounds."""
    upper, lower, free_sum, free = math.inf, -math.inf, 0.0, 0
    for a, g, s in zip(alpha, grad, signs, strict=True):
        value = s * g
        if a >= c:
            if s == -1:
                upper = min(upper, value)
            else:
                lower = max(lower, value)
        elif a <= 0:
            if s == 1:
                upper = min(upper, value)
            else:
                lower = max(lower, value)
        else:
            free += 1
            free_sum += value
    return free_sum / free if free else (upper + lower) / 2


def train(rows: list[list[float]], labels: list[str], c: float, gamma: float) -> dict[str, Any]:
    """One-vs-one RBF SVC as a plain dict: per pair of classes, the support vectors, their
    coefficients alpha_i * sign_i and the intercept -rho (decision > 0 votes the first class)."""
    classes = sorted(set(labels))
    kernel = rbf_kernel(rows, gamma)
    pairs: list[dict[str, Any]] = []
    for first_index, first in enumerate(classes):
        for second in classes[first_index + 1:]:
            members = [n for n, label in enumerate(labels) if label in (first, second)]
            signs = [1 if labels[n] == first else -1 for n in members]
            sub_kernel = [[kernel[a][b] for b in members] for a in members]
            alpha, rho = solve_binary(sub_kernel, signs, c)
            support = [(n, a * s)
                       for n, a, s in zip(members, alpha, signs, strict=True) if a > 0]
            pairs.append({
                "classes": [first, second],
                "support_vectors": [list(rows[n]) for n, _ in support],
                "dual_coef": [coef for _, coef in support],
                "intercept": -rho,
            })
    return {"format": FORMAT, "kernel": "rbf", "C": c, "gamma": gamma,
            "features": list(FEATURES), "classes": classes, "pairs": pairs}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train a model for iris classification.")
    parser.add_argument("indir", help="Input directory containing the training set (iris.csv)")
    parser.add_argument("outdir", help="Output directory for the trained model")
    parser.add_argument("cparam", type=float, help="Parameter C for SVM")
    parser.add_argument("gammaparam", type=float, help="Parameter Gamma for SVM")
    args = parser.parse_args(argv)
    c: float = args.cparam
    gamma: float = args.gammaparam
    if not (math.isfinite(c) and c > 0 and math.isfinite(gamma) and gamma > 0):
        parser.error("C and gamma must be positive numbers")
    rows, labels = read_rows(Path(args.indir, "iris.csv"))
    if len(set(labels)) < 2:
        sys.exit(f"{Path(args.indir, 'iris.csv')}: need rows of at least two classes")
    model = train(rows, labels, c, gamma)
    out = os.path.join(args.outdir, f"model_C{c}_G{gamma}.pkl")
    with open(out, "wb") as handle:
        pickle.dump(model, handle, protocol=4)
    print(f"{out}: {len(rows)} rows, {len(model['classes'])} classes, "
          f"{sum(len(p['dual_coef']) for p in model['pairs'])} support vectors")


if __name__ == "__main__":
    main()
