"""Evaluate the shipped model on any labelled folder, one sub-folder per emotion.

    python -m ser_core.evaluate --data DIR [--json] [--artifacts DIR]

``DIR/angry/*.wav``, ``DIR/sad/*.flac``, ... ; folders not named after one of the six emotions are
reported and ignored, and so are files that cannot be decoded. With ``--json`` the last line of
output is one JSON object with accuracy, uar, macro_f1, n and the rest of the report.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from ser_core.inference.artifacts import ModelNotFoundError  # noqa: E402
from ser_core.inference.audio import SUPPORTED_EXTENSIONS, AudioError, about_file  # noqa: E402
from ser_core.inference.params import EMOTIONS  # noqa: E402


def labelled_files(root: Path) -> tuple[list[tuple[Path, str]], list[str]]:
    """``(file, emotion)`` pairs from the emotion sub-folders, and the names of ignored folders."""
    files, ignored = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        emotion = folder.name.lower()
        if emotion not in EMOTIONS:
            ignored.append(folder.name)
            continue
        files += [(path, emotion) for path in sorted(folder.rglob("*"))
                  if path.is_file() and path.suffix.lower() in SUPPORTED_EXTENSIONS]
    return files, ignored


def _cell(value: float | None, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:{width}.3f}"


def format_report(report: dict) -> str:
    lines = [f"n = {report['n']}   accuracy {report['accuracy']:.3f}   UAR {report['uar']:.3f}   "
             f"macro-F1 {report['macro_f1']:.3f}", "",
             f"{'emotion':<9} {'precision':>9} {'recall':>7} {'F1':>6} {'support':>8}"]
    for emotion, row in report["per_class"].items():
        if row["support"] == 0:
            predicted = row.get("predicted", 0)
            times = f"{predicted} time{'s' if predicted != 1 else ''}"
            note = f" (no clips; predicted {times})" if predicted else " (no clips)"
            lines.append(f"{emotion:<9} {'not measured':>24} {row['support']:8d}{note}")
            continue
        lines.append(f"{emotion:<9} {_cell(row['precision'], 9)} {_cell(row['recall'], 7)} "
                     f"{_cell(row['f1'], 6)} {row['support']:8d}")
    if any(row["support"] == 0 for row in report["per_class"].values()):
        lines.append("(UAR and macro-F1 average the emotions that have clips only.)")
    labels = report["labels"]
    lines += ["", "confusion matrix (rows: true, columns: predicted)",
              " " * 9 + "".join(f"{label[:7]:>8}" for label in labels)]
    for label, row in zip(labels, report["confusion_matrix"]):
        lines.append(f"{label:<9}" + "".join(f"{count:8d}" for count in row))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ser_core.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="folder with one sub-folder per emotion")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the report")
    parser.add_argument("--artifacts", type=Path, help="model folder (default: artifacts/)")
    args = parser.parse_args(argv)

    if not args.data.is_dir():
        print(f"error: {args.data} is not a directory", file=sys.stderr)
        return 2
    files, ignored = labelled_files(args.data)
    for name in ignored:
        print(f"ignored folder '{name}': not one of {', '.join(EMOTIONS)}")
    if not files:
        print(f"error: no audio files in emotion folders under {args.data}", file=sys.stderr)
        return 2

    import numpy as np
    from tqdm import tqdm

    from ser_core.evaluation.metrics import classification_report
    from ser_core.inference.predictor import Predictor

    try:
        predictor = Predictor.from_artifacts(args.artifacts)
    except ModelNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from ser_core.inference.speech import NotEnoughSpeech

    labels, predicted, skipped = [], [], []
    refused = {"no_speech": 0, "too_little_speech": 0}
    for path, emotion in tqdm(files, desc="evaluating", unit="file", disable=None):
        try:
            result = predictor.predict_file(path, max_seconds=None, keep_features=False)
        except NotEnoughSpeech as error:
            refused[error.kind] += 1
            skipped.append(about_file(path, error))
            continue
        except AudioError as error:
            skipped.append(about_file(path, error))
            continue
        labels.append(EMOTIONS.index(emotion))
        predicted.append(EMOTIONS.index(result.top_emotion))
    for line in skipped:
        print(f"skipped {line}", file=sys.stderr)
    if not labels:
        print("error: none of the files could be classified (see the messages above)",
              file=sys.stderr)
        return 1
    report = classification_report(np.array(labels), np.array(predicted))
    report["skipped"] = len(skipped)
    report["refused_for_speech"] = refused
    report["ignored_folders"] = ignored
    if any(refused.values()):
        print(f"{refused['no_speech']} file(s) held no speech and {refused['too_little_speech']} "
              f"too little speech for an answer; they are left out of the figures below.")
    print(format_report(report))
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
