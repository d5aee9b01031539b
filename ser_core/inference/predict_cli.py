"""Classify audio files from the command line.

    python -m ser_core.predict clip.wav other.m4a [--json] [--threshold 0.55] [--artifacts DIR]

Prints one result per file. Recordings of any length are decoded and classified block by block
(a progress bar shows on a terminal); ``--json`` prints one object per file with the whole-file
answer and a timeline of the speech segments. Audio without enough speech gets a message, not an
emotion. A bad file gets a message on stderr that names it and the exit status is 1, but the other
files are still classified.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from ser_core.inference.artifacts import ModelNotFoundError  # noqa: E402
from ser_core.inference.audio import AudioError, about_file  # noqa: E402

__all__ = ["format_line", "main", "threshold_argument"]


def threshold_argument(text: str) -> float:
    """argparse ``type`` of ``--threshold``: a confidence in [0, 1], else a message naming it."""
    from ser_core.inference.predictor import check_threshold

    try:
        return check_threshold(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def format_line(path: str, result) -> str:
    ranked = sorted(result.probabilities.items(), key=lambda item: -item[1])
    shown = ", ".join(f"{emotion} {p:.0%}" for emotion, p in ranked[:3])
    line = f"{path}: {result.label} ({shown})"
    if len(result.segments) > 1:
        line += f"; {len(result.segments)} speech segments, {result.speech_seconds:.0f} s of speech"
    return line


class _Progress:
    """A tqdm bar in seconds of audio, made on the first report (when the length is known)."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.label, self.enabled, self.bar = label, enabled, None

    def __call__(self, done_s: float, total_s: float | None) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            known = ("{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s "
                     "[{elapsed}<{remaining}]")
            self.bar = tqdm(total=round(total_s, 1) if total_s else None, desc=self.label, unit="s",
                            leave=False, bar_format=known if total_s else None)
        self.bar.update(round(done_s, 1) - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ser_core.predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per line, with a timeline of the speech segments")
    parser.add_argument("--threshold", type=threshold_argument,
                        help="confidence from 0 to 1 below which the label is 'uncertain'")
    parser.add_argument("--artifacts", type=Path, help="model folder (default: artifacts/)")
    args = parser.parse_args(argv)

    from ser_core.inference.predictor import Predictor

    try:
        predictor = Predictor.from_artifacts(args.artifacts)
    except ModelNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    show_progress = not args.json and sys.stdout.isatty()
    status = 0
    for path in args.files:
        progress = _Progress(path.name, show_progress)
        try:
            result = predictor.predict_file(path, threshold=args.threshold, max_seconds=None,
                                            keep_features=False, progress=progress)
        except AudioError as error:
            progress.close()
            print(f"error: {about_file(path, error)}", file=sys.stderr)
            status = 1
            continue
        progress.close()
        if args.json:
            print(json.dumps({"file": str(path), **result.to_dict()}))
        else:
            print(format_line(str(path), result))
    return status


if __name__ == "__main__":
    sys.exit(main())
