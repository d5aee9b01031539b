"""Evaluate the shipped model on any labelled folder: a corpus, or one sub-folder per emotion.

    python -m ser_core.evaluate --data DIR [--corpus NAME] [--calm-as drop|neutral] [--adapt [speaker]]
                               [--self-train] [--coverage 0.9] [--json] [--artifacts DIR]

DIR is a folder train.py reads (RAVDESS, CREMA-D, TESS, nEMO or TurEV-DB, with their original file
names; the layout is recognised from the names, or named with ``--corpus``), or one sub-folder per
emotion: ``DIR/angry/*.wav``, ``DIR/fearful/*.flac``, ``DIR/sadness/...`` (the usual synonyms).
Folders of other emotions are reported and ignored, and so are files that cannot be decoded. With
``--json`` the last line of output is one JSON object with accuracy, uar, macro_f1, n and the rest
of the report, and ``clips``: each file with its true emotion and its answer's set (``emotions``).
Beside the top emotion's figures it reports what the sets do (``set_coverage``: how often the set
holds the true emotion, ``mean_set_size``, ``single_rate``: how often it names one emotion, and
``single_accuracy``: how often that one is right) at ``--coverage`` (default 0.9).

``--adapt`` (Whisper models): the model first measures every clip of the folder, without its label,
and standardises with those statistics, as a user's adaptation would; the figures are reported as
"adapted", never as a strict (unseen-room) figure. ``--adapt speaker`` standardises each speaker
with their own clips instead (speakers as the corpus's file names give them; one speaker for a
folder of emotion folders). ``--self-train`` (with ``--adapt``) then lets the head learn from its
own surest answers on the folder before it answers (``inference.self_training``): for a folder of
at least 30 clips that holds several emotions.
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
from ser_core.inference.audio import AudioError, about_file, load_audio  # noqa: E402
from ser_core.inference.predict_cli import ADAPT_MAX_SECONDS, terminal_safe  # noqa: E402
from ser_core.inference.params import EMOTIONS  # noqa: E402
from ser_core.inference.self_training import MIN_SELF_TRAINING_CLIPS  # noqa: E402


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


def format_sets(report: dict) -> str:
    """The sets' figures in one plain line."""
    right = report["single_accuracy"]
    return (f"answer sets at {report['coverage']:.0%}: hold the true emotion {report['set_coverage']:.1%} of the time, "
            f"{report['mean_set_size']:.2f} emotions on average; one emotion named for {report['single_rate']:.1%} "
            f"of clips" + ("" if right is None else f", right {right:.1%} of those"))


