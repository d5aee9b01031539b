"""Does averaging several models help on unseen speakers? Re-scores the saved CV fold models.

    python -m benchmarks.ensemble --run-dirs runs/cv_main runs/cv_cosine_ema runs/cv_vtlp [--robustness]

Every run must be a ``train.py --cv 5`` run with the same folds (same seed and data). In each fold the
members' window logits are averaged (what ``ser_core.models.ensemble`` computes), one temperature is
fitted on the fold's validation speakers, and the test speakers are scored as ``train.py`` scores
them. Prints each member's accuracy, the ensemble's per fold, mean ± std, per-class recall, and the
ECE pooled over all folds' test clips with its sampling floor; ``--robustness`` adds noise and reverb.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from benchmarks.cv_models import fold_models
from ser_core.evaluation import (classification_report, clip_probabilities, ece_sampling_floor, fit_temperature,
                                 reliability)
from ser_core.models import ensemble
from ser_core.params import EMOTIONS, FeatureParams


def window_logits(model, windows) -> np.ndarray:
    return np.asarray(model.predict(windows.x[..., None], batch_size=128, verbose=0), dtype=np.float64)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run-dirs", type=Path, nargs="+", required=True)
    parser.add_argument("--ravdess-dir", default="../shared/data/ravdess")
    parser.add_argument("--checkpoint", default="best", choices=("best", "last"))
    parser.add_argument("--robustness", action="store_true", help="also score noisy and reverberant test clips")
    args = parser.parse_args()

    runs = [list(fold_models(run_dir, args.ravdess_dir, args.checkpoint)) for run_dir in args.run_dirs]
    report = json.loads(next(args.run_dirs[0].glob("cv_*.json")).read_text())
    params = FeatureParams.from_dict(report["feature_params"]) if "feature_params" in report else FeatureParams()
    rows, recalls, pooled, conditions = [], [], {"labels": [], "before": [], "after": []}, []
    for members in zip(*runs):
        fold = members[0][0]["fold"]
        test, validation = members[0][2], members[0][3]
        assert all(m[0]["fold"] == fold and m[2].clips == test.clips for m in members), "runs differ in folds"
        test_logits = [window_logits(model, test) for _, model, _, _ in members]
        member_accuracy = [classification_report(test.clip_labels, clip_probabilities(l, test.clip_index).argmax(1))
                           ["accuracy"] for l in test_logits]
        averaged = np.mean(test_logits, axis=0)
        temperature = fit_temperature(np.mean([window_logits(m, validation) for _, m, _, _ in members], axis=0),
                                      validation.labels)
        probabilities = clip_probabilities(averaged, test.clip_index, temperature)
        scores = classification_report(test.clip_labels, probabilities.argmax(axis=1))
        rows.append([scores["accuracy"], scores["uar"], scores["macro_f1"]])
        recalls.append([scores["per_class"][e]["recall"] for e in EMOTIONS])
        pooled["labels"].append(test.clip_labels)
        pooled["before"].append(clip_probabilities(averaged, test.clip_index))
        pooled["after"].append(probabilities)
        line = (f"fold {fold}: members {' '.join(f'{a:.3f}' for a in member_accuracy)} | ensemble acc "
                f"{scores['accuracy']:.3f} UAR {scores['uar']:.3f} F1 {scores['macro_f1']:.3f} T={temperature:.2f}")
        if args.robustness:
            from train import robustness

            combined = ensemble([model for _, model, _, _ in members])
            result = robustness(combined, test.clips, params, temperature, report["seed"])
            conditions.append({name: value["accuracy"] for name, value in result.items()})
            line += " | " + " ".join(f"{name} {value:.3f}" for name, value in conditions[-1].items())
        print(line, flush=True)
    mean, std = np.mean(rows, axis=0), np.std(rows, axis=0)
    print(f"ensemble of {len(runs)}: accuracy {mean[0]:.3f} ± {std[0]:.3f}, UAR {mean[1]:.3f} ± {std[1]:.3f}, "
          f"macro-F1 {mean[2]:.3f} ± {std[2]:.3f}")
    print("recall: " + ", ".join(f"{e} {r:.2f}" for e, r in zip(EMOTIONS, np.mean(recalls, axis=0))))
    labels = np.concatenate(pooled["labels"])
    before, after = np.concatenate(pooled["before"]), np.concatenate(pooled["after"])
    print(f"pooled ECE over {len(labels)} clips: {reliability(before, labels)['ece']:.3f} unscaled, "
          f"{reliability(after, labels)['ece']:.3f} with the validation temperature "
          f"(floor {ece_sampling_floor(after.max(axis=1)):.3f})")
    for name in conditions[0] if conditions else []:
        values = [c[name] for c in conditions]
        print(f"{name}: accuracy {np.mean(values):.3f} ± {np.std(values):.3f}")


if __name__ == "__main__":
    main()
