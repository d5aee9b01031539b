"""Write a finished single-member ``train.py --cv`` run's out-of-fold logits from its saved models.

    python -m benchmarks.oof_from_models RUN_DIR [--ravdess-dir DIR]

For runs made before ``train.py --cv`` wrote ``oof_<arch>.json`` itself (or with an older format):
the fold models the run kept (its recipe's ``@best``/``@last``) are scored on their folds exactly as
``train.py --cv`` scores them, and ``RUN_DIR/oof_<arch>.json`` is written for
``benchmarks.oof_ensemble``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.cv_models import fold_models
from ser_core.inference.params import FeatureParams
from ser_core.evaluation.member_specs import kept_checkpoint
from train import fold_result, write_out_of_fold


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--ravdess-dir", default="../shared/data/ravdess")
    args = parser.parse_args()
    reports = sorted(args.run_dir.glob("cv_*.json"))
    if not reports:
        parser.error(f"no cv_<arch>.json in {args.run_dir}: not a finished train.py --cv run")
    report = json.loads(reports[0].read_text())
    if len(report["members"]) != 1:
        parser.error("only single-member runs (one model per fold) are supported")
    params = FeatureParams.from_dict(report["feature_params"])
    fold_parts, results = [], []
    for fold, model, test, validation in fold_models(args.run_dir, args.ravdess_dir,
                                                      kept_checkpoint(report["members"][0])):
        result, parts = fold_result(fold["fold"], fold["test_speakers"], model, test, validation, params,
                                    report["seed"])
        print(f"fold {fold['fold']}: accuracy {result['accuracy']:.3f} (the run recorded {fold['accuracy']:.3f})")
        fold_parts.append(parts)
        results.append({**result, "train_seconds": fold["train_seconds"]})
    out = args.run_dir / f"oof_{report['arch']}.json"
    write_out_of_fold(out, report, fold_parts, results)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
