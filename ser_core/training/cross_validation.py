"""K-fold speaker-independent cross-validation of a recipe (``train.py --cv K``), or leave one corpus
out (``--cv corpus``: one fold per corpus, the other corpora train).

Every fold trains the run's members on the speakers outside it (``<run-dir>/fold<i>``) and is
scored on its own speakers by ``ser_core.evaluation.fold_scoring``. The run writes
``cv_<arch>.json`` (figures) and ``oof_<arch>.json`` (every fold's window logits) into
``--run-dir`` (``loco_<arch>.json`` and ``oof_loco_<arch>.json`` with ``--cv corpus``); a complete
speaker CV (every fold) also puts ``cv_<arch>.json`` into the artifacts folder for the app, in one
atomic write once the last fold is scored, so an interrupted run never replaces a report there.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from ser_core.data.corpora import Clip
from ser_core.data.split import fold_assignment, held_out_folds
from ser_core.data.subsets import NO_AUXILIARY, Auxiliary, pooled_training_set, subset, training_subset
from ser_core.evaluation.fold_scoring import (fold_result, pooled_calibration, print_cv_table, rounded, score,
                                              summarise_folds, window_logits)
from ser_core.evaluation.member_specs import CHECKPOINTS
from ser_core.inference import artifacts
from ser_core.inference.params import FeatureParams
from ser_core.training import fit

__all__ = ["run_cross_validation", "unknown_folds", "write_out_of_fold"]

log = logging.getLogger("train")

# The record's entries an out-of-fold file repeats (with the data's size), so it describes its run.
_OUT_OF_FOLD_KEYS = ("arch", "seed", "epochs", "feature_params", "n_folds", "cv", "speakers", "clips",
                     "auxiliary_emotions", "members", "member_seeds", "pool_validation")


def run_cross_validation(args: argparse.Namespace, record: dict, clips: list[Clip], features: list[np.ndarray],
                         params: FeatureParams, auxiliary: Auxiliary = NO_AUXILIARY) -> dict:
    """Train and score ``args.folds`` (default: every fold) of ``args.cv``; returns the report.

    Parameters
    ----------
    args : argparse.Namespace
        train.py's options (``cv``, ``folds``, ``seed``, ``members``, ``run_dir``, ``artifacts``...).
    record : dict
        The run's recipe record (``ser_core.training.record.recipe_record``), copied into the report.
    clips, features : list
        The six emotions' clips and their log-mel windows.
    params : FeatureParams
        The features' parameters (for the corrupted copies the robustness figures need).
    auxiliary : Auxiliary
        Auxiliary-emotion clips and features, added to every fold's training speakers.
    """
    folds = held_out_folds(clips, args.cv, seed=args.seed)
    corpora = sorted({clip.corpus for clip in clips})
    chosen = args.folds if args.folds is not None else range(len(folds))
    # leave-one-corpus-out reports get their own name: the app's cv_<arch>.json tables are speaker folds
    name = f"{'loco' if args.cv == 'corpus' else 'cv'}_{record['arch']}.json"
    # No report yet: an earlier start of this cross-validation was interrupted, and its finished
    # folds are loaded rather than trained again.
    interrupted = not (args.run_dir / name).exists()
    results, fold_parts = [], []
    for index in chosen:
        assignment = fold_assignment(clips, folds[index], seed=args.seed)
        train = training_subset(clips, features, auxiliary, assignment, "train")
        validation, test = (subset(clips, features, assignment, s) for s in ("validation", "test"))
        log.info("fold %d: test speakers %s, validation speakers %s", index, folds[index],
                 sorted({c.speaker for c in validation.clips}))
        run_dir = args.run_dir / f"fold{index}"
        model, histories, seconds = fit.train_members(
            train, validation, params, args, run_dir,
            pooled_training_set(clips, features, auxiliary, assignment, args.pool_validation),
            reuse_finished=interrupted)
        result, parts = fold_result(index, folds[index], model, test, validation, params, args.seed)
        if args.cv == "corpus":
            result["corpus"] = corpora[index]
        epochs, best = [len(h["epoch"]) for h in histories], [h["best_epoch"] for h in histories]
        result.update(epochs=epochs if len(epochs) > 1 else epochs[0], best_epoch=best if len(best) > 1 else best[0],
                      train_seconds=round(seconds, 1))
        result.update(_other_checkpoints(run_dir, args, test, result["temperature"]))
        results.append(result)
        fold_parts.append(parts)
        log.info("fold %d: accuracy %.3f UAR %.3f macro-F1 %.3f | %s", index, result["accuracy"],
                 result["uar"], result["macro_f1"], json.dumps(result["robustness"]))
    summary = summarise_folds(results)
    summary["pooled_calibration"] = pooled_calibration(fold_parts)
    print_cv_table(results, summary)
    report = {**record, "folds": results, "summary": summary, "n_folds": len(folds), "cv": args.cv,
              "speakers": len({c.speaker for c in clips}), "clips": len(clips)}
    artifacts.write_json(args.run_dir / name, report)
    stem = f"loco_{record['arch']}" if args.cv == "corpus" else record["arch"]
    write_out_of_fold(args.run_dir / f"oof_{stem}.json", report, fold_parts, results)
    if args.folds is None and args.cv != "corpus":  # a complete speaker CV goes next to the model, for the app
        artifacts.write_json(args.artifacts / name, report)
    log.info("cross-validation results written to %s", args.run_dir / name)
    return report


def unknown_folds(clips: list[Clip], cv: int | str | None, folds: list[int] | None) -> str | None:
    """Why ``--folds`` names a fold ``--cv corpus`` does not have (one per corpus found), or None."""
    corpora = sorted({clip.corpus for clip in clips})
    if cv != "corpus" or not folds or all(0 <= index < len(corpora) for index in folds):
        return None
    named = ", ".join(f"{index} {name}" for index, name in enumerate(corpora))
    return f"--folds {' '.join(map(str, folds))}: --cv corpus has one fold per corpus found here: {named}"


def _other_checkpoints(run_dir: Path, args: argparse.Namespace, test, temperature: float) -> dict:
    """Every member with its best, or every member with its last weights, scored on the same clips
    (where that differs from what the recipes keep): best-vs-last costs no extra run."""
    figures = {}
    for checkpoint in CHECKPOINTS:
        saved = all((directory / f"{checkpoint}.keras").exists()
                    for directory in fit.member_dirs(run_dir, len(args.members)))
        if saved and any(member.keep != checkpoint for member in args.members):
            other = score(window_logits(fit.load_members(run_dir, args.members, checkpoint), test), test, temperature)
            figures[f"{checkpoint}_checkpoint"] = {key: other[key] for key in ("accuracy", "uar", "macro_f1")}
    return figures


def write_out_of_fold(path: Path, report: dict, fold_parts: list[dict], results: list[dict]) -> None:
    """``oof_<arch>.json``: the run's description and every fold's out-of-fold record (logits to 4
    decimals), compact; ``ser_core.evaluation.fold_scoring.score_fold`` re-scores a fold from it."""
    artifacts.write_json(path, {**{key: report[key] for key in _OUT_OF_FOLD_KEYS if key in report},
                                "folds": [{**rounded(parts["out_of_fold"]), "train_seconds": result["train_seconds"]}
                                          for parts, result in zip(fold_parts, results)]}, indent=None)
