"""Would per-class decision biases help? Score an average of cross-validation runs with and without them.

    python -m benchmarks.class_bias --member docs/oof/lite_acoustic.json --member docs/oof/lite_vtlp.json ...

A bias per emotion added to the clip log-probabilities before the arg-max can trade accuracy on
the classes the model over-predicts for recall on the ones it misses (sad, happy). Three ways of
fitting it are compared with none, each scored on every fold's clean test clips:

- ``validation``: biases minimising the log-loss on the fold's own validation actors;
- ``other folds``: the same on the other folds' out-of-fold test clips (cross-fitting, as the
  shipped temperature is fitted);
- ``prior``: minus the log of the mean predicted probability of each class on the other folds,
  so that every class is predicted as often on average.

Members are given as for ``benchmarks.oof_ensemble`` and averaged the same way.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

from benchmarks.oof_ensemble import average, load_run
from ser_core.evaluation.metrics import classification_report, clip_probabilities
from ser_core.inference.params import EMOTIONS

METHODS = ("none", "validation", "other folds", "prior")


def log_loss_biases(log_probabilities: np.ndarray, labels: np.ndarray, ridge: float = 1e-3) -> np.ndarray:
    """The per-class biases that minimise the mean log-loss of ``log_probabilities + biases``."""
    rows = np.arange(len(labels))

    def loss(biases: np.ndarray) -> float:
        scores = log_probabilities + biases
        return float((logsumexp(scores, axis=1) - scores[rows, labels]).mean() + ridge * biases @ biases)

    return minimize(loss, np.zeros(log_probabilities.shape[1])).x


def clip_log_probabilities(part: dict) -> np.ndarray:
    condition = part["conditions"]["clean"] if "conditions" in part else part
    return np.log(clip_probabilities(np.asarray(condition["logits"]), np.asarray(condition["clip_index"])) + 1e-12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--member", type=Path, nargs="+", action="append", required=True, metavar="OOF_JSON")
    args = parser.parse_args()
    runs = [load_run(paths) for paths in args.member]
    folds = sorted(set.intersection(*(set(run.records) for run in runs)))
    records = {fold: average([run.records[fold] for run in runs]) for fold in folds}
    test = {fold: (clip_log_probabilities(r["test"]), np.asarray(r["test"]["labels"])) for fold, r in records.items()}
    validation = {fold: (clip_log_probabilities(r["validation"]), np.asarray(r["validation"]["labels"]))
                  for fold, r in records.items()}
    print(f"{len(runs)} member(s), folds {folds}; accuracy and UAR: mean ± std over folds, recall: mean")
    print(f"{'biases':12s} {'accuracy':>13s} {'UAR':>6s}  " + " ".join(f"{e[:7]:>7s}" for e in EMOTIONS))
    for method in METHODS:
        accuracy, uar, recall = [], [], []
        for fold in folds:
            log_probabilities, labels = test[fold]
            others = [test[other] for other in folds if other != fold]
            if method == "none":
                biases = np.zeros(len(EMOTIONS))
            elif method == "validation":
                biases = log_loss_biases(*validation[fold])
            elif method == "other folds":
                biases = log_loss_biases(np.concatenate([o[0] for o in others]), np.concatenate([o[1] for o in others]))
            else:
                biases = -np.log(np.exp(np.concatenate([o[0] for o in others])).mean(axis=0))
            report = classification_report(labels, (log_probabilities + biases).argmax(axis=1))
            accuracy.append(report["accuracy"])
            uar.append(report["uar"])
            recall.append([report["per_class"][emotion]["recall"] for emotion in EMOTIONS])
        print(f"{method:12s} {100 * np.mean(accuracy):5.1f} ± {100 * np.std(accuracy):4.1f} {100 * np.mean(uar):6.1f}  "
              + " ".join(f"{r:7.2f}" for r in np.mean(recall, axis=0)))


if __name__ == "__main__":
    main()
