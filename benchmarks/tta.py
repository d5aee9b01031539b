"""Does test-time shift averaging help? Re-scores the saved cross-validation fold models.

    python -m benchmarks.tta --run-dir runs/cv_main [--ravdess-dir ../shared/data/ravdess]

Needs the ``best.keras`` of each fold from a ``train.py --cv 5 --run-dir DIR`` run. For each fold it
prints clip accuracy and UAR of the plain model and of the average over circularly time-shifted
copies of every window (the shifts training used), then the mean over folds.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from benchmarks.cv_models import fold_models
from ser_core.evaluation import classification_report, clip_probabilities


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run-dir", type=Path, default=Path("runs/cv_main"))
    parser.add_argument("--ravdess-dir", default="../shared/data/ravdess")
    parser.add_argument("--shifts", type=int, nargs="+", default=[-20, -10, 0, 10, 20], help="frames")
    args = parser.parse_args()

    rows = []
    for fold, model, test, _ in fold_models(args.run_dir, args.ravdess_dir):
        temperature = fold["temperature"]
        logits = {shift: np.asarray(model.predict(np.roll(test.x, shift, axis=2)[..., None], verbose=0))
                  for shift in args.shifts}
        plain = clip_probabilities(logits[0], test.clip_index, temperature)
        averaged = np.mean([clip_probabilities(l, test.clip_index, temperature) for l in logits.values()], axis=0)
        scores = [classification_report(test.clip_labels, p.argmax(axis=1)) for p in (plain, averaged)]
        rows.append([scores[0]["accuracy"], scores[0]["uar"], scores[1]["accuracy"], scores[1]["uar"]])
        print(f"fold {fold['fold']}: plain acc {rows[-1][0]:.3f} UAR {rows[-1][1]:.3f} | "
              f"shift-averaged acc {rows[-1][2]:.3f} UAR {rows[-1][3]:.3f}")
    mean, std = np.mean(rows, axis=0), np.std(rows, axis=0)
    print(f"mean: plain acc {mean[0]:.3f}±{std[0]:.3f} UAR {mean[1]:.3f}±{std[1]:.3f} | "
          f"shift-averaged acc {mean[2]:.3f}±{std[2]:.3f} UAR {mean[3]:.3f}±{std[3]:.3f}")


if __name__ == "__main__":
    main()
