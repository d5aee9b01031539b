"""Classify audio files from the command line.

    python -m ser_core.predict clip.wav other.m4a [--json] [--threshold 0.55] [--artifacts DIR]

Prints one result per file. A bad file gets a message on stderr and the exit status is 1, but the
other files are still classified.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from ser_core.inference.artifacts import ModelNotFoundError  # noqa: E402
from ser_core.inference.audio import AudioError  # noqa: E402


def format_line(path: str, result) -> str:
    ranked = sorted(result.probabilities.items(), key=lambda item: -item[1])
    shown = ", ".join(f"{emotion} {p:.0%}" for emotion, p in ranked[:3])
    return f"{path}: {result.label} ({shown})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ser_core.predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--threshold", type=float, help="confidence below which the label is 'uncertain'")
    parser.add_argument("--artifacts", type=Path, help="model folder (default: artifacts/)")
    args = parser.parse_args(argv)

    from ser_core.inference.predictor import Predictor

    try:
        predictor = Predictor.from_artifacts(args.artifacts)
    except ModelNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    status = 0
    for path in args.files:
        try:
            result = predictor.predict_file(path, threshold=args.threshold)
        except AudioError as error:
            print(f"error: {error}", file=sys.stderr)
            status = 1
            continue
        if args.json:
            print(json.dumps({"file": str(path), **result.to_dict()}))
        else:
            print(format_line(str(path), result))
    return status


if __name__ == "__main__":
    sys.exit(main())