def _coverage_argument(text: str) -> float:
    from ser_core.inference.emotion_sets import check_coverage

    try:
        return check_coverage(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ser_core.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True,
                        help="a corpus folder, or a folder with one sub-folder per emotion")
    parser.add_argument("--corpus", choices=[*CORPORA, FOLDERS.name], help="the layout of --data (default: detected)")
    parser.add_argument("--calm-as", choices=CALM_CHOICES, default="drop",
                        help="calm clips (TurEV-DB's, a calm/ folder): count as neutral, or leave out (default)")
    parser.add_argument("--adapt", nargs="?", const="folder", choices=("folder", "speaker"),
                        help="adapt to the folder first (its clips' statistics, no labels; 'speaker': each "
                             "speaker's own); the figures are 'adapted'")
    parser.add_argument("--self-train", action="store_true",
                        help="with --adapt: the head learns from its surest answers on the folder first")
    parser.add_argument("--coverage", type=_coverage_argument, default=0.9,
                        help="how often each answer's set of emotions should hold the true one (default 0.9)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the report")
    parser.add_argument("--artifacts", type=Path, help="model folder (default: artifacts/)")
    args = parser.parse_args(argv)
    if args.self_train and not args.adapt:
        parser.error("--self-train learns from the folder's clips: use it with --adapt")

    try:
        clips, scan = labelled_clips(args.data, args.corpus, calm_as=args.calm_as)
    except DataUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    files, ignored = [(Path(clip.path), clip.emotion) for clip in clips], scan.ignored_folders
    speaker_of = {Path(clip.path): clip.speaker for clip in clips}
    print(f"reading {args.data} as {scan.corpus}: {scan.summary().partition(': ')[2]}")
    for name in ignored:
        hint = " (--calm-as neutral counts it as neutral)" if name.lower() == "calm" else ""
        print(terminal_safe(f"ignored folder '{name}': not one of {', '.join(EMOTIONS)}{hint}"))
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
    from ser_core.inference.speech import NotEnoughSpeech

    from ser_core.inference.predict_cli import batch_refusal

    refusal = batch_refusal(predictor, bool(args.adapt), args.self_train)
    if refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    labels, predicted, skipped, speakers, sets, scored = [], [], [], [], [], []
    refused = {"no_speech": 0, "too_little_speech": 0}
    samples = []
    for path, emotion in tqdm(files, desc="measuring" if args.adapt else "evaluating", unit="file", disable=None):
        try:
            if args.adapt:  # one encoder pass per file: the clip's answer comes from the same sample
                wave = load_audio(path, predictor.params.sample_rate, max_seconds=ADAPT_MAX_SECONDS)
                samples.append(predictor.adaptation_sample(wave, predictor.params.sample_rate))
            else:
                result = predictor.predict_file(path, max_seconds=None, keep_features=False, coverage=args.coverage)
        except NotEnoughSpeech as error:
            refused[error.kind] += 1
            skipped.append(about_file(path, error))
            continue
        except AudioError as error:
            skipped.append(about_file(path, error))
            continue
        labels.append(EMOTIONS.index(emotion))
        speakers.append(speaker_of.get(path) or "")
        scored.append(path)
        if not args.adapt:
            predicted.append(EMOTIONS.index(result.top_emotion))
            sets.append(result.emotions)
    if args.adapt and samples:
        from ser_core.inference.adaptation import Adaptation

        groups = speakers if args.adapt == "speaker" else [""] * len(samples)
        by_group = {}
        for sample, group in zip(samples, groups):
            by_group[group] = by_group.get(group, Adaptation.empty()).add(sample)
        answers = predictor.batch_probabilities(samples, [by_group[group] for group in groups],
                                                self_train=args.self_train)
        predicted = [EMOTIONS.index(max(probabilities, key=probabilities.get)) for probabilities in answers]
        sets = [predictor.emotion_set(probabilities, adapted=adaptation.ready, coverage=args.coverage)
                for probabilities, adaptation in zip(answers, [by_group[group] for group in groups])]
    for line in skipped:
        print(f"skipped {terminal_safe(line)}", file=sys.stderr)
    if not labels:
        print("error: none of the files could be classified (see the messages above)",
              file=sys.stderr)
        return 1
    report = classification_report(np.array(labels), np.array(predicted))
    truth = [EMOTIONS[label] for label in labels]
    in_set = [emotion in answer for emotion, answer in zip(truth, sets)]
    singles = [hit for hit, answer in zip(in_set, sets) if len(answer) == 1]
    report.update(coverage=args.coverage, set_coverage=float(np.mean(in_set)),
                  mean_set_size=float(np.mean([len(answer) for answer in sets])),
                  single_rate=len(singles) / len(sets),
                  single_accuracy=float(np.mean(singles)) if singles else None,
                  clips=[{"file": str(path), "emotion": emotion, "emotions": answer}
                         for path, emotion, answer in zip(scored, truth, sets)])
    report["skipped"] = len(skipped)
    report["refused_for_speech"] = refused
    report["ignored_folders"] = ignored
    report["protocol"] = "adapted" if args.adapt else "strict"
    if args.adapt:
        report["adaptation"] = args.adapt
        report["adaptation_clips"] = len(samples)
        statistics = ("each speaker's own unlabelled clips" if args.adapt == "speaker"
                      else f"the unlabelled statistics of this folder's {len(samples)} clips")
        self_trained = args.self_train and predictor.self_trains(len(samples))
        report["self_trained"] = self_trained
        if args.self_train and not self_trained:
            print(f"not self-trained: {len(samples)} clips, it needs {MIN_SELF_TRAINING_CLIPS} or more")
        print(f"adapted: standardised with {statistics}{', then self-trained on them' if self_trained else ''} "
              "(as a user's adaptation would be); not a figure for a room the model has never heard")
    if any(refused.values()):
        print(f"{refused['no_speech']} file(s) held no speech and {refused['too_little_speech']} "
              f"too little speech for an answer; they are left out of the figures below.")
    print(format_report(report))
    print(format_sets(report))
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
