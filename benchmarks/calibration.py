"""Which temperature calibrates a model on speakers it never heard? Re-scores the CV fold models.

    python -m benchmarks.calibration --run-dir runs/cv_main

For every fold it prints the test ECE with no scaling, with the temperature fitted on that fold's
2 validation actors (what train.py does), and with a temperature fitted on the *other* folds'
out-of-fold test predictions (made by other models on other unseen speakers). Then the same three
over all folds' test clips pooled, next to the ECE a perfectly calibrated model would measure on
that many clips (the sampling floor).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from benchmarks.cv_models import fold_models
from ser_core.evaluation.metrics import clip_probabilities, ece_sampling_floor, fit_temperature, reliability


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run-dir", type=Path, default=Path("runs/cv_main"))
    parser.add_argument("--ravdess-dir", default="../shared/data/ravdess")
    args = parser.parse_args()

    out_of_fold, temperatures = {}, {}
    for fold, model, test, _ in fold_models(args.run_dir, args.ravdess_dir):
        out_of_fold[fold["fold"]] = (np.asarray(model.predict(test.x[..., None], verbose=0)), test)
        temperatures[fold["fold"]] = fold["temperature"]
    rows, pooled = [], {"labels": [], "probabilities": [[], [], []]}
    for index, (logits, test) in out_of_fold.items():
        others = [k for k in out_of_fold if k != index]
        pooled_logits = np.concatenate([out_of_fold[k][0] for k in others])
        pooled_labels = np.concatenate([out_of_fold[k][1].labels for k in others])
        pooled_t = fit_temperature(pooled_logits, pooled_labels)
        validation_t = temperatures[index]
        probabilities = [clip_probabilities(logits, test.clip_index, t) for t in (1.0, validation_t, pooled_t)]
        eces = [reliability(p, test.clip_labels)["ece"] for p in probabilities]
        rows.append(eces)
        pooled["labels"].append(test.clip_labels)
        for kept, p in zip(pooled["probabilities"], probabilities):
            kept.append(p)
        floor = ece_sampling_floor(probabilities[1].max(axis=1))
        print(f"fold {index}: ECE none {eces[0]:.3f} | validation T={validation_t:.2f} {eces[1]:.3f} | "
              f"other folds T={pooled_t:.2f} {eces[2]:.3f} | floor for {len(test.clip_labels)} clips {floor:.3f}")
    all_logits = np.concatenate([l for l, _ in out_of_fold.values()])
    all_labels = np.concatenate([t.labels for _, t in out_of_fold.values()])
    mean, std = np.mean(rows, axis=0), np.std(rows, axis=0)
    print("mean ECE: " + " | ".join(f"{name} {m:.3f}±{s:.3f}" for name, m, s in
                                    zip(("none", "validation T", "other-folds T"), mean, std)))
    labels = np.concatenate(pooled["labels"])
    pooled_eces = [reliability(np.concatenate(p), labels)["ece"] for p in pooled["probabilities"]]
    floor = ece_sampling_floor(np.concatenate(pooled["probabilities"][1]).max(axis=1))
    print(f"pooled ECE over {len(labels)} clips: " + " | ".join(
        f"{name} {e:.3f}" for name, e in zip(("none", "validation T", "other-folds T"), pooled_eces))
          + f" | floor {floor:.3f}")
    print(f"temperature fitted on all {len(all_labels)} out-of-fold windows: {fit_temperature(all_logits, all_labels):.3f}")


if __name__ == "__main__":
    main()
