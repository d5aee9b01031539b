"""Does test-time averaging help? Re-scores the saved cross-validation fold models.

    python -m benchmarks.tta --run-dirs runs/cv_main [--members plateau:acoustic ...] [--mode shift|vtlp]

Each run is a ``train.py --cv 5`` run (several: one per member of an ensemble, scored averaged, as
``benchmarks.ensemble`` does; ``--members`` names their recipes and so the weights used). For each
fold it prints clip accuracy and UAR of the plain model and of the logits averaged over transformed
copies of every window: circular time shifts (``--mode shift``, the shifts training used) or
vocal-tract-length warps of the frequency axis (``--mode vtlp``, the warps the VTLP member trained on).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from benchmarks.cv_models import fold_models
from ser_core.evaluation.metrics import classification_report, clip_probabilities
from ser_core.training.models import ensemble
from ser_core.inference.params import FeatureParams
from ser_core.training.recipes import MemberRecipe

VARIANTS = {"shift": [-20, -10, 0, 10, 20], "vtlp": [0.9, 0.95, 1.0, 1.05, 1.1]}


def transformed(x: np.ndarray, mode: str, amount: float, params: FeatureParams) -> np.ndarray:
    """Windows [n, mels, frames] shifted by ``amount`` frames, or frequency-warped by factor ``amount``."""
    if mode == "shift":
        return np.roll(x, int(amount), axis=2)
    import tensorflow as tf

    from ser_core.training.augment import vocal_tract_warp
    from ser_core.inference.features import mel_frequencies

    mel_hz = tf.constant(mel_frequencies(params), tf.float32)
    factor = tf.fill([len(x)], float(amount))
    return np.asarray(vocal_tract_warp(tf.constant(x, tf.float32), mel_hz, factor, -params.top_db))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run-dirs", type=Path, nargs="+", default=[Path("runs/cv_main")])
    parser.add_argument("--members", nargs="+", help="each run's recipe (default: its plateau best weights)")
    parser.add_argument("--ravdess-dir", default="../shared/data/ravdess")
    parser.add_argument("--mode", choices=sorted(VARIANTS), default="shift")
    args = parser.parse_args()
    keeps = [MemberRecipe.parse(spec).keep for spec in args.members] if args.members else ["best"] * len(args.run_dirs)
    if len(keeps) != len(args.run_dirs):
        parser.error("give one --members recipe per --run-dirs run")
    identity = 0 if args.mode == "shift" else 1.0
    params = FeatureParams()

    rows = []
    runs = [fold_models(run_dir, args.ravdess_dir, keep) for run_dir, keep in zip(args.run_dirs, keeps)]
    for fold_members in zip(*runs):
        fold, test = fold_members[0][0], fold_members[0][2]
        model = ensemble([model for _, model, _, _ in fold_members])
        logits = {amount: np.asarray(model.predict(transformed(test.x, args.mode, amount, params)[..., None],
                                                   batch_size=128, verbose=0))
                  for amount in VARIANTS[args.mode]}
        plain = clip_probabilities(logits[identity], test.clip_index)
        averaged = clip_probabilities(np.mean(list(logits.values()), axis=0), test.clip_index)
        scores = [classification_report(test.clip_labels, p.argmax(axis=1)) for p in (plain, averaged)]
        rows.append([scores[0]["accuracy"], scores[0]["uar"], scores[1]["accuracy"], scores[1]["uar"]])
        print(f"fold {fold['fold']}: plain acc {rows[-1][0]:.3f} UAR {rows[-1][1]:.3f} | "
              f"{args.mode}-averaged acc {rows[-1][2]:.3f} UAR {rows[-1][3]:.3f}", flush=True)
    mean, std = np.mean(rows, axis=0), np.std(rows, axis=0)
    print(f"mean: plain acc {mean[0]:.3f}±{std[0]:.3f} UAR {mean[1]:.3f}±{std[1]:.3f} | "
          f"{args.mode}-averaged acc {mean[2]:.3f}±{std[2]:.3f} UAR {mean[3]:.3f}±{std[3]:.3f}")


if __name__ == "__main__":
    main()
