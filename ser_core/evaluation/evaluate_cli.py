"""Evaluate the shipped model on any labelled folder: a corpus, or one sub-folder per emotion.

    python -m ser_core.evaluate --data DIR [--corpus NAME] [--calm-as drop|neutral] [--json] [--artifacts DIR]

DIR is a folder train.py reads (RAVDESS, CREMA-D, TESS, nEMO or TurEV-DB, with their original file
names; the layout is recognised from the names, or named with ``--corpus``), or one sub-folder per
emotion: ``DIR/angry/*.wav``, ``DIR/fearful/*.flac``, ``DIR/sadness/...`` (the usual synonyms).
Folders of other emotions are reported and ignored, and so are files that cannot be decoded. With
``--json`` the last line of output is one JSON object with accuracy, uar, macro_f1, n and the rest
of the report.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from ser_core.inference.artifacts import ModelNotFoundError  # noqa: E402
from ser_core.data.corpora import DataUnavailableError  # noqa: E402
from ser_core.data.labels import CALM_CHOICES  # noqa: E402
from ser_core.data.registry import CORPORA, FOLDERS, labelled_clips  # noqa: E402
from ser_core.inference.audio import AudioError  # noqa: E402
from ser_core.inference.params import EMOTIONS  # noqa: E402


def format_report(report: dict) -> str:
    lines = [f"n = {report['n']}   accuracy {report['accuracy']:.3f}   UAR {report['uar']:.3f}   "
             f"macro-F1 {report['macro_f1']:.3f}", "",
             f"{'emotion':<9} {'precision':>9} {'recall':>7} {'F1':>6} {'support':>8}"]
    for emotion, row in report["per_class"].items():
        lines.append(f"{emotion:<9} {row['precision']:9.3f} {row['recall']:7.3f} {row['f1']:6.3f} {row['support']:8d}")
    labels = report["labels"]
    lines += ["", "confusion matrix (rows: true, columns: predicted)",
              " " * 9 + "".join(f"{label[:7]:>8}" for label in labels)]
    for label, row in zip(labels, report["confusion_matrix"]):
        lines.append(f"{label:<9}" + "".join(f"{count:8d}" for count in row))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ser_core.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True,
                        help="a corpus folder, or a folder with one sub-folder per emotion")
    parser.add_argument("--corpus", choices=[*CORPORA, FOLDERS.name], help="the layout of --data (default: detected)")
    parser.add_argument("--calm-as", choices=CALM_CHOICES, default="drop",
                        help="calm clips (TurEV-DB's, a calm/ folder): count as neutral, or leave out (default)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the report")
    parser.add_argument("--artifacts", type=Path, help="model folder (default: artifacts/)")
    args = parser.parse_args(argv)

    try:
        clips, scan = labelled_clips(args.data, args.corpus, calm_as=args.calm_as)
    except DataUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    files, ignored = [(Path(clip.path), clip.emotion) for clip in clips], scan.ignored_folders
    print(f"reading {args.data} as {scan.corpus}: {scan.summary().partition(': ')[2]}")
    for name in ignored:
        hint = " (--calm-as neutral counts it as neutral)" if name.lower() == "calm" else ""
        print(f"ignored folder '{name}': not one of {', '.join(EMOTIONS)}{hint}")
    if not files:
        if scan.corpus == FOLDERS.name:
            print(f"error: no audio files in emotion folders under {args.data}, and no file names of "
                  f"{', '.join(corpus.title for corpus in CORPORA.values())} either (or name the layout with "
                  "--corpus NAME)", file=sys.stderr)
        else:
            print(f"error: no audio files of the six emotions under {args.data} (read as {scan.corpus})",
                  file=sys.stderr)
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
    labels, predicted, skipped = [], [], []
    for path, emotion in tqdm(files, desc="evaluating", unit="file", disable=None):
        try:
            result = predictor.predict_file(path)
        except AudioError as error:
            skipped.append(f"{path}: {error}")
            continue
        labels.append(EMOTIONS.index(emotion))
        predicted.append(EMOTIONS.index(result.top_emotion))
    for line in skipped:
        print(f"skipped {line}", file=sys.stderr)
    if not labels:
        print("error: none of the files could be decoded", file=sys.stderr)
        return 1
    report = classification_report(np.array(labels), np.array(predicted))
    report["skipped"] = len(skipped)
    report["ignored_folders"] = ignored
    print(format_report(report))
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
