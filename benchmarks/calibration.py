"""Which temperature calibrates a model on speakers it never heard? Re-scores the CV fold models.

    python -m benchmarks.calibration --run-dir runs/cv_main

For every fold it prints the test ECE with no scaling, with the temperature fitted on that fold's
2 validation actors (what train.py does), and with a temperature fitted on the *other* folds'
out-of-fold test predictions (made by other models on other unseen speakers).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from ser_core import artifacts
from ser_core.corpora import gather
from ser_core.dataset import extract_features, window_set
from ser_core.evaluation import clip_probabilities, fit_temperature, reliability
from ser_core.params import FeatureParams
from ser_core.split import cross_validation_folds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run-dir", type=Path, default=Path("runs/cv_main"))
    parser.add_argument("--ravdess-dir", default="../shared/data/ravdess")
    args = parser.parse_args()

    report = json.loads(next(args.run_dir.glob("cv_*.json")).read_text())
    params = FeatureParams.from_dict(report["feature_params"]) if "feature_params" in report else FeatureParams()
    clips, _ = gather(args.ravdess_dir, None)
    features, _ = extract_features(clips, params)
    folds = cross_validation_folds(clips, report.get("n_folds", 5), seed=report["seed"])
    out_of_fold = {}
    for fold in report["folds"]:
        chosen = [i for i, clip in enumerate(clips) if clip.speaker in set(folds[fold["fold"]])]
        test = window_set([clips[i] for i in chosen], [features[i] for i in chosen])
        model = artifacts.load_model(args.run_dir / f"fold{fold['fold']}" / "best.keras")
        out_of_fold[fold["fold"]] = (np.asarray(model.predict(test.x[..., None], verbose=0)), test)
    rows = []
    for index, (logits, test) in out_of_fold.items():
        others = [k for k in out_of_fold if k != index]
        pooled_logits = np.concatenate([out_of_fold[k][0] for k in others])
        pooled_labels = np.concatenate([out_of_fold[k][1].labels for k in others])
        pooled_t = fit_temperature(pooled_logits, pooled_labels)
        validation_t = next(f["temperature"] for f in report["folds"] if f["fold"] == index)
        eces = [reliability(clip_probabilities(logits, test.clip_index, t), test.clip_labels)["ece"]
                for t in (1.0, validation_t, pooled_t)]
        rows.append(eces)
        print(f"fold {index}: ECE none {eces[0]:.3f} | validation T={validation_t:.2f} {eces[1]:.3f} | "
              f"other folds T={pooled_t:.2f} {eces[2]:.3f}")
    all_logits = np.concatenate([l for l, _ in out_of_fold.values()])
    all_labels = np.concatenate([t.labels for _, t in out_of_fold.values()])
    mean, std = np.mean(rows, axis=0), np.std(rows, axis=0)
    print("mean ECE: " + " | ".join(f"{name} {m:.3f}±{s:.3f}" for name, m, s in
                                    zip(("none", "validation T", "other-folds T"), mean, std)))
    print(f"temperature fitted on all {len(all_labels)} out-of-fold windows: {fit_temperature(all_logits, all_labels):.3f}")


if __name__ == "__main__":
    main()
