"""Does averaging several models help on unseen speakers? Re-scores saved CV fold models as one.

    python -m benchmarks.ensemble --run-dirs runs/cv_main runs/cv_cosine_ema runs/cv_vtlp \
        --members plateau:acoustic@best cosine+ema:acoustic@last cosine+ema:acoustic_vtlp@last [--out FILE]

Each run is a ``train.py --cv 5`` run of one member recipe, all with the same folds (same seed and
data); ``--members`` names their recipes, and with them which weights of each run are used (``@best``
or ``@last``; without it, as train.py would choose). In every fold the members' models are averaged exactly as
``train.py --members ...`` averages them (``ser_core.training.models.ensemble``), and the fold is scored by
the same code as ``train.py --cv`` (temperature on the fold's validation speakers, robustness,
pooled calibration). So this gives the figures ``train.py --cv 5 --members ...`` would, without
training every member again. ``--out`` writes them in train.py's ``cv_<arch>.json`` format.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from benchmarks.cv_models import fold_models
from ser_core.inference import artifacts
from ser_core.training.models import ensemble
from ser_core.inference.params import FeatureParams
from ser_core.training.recipes import MemberRecipe
from train import fold_result, pooled_calibration, print_cv_table, score, summarise_folds, window_logits


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run-dirs", type=Path, nargs="+", required=True)
    parser.add_argument("--members", nargs="+", required=True, help="the recipe of each run, in the same order")
    parser.add_argument("--ravdess-dir", default="../shared/data/ravdess")
    parser.add_argument("--out", type=Path, help="write the cross-validation report here")
    args = parser.parse_args()
    if len(args.members) != len(args.run_dirs):
        parser.error("give one --members recipe per --run-dirs run")
    try:
        recipes = [MemberRecipe.parse(spec) for spec in args.members]
    except ValueError as error:
        parser.error(str(error))
    members = [str(recipe) for recipe in recipes]

    runs = [list(fold_models(run_dir, args.ravdess_dir, recipe.keep))
            for run_dir, recipe in zip(args.run_dirs, recipes)]
    first = json.loads(next(args.run_dirs[0].glob("cv_*.json")).read_text())
    params = FeatureParams.from_dict(first["feature_params"]) if "feature_params" in first else FeatureParams()
    results, fold_parts = [], []
    for fold_members in zip(*runs):
        records = [record for record, _, _, _ in fold_members]
        test, validation = fold_members[0][2], fold_members[0][3]
        assert all(r["fold"] == records[0]["fold"] for r in records), "runs differ in folds"
        assert all(m[2].clips == test.clips and m[3].clips == validation.clips for m in fold_members)
        alone = [score(window_logits(model, test), test, record["temperature"])["accuracy"]
                 for record, model, _, _ in fold_members]
        combined = ensemble([model for _, model, _, _ in fold_members])
        result, parts = fold_result(records[0]["fold"], records[0]["test_speakers"], combined, test, validation,
                                    params, first["seed"])
        result.update(epochs=[r["epochs"] for r in records], best_epoch=[r["best_epoch"] for r in records],
                      train_seconds=round(sum(r["train_seconds"] for r in records), 1),
                      member_accuracy=alone)
        fold_parts.append(parts)
        results.append(result)
        print(f"fold {result['fold']}: members {' '.join(f'{a:.3f}' for a in alone)} -> ensemble "
              f"{result['accuracy']:.3f} (UAR {result['uar']:.3f})", flush=True)
    summary = summarise_folds(results)
    summary["pooled_calibration"] = pooled_calibration(fold_parts)
    print_cv_table(results, summary)
    member_means = np.mean([r["member_accuracy"] for r in results], axis=0)
    print("members alone, mean accuracy: " + ", ".join(f"{m} {a:.3f}" for m, a in zip(members, member_means)))
    if args.out:
        report = {"arch": first.get("arch", "ser_cnn"), "seed": first["seed"], "folds": results, "summary": summary,
                  "members": members, "epochs": first.get("epochs"),
                  "feature_params": params.to_dict(), "n_folds": first.get("n_folds", len(results)),
                  "speakers": len({s for r in results for s in r["test_speakers"]}),
                  "clips": summary["pooled_calibration"]["clips"],
                  "source": "benchmarks/ensemble.py over " + ", ".join(str(d) for d in args.run_dirs)}
        artifacts.write_json(args.out, report)
        print(f"written to {args.out}")


if __name__ == "__main__":
    main()
