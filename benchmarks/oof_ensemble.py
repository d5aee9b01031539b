"""Score any average of cross-validation runs from their saved out-of-fold logits, without models.

    python -m benchmarks.oof_ensemble --member runs/a/oof_ser_cnn.json --member runs/b/f*/oof_ser_cnn.json \
        [--out FILE]

``train.py --cv`` writes ``oof_<arch>.json`` next to its report: every fold's window logits on its
test speakers (clean, noisy and reverberated) and on its validation speakers. Each ``--member`` is
one run of one recipe, given as one file or as several files of single-fold runs (``--folds``);
with one ``--member`` this re-scores that run. In each fold that every member has, the members'
logits are averaged, as ``ser_core.training.models.ensemble`` averages them, and scored by the code
``train.py --cv`` uses (``train.score_fold``), pooled calibration included. Unlike
``benchmarks.ensemble`` this needs no saved model, so the small OOF files are enough to try a new
member against runs made in earlier sessions. ``--out`` writes a report like ``train.py --cv``'s
(architecture, features, members in order, figures), which the app's evaluation pages read and
``train.py --temperature-from`` takes its temperature from.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ser_core.inference import artifacts
from ser_core.training.models import ARCHITECTURES
from ser_core.training.recipes import MemberRecipe, ensemble_arch
from train import RUN_DESCRIPTION, pooled_calibration, print_cv_table, score_fold, summarise_folds


@dataclass
class Run:
    """One cross-validation run of one recipe: its member specs, its folds' records, and what its
    report says about it (architecture, features, seed, epochs, speakers, clips)."""

    members: list[str]
    pool_validation: bool
    records: dict[int, dict]
    description: dict

    @property
    def recipe(self) -> str:
        return " + ".join(self.members) + (" (validation pooled)" if self.pool_validation else "")


def load_run(paths: list[Path]) -> Run:
    """A run from its out-of-fold file(s); older files that lack the run's description take it from the
    ``cv_<arch>.json`` that ``train.py --cv`` wrote beside them, where there is one."""
    records, recipes, description = {}, set(), {}
    for path in map(Path, paths):
        report = json.loads(path.read_text())
        beside = path.with_name(path.name.replace("oof_", "cv_", 1))
        if any(key not in report for key in RUN_DESCRIPTION) and beside != path and beside.is_file():
            report = {**json.loads(beside.read_text()), **report}
        recipes.add((tuple(report["members"]), bool(report.get("pool_validation"))))
        description.update({key: report[key] for key in (*RUN_DESCRIPTION, "member_seeds") if key in report})
        for record in report["folds"]:
            if "conditions" not in record["test"]:
                raise ValueError(f"{path} is an out-of-fold file of an older format: write it again with "
                                 "python -m benchmarks.oof_from_models RUN_DIR")
            if record["fold"] in records:
                raise ValueError(f"fold {record['fold']} appears twice in {[str(p) for p in paths]}")
            records[record["fold"]] = record
    if len(recipes) != 1:
        raise ValueError(f"the files of one --member describe different recipes: {sorted(recipes)}")
    members, pooled = recipes.pop()
    return Run(list(members), pooled, records, description)


def describe(runs: list[Run]) -> dict:
    """The averaged runs' common description, as a ``train.py --cv`` report gives it: the members of
    every run in order, and each other key where the runs agree on it. Runs of different networks are
    described as one `train.py --members` run would be: ``arch`` "ser_cnn_lite+ser_tdnn", and each member
    not of the first run's network named with its own ("ser_tdnn/cosine+ema:acoustic_vtlp@last")."""
    base = runs[0].description.get("arch")
    # Runs of known networks: each member names its own where it differs from base, as train.py
    # --members would on --arch base.
    rebase = base is not None and all(run.description.get("arch") in ARCHITECTURES for run in runs)
    members = [MemberRecipe.parse(spec) for run in runs for spec in run.members]
    if rebase:
        networks = [run.description["arch"] for run in runs for _ in run.members]
        members = [replace(member, arch=member.network(network)).on(base)
                   for member, network in zip(members, networks)]
    merged = {"members": [str(member) for member in members],
              "pool_validation": any(run.pool_validation for run in runs)}
    if all(run.description.get("member_seeds") for run in runs):
        merged["member_seeds"] = [seed for run in runs for seed in run.description["member_seeds"]]
    for key in RUN_DESCRIPTION:
        # Runs older than --auxiliary-emotions trained on the six emotions alone.
        values = [run.description.get(key, [] if key == "auxiliary_emotions" else None) for run in runs]
        if all(value == values[0] for value in values) and values[0] is not None:
            merged[key] = values[0]
        elif key == "arch":
            merged[key] = (ensemble_arch(members, base) if base in ARCHITECTURES
                           else " + ".join(dict.fromkeys(str(value) for value in values)))
        elif key == "auxiliary_emotions":  # matches no recipe, so --temperature-from refuses the report
            merged[key] = "differs between members"
    return merged


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
    folds = sorted(set.intersection(*(set(run.records) for run in runs)))
    if not folds:
        parser.error("the members have no fold in common")
    results, fold_parts = [], []
    for fold in folds:
        alone = [score_fold(run.records[fold])[0] for run in runs]
        try:
            result, parts = score_fold(average([run.records[fold] for run in runs]))
        except ValueError as error:
            parser.error(str(error))
        result.update(train_seconds=round(sum(run.records[fold].get("train_seconds", 0.0) for run in runs), 1),
                      member_accuracy=[r["accuracy"] for r in alone])
        results.append(result)
        fold_parts.append(parts)
        member_figures = " ".join(f"{r['accuracy']:.3f}" for r in alone)
        print(f"fold {fold}: members {member_figures} -> average "
              f"{result['accuracy']:.3f} (UAR {result['uar']:.3f})")
    summary = summarise_folds(results)
    summary["pooled_calibration"] = pooled_calibration(fold_parts)
    print_cv_table(results, summary)
    for run, accuracies in zip(runs, np.array([r["member_accuracy"] for r in results]).T):
        print(f"alone: {run.recipe}: accuracy {accuracies.mean():.3f} ± {accuracies.std():.3f}")
    if args.out:
        # A complete average is a cross-validation report like train.py --cv's: the app's evaluation
        # pages read it, and train.py --temperature-from takes its out-of-fold temperature.
        artifacts.write_json(args.out, {"n_folds": len(results), **describe(runs), "folds": results, "summary": summary,
                                        "source": "benchmarks/oof_ensemble.py over "
                                                  + "; ".join(" ".join(map(str, p)) for p in args.member)})
        print(f"written to {args.out}")


if __name__ == "__main__":
    main()
