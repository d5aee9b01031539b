"""Classify audio files from the command line.

    python -m ser_core.predict clip.wav other.m4a [--json] [--coverage 0.9] [--artifacts DIR]
    python -m ser_core.predict recordings/*.wav --adapt [--self-train]

Prints one result per file: the emotions that hold the true one 9 times in 10 on a recording setup
the model never heard (one when it is sure; ``--coverage`` 0.8 or 0.95 for another setting), then
the three likeliest with their probabilities. Recordings of any length are decoded and classified block by block
(a progress bar shows on a terminal); ``--json`` prints one object per file with the whole-file
answer and a timeline of the speech segments. Audio without enough speech gets a message, not an
emotion. A bad file gets a message on stderr that names it and the exit status is 1, but the other
files are still classified.

``--adapt`` (Whisper models) treats the files as recordings of one setup, or one speaker: the model
first measures them all, unlabelled, standardises with their statistics (from 5 files on), and then
answers each whole file (no timeline). ``--self-train`` also lets the head learn from its surest
answers on them first (30 files or more): for a batch that holds several emotions, not a batch of
mostly calm speech (docs/results.md, "A whole batch of a new setup").
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

__all__ = ["ADAPT_MAX_SECONDS", "ADAPT_TOO_LONG", "batch_refusal", "coverage_argument", "format_line", "main", "terminal_safe",
           "threshold_argument"]

# --adapt measures each file whole, in memory (about 4 MB of samples per minute, plus the encoder's
# frames): longer files are refused, never decoded past this, and can be classified without --adapt.
ADAPT_MAX_SECONDS = 600.0
ADAPT_TOO_LONG = " (--adapt measures each file whole, up to {limit:.0f} s; classify longer files without --adapt)"

ADAPT_NOTE = ("adapted to these {n} files as one setup{trained} (their own statistics, no labels): the answers "
              "assume the files share a room, microphone and speaker(s), and hold more than one mood")


def terminal_safe(text: str) -> str:
    """``text`` with its control characters written as escapes (ESC as ``\\x1b``), new lines kept.

    File names reach the terminal in every line these tools print; a name holding an ANSI escape
    sequence could otherwise recolour, move or clear the user's terminal.
    """
    return "".join(c if c.isprintable() or c == "\n" else c.encode("unicode_escape").decode("ascii") for c in text)


def threshold_argument(text: str) -> float:
    """argparse ``type`` of ``--threshold``: a confidence in [0, 1], else a message naming it."""
    from ser_core.inference.predictor import check_threshold

    try:
        return check_threshold(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def coverage_argument(text: str) -> float:
    """argparse ``type`` of ``--coverage``: a fraction between 0 and 1, else a message naming it."""
    from ser_core.inference.emotion_sets import check_coverage

    try:
        return check_coverage(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def format_line(path: str, result) -> str:
    ranked = sorted(result.probabilities.items(), key=lambda item: -item[1])
    shown = ", ".join(f"{emotion} {p:.0%}" for emotion, p in ranked[:3])
    line = f"{path}: {' or '.join(result.emotions) or result.label} ({shown})"
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
    parser.add_argument("--coverage", type=coverage_argument, default=0.9,
                        help="how often the answer's set of emotions should hold the true one (default 0.9; "
                             "calibrated for 0.8, 0.9 and 0.95)")
    parser.add_argument("--threshold", type=threshold_argument,
                        help="confidence from 0 to 1 below which the JSON 'label' is 'uncertain'")
    parser.add_argument("--artifacts", type=Path, help="model folder (default: artifacts/)")
    parser.add_argument("--adapt", action="store_true",
                        help="the files are one setup: adapt to them all first (whole-file answers only)")
    parser.add_argument("--self-train", action="store_true",
                        help="with --adapt: the model also learns from its surest answers on the files (30 or more)")
    args = parser.parse_args(argv)
    if args.self_train and not args.adapt:
        parser.error("--self-train learns from the files: use it with --adapt")

    from ser_core.inference.predictor import Predictor

    try:
        predictor = Predictor.from_artifacts(args.artifacts)
    except ModelNotFoundError as error:
        print(f"error: {terminal_safe(str(error))}", file=sys.stderr)
        return 2
    if args.adapt:
        return _adapted_batch(predictor, args)
    show_progress = not args.json and sys.stdout.isatty()
    status = 0
    for path in args.files:
        progress = _Progress(path.name, show_progress)
        try:
            result = predictor.predict_file(path, threshold=args.threshold, max_seconds=None,
                                            keep_features=False, progress=progress, coverage=args.coverage)
        except AudioError as error:
            progress.close()
            print(f"error: {terminal_safe(about_file(path, error))}", file=sys.stderr)
            status = 1
            continue
        progress.close()
        if args.json:
            print(json.dumps({"file": str(path), **result.to_dict()}))
        else:
            print(terminal_safe(format_line(str(path), result)))
    return status


def batch_refusal(predictor, adapt: bool, self_train: bool) -> str | None:
    """Why this model cannot do ``--adapt`` / ``--self-train`` (the CLIs' error message), or None."""
    if adapt and not predictor.supports_adaptation:
        return "--adapt needs a Whisper embedding model; this one cannot adapt"
    if self_train and not predictor.supports_self_training:
        return "--self-train needs a Whisper model with a least-squares (ridge) head; this one cannot"
    return None


def _adapted_batch(predictor, args: argparse.Namespace) -> int:
    """``--adapt``: every file measured first, then each whole file answered adapted to them all."""
    from ser_core.inference.adaptation import MIN_CLIPS, Adaptation
    from ser_core.inference.audio import load_audio
    from ser_core.inference.prediction import check_threshold
    from ser_core.inference.self_training import MIN_SELF_TRAINING_CLIPS

    refusal = batch_refusal(predictor, True, args.self_train)
    if refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    status, measured, samples = 0, [], []
    for path in args.files:
        try:
            wave = load_audio(path, predictor.params.sample_rate, max_seconds=ADAPT_MAX_SECONDS)
            samples.append(predictor.adaptation_sample(wave, predictor.params.sample_rate))
            measured.append(path)
        except AudioError as error:
            hint = ADAPT_TOO_LONG.format(limit=ADAPT_MAX_SECONDS) if "the limit is" in str(error) else ""
            print(f"error: {terminal_safe(about_file(path, error))}{hint}", file=sys.stderr)
            status = 1
    adaptation = Adaptation.empty()
    for sample in samples:
        adaptation = adaptation.add(sample)
    if samples and not adaptation.ready:
        print(f"note: {len(samples)} file(s) are too few to adapt to (it needs {MIN_CLIPS}); answered without "
              "adapting", file=sys.stderr)
    self_trained = args.self_train and predictor.self_trains(len(samples))  # 30 clips or more: ready to adapt too
    if args.self_train and adaptation.ready and not self_trained:
        print(f"note: {len(samples)} files are too few to self-train on (it needs {MIN_SELF_TRAINING_CLIPS}); "
              "adapted only", file=sys.stderr)
    if adaptation.ready:
        print(ADAPT_NOTE.format(n=len(samples), trained=", then self-trained on them" if self_trained else ""),
              file=sys.stderr)
    threshold = predictor.threshold if args.threshold is None else check_threshold(args.threshold)
    answers = predictor.batch_probabilities(samples, adaptation, self_train=self_trained)
    for path, sample, probabilities in zip(measured, samples, answers):
        top = max(probabilities, key=probabilities.get)
        uncertain = probabilities[top] < threshold
        ranked = sorted(probabilities.items(), key=lambda item: -item[1])
        emotions = predictor.emotion_set(probabilities, adapted=adaptation.ready, coverage=args.coverage)
        if args.json:
            print(json.dumps({"file": str(path), "emotions": emotions, "coverage": args.coverage,
                              "label": "uncertain" if uncertain else top, "top_emotion": top,
                              "confidence": probabilities[top], "uncertain": uncertain, "threshold": threshold,
                              "speech_seconds": sample.speech_seconds, "adapted": adaptation.ready,
                              "adaptation_clips": adaptation.n_clips if adaptation.ready else 0,
                              "self_trained": self_trained, "probabilities": probabilities}))
        else:
            shown = ", ".join(f"{emotion} {p:.0%}" for emotion, p in ranked[:3])
            print(terminal_safe(f"{path}: {' or '.join(emotions)} ({shown})"))
    return status


if __name__ == "__main__":
    sys.exit(main())
