"""Score any average of cross-validation runs from their saved out-of-fold logits, without models.

    python -m benchmarks.oof_ensemble --member runs/a/oof_ser_cnn.json --member runs/b/f*/oof_ser_cnn.json \
        [--out FILE]

``train.py --cv`` writes ``oof_<arch>.json`` next to its report: every fold's window logits on its
test speakers (clean, noisy and reverberated) and on its validation speakers. Each ``--member`` is
one run of one recipe, given as one file or as several files of single-fold runs (``--folds``);
with one ``--member`` this re-scores that run. In each fold that every member has, the members'
logits are averaged, as ``ser_core.models.ensemble`` averages them, and scored by the code
``train.py --cv`` uses (``train.score_fold``), pooled calibration included. Unlike
``benchmarks.ensemble`` this needs no saved model, so the small OOF files are enough to try a new
member against runs made in earlier sessions.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ser_core import artifacts
from train import pooled_calibration, print_cv_table, score_fold, summarise_folds


def load_run(paths: list[Path]) -> tuple[str, dict[int, dict]]:
    """A run's recipe (its member specs joined) and its out-of-fold records by fold."""
    records, recipes = {}, set()
    for path in paths:
        report = json.loads(Path(path).read_text())
        recipes.add(" + ".join(report["members"]) + (" (validation pooled)" if report.get("pool_validation") else ""))
        for record in report["folds"]:
            if "conditions" not in record["test"]:
                raise ValueError(f"{path} is an out-of-fold file of an older format: write it again with "
                                 "python -m benchmarks.oof_from_models RUN_DIR")
            if record["fold"] in records:
                raise ValueError(f"fold {record['fold']} appears twice in {[str(p) for p in paths]}")
            records[record["fold"]] = record
    if len(recipes) != 1:
        raise ValueError(f"the files of one --member describe different recipes: {sorted(recipes)}")
    return recipes.pop(), records


def average(records: list[dict]) -> dict:
    """One fold's records of several runs as one, their window logits averaged (same clips required)."""
    first = records[0]
    for record in records[1:]:
        for part in ("test", "validation"):
            if record[part]["clips"] != first[part]["clips"]:
                raise ValueError(f"fold {first['fold']}: the runs' {part} clips differ (another seed or corpus?)")
        for name, condition in first["test"]["conditions"].items():
            if record["test"]["conditions"][name]["clip_index"] != condition["clip_index"]:
                raise ValueError(f"fold {first['fold']}: the runs' {name} windows differ (other feature parameters?)")

    def mean_logits(parts: list[dict]) -> np.ndarray:
        return np.mean([np.asarray(part["logits"]) for part in parts], axis=0)

    test = {**first["test"], "conditions": {
        name: {"clip_index": condition["clip_index"],
               "logits": mean_logits([r["test"]["conditions"][name] for r in records])}
        for name, condition in first["test"]["conditions"].items()}}
    validation = {**first["validation"], "logits": mean_logits([r["validation"] for r in records])}
    return {**first, "test": test, "validation": validation,
            "train_seconds": sum(r.get("train_seconds", 0.0) for r in records)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--member", type=Path, nargs="+", action="append", required=True, metavar="OOF_JSON",
                        help="one run's oof_<arch>.json file(s); repeat for every member")
    parser.add_argument("--out", type=Path, help="write the cross-validation report here")
    args = parser.parse_args()
    try:
        runs = [load_run(paths) for paths in args.member]
    except (OSError, ValueError, KeyError) as error:
        parser.error(str(error))
    folds = sorted(set.intersection(*(set(records) for _, records in runs)))
    if not folds:
        parser.error("the members have no fold in common")
    results, fold_parts = [], []
    for fold in folds:
        alone = [score_fold(records[fold])[0] for _, records in runs]
        try:
            result, parts = score_fold(average([records[fold] for _, records in runs]))
        except ValueError as error:
            parser.error(str(error))
        result.update(train_seconds=round(sum(records[fold].get("train_seconds", 0.0) for _, records in runs), 1),
                      member_accuracy=[r["accuracy"] for r in alone])
        results.append(result)
        fold_parts.append(parts)
        member_figures = " ".join(f"{r['accuracy']:.3f}" for r in alone)
        print(f"fold {fold}: members {member_figures} -> average "
              f"{result['accuracy']:.3f} (UAR {result['uar']:.3f})")
    summary = summarise_folds(results)
    summary["pooled_calibration"] = pooled_calibration(fold_parts)
    print_cv_table(results, summary)
    for (recipe, _), accuracies in zip(runs, np.array([r["member_accuracy"] for r in results]).T):
        print(f"alone: {recipe}: accuracy {accuracies.mean():.3f} ± {accuracies.std():.3f}")
    if args.out:
        artifacts.write_json(args.out, {"members": [recipe for recipe, _ in runs], "folds": results,
                                        "summary": summary, "n_folds": len(results),
                                        "source": "benchmarks/oof_ensemble.py over "
                                                  + "; ".join(" ".join(map(str, p)) for p in args.member)})
        print(f"written to {args.out}")


if __name__ == "__main__":
    main()
