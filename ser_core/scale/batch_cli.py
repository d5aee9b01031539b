"""Answer an archive of recordings, on this machine's cores or on a Ray cluster, into Parquet.

    python -m ser_core.batch INPUT... --output OUT [--workers N | --address ray://HOST:10001|auto]
                             [--segments] [--adapt speaker|all] [--threshold 0.5] [--no-resume]

INPUT is a folder (searched for audio), a glob ("calls/**/*.wav"), a manifest (.csv or .parquet
with a ``path`` column and optionally ``speaker``) or a file; local paths or fsspec URLs. Each
file is decoded, its speech found and the model's answer written as one row of
OUT/files/part-*.parquet: path, duration, seconds of speech, the answer (label, or "uncertain"),
top emotion, confidence, one probability per emotion (p_angry, ...), the model's hash, and status:
answered, no_speech, too_little_speech or error (with the error's message). ``--segments`` also
writes one row per speech segment to OUT/segments/. Read them with
``pandas.read_parquet("OUT/files")``.

A job that is stopped (Ctrl-C, a crash, a killed machine) is started again with the same command:
the files already written are skipped and nothing is lost. ``--adapt speaker`` standardises each
speaker's files with that speaker's own statistics (the manifest's ``speaker`` column), as
``python -m ser_core.evaluate --adapt speaker`` does; ``--adapt all`` treats every file as one
setup, as ``predict --adapt`` does. Adapted answers are whole-file answers only.

Ray's usage statistics are off; its dashboard starts only with ``--dashboard``. docs/scale.md
tells how to run on a cluster and what it costs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__all__ = ["main"]


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, got {text!r}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from ser_core.inference.predict_cli import threshold_argument

    parser = argparse.ArgumentParser(prog="python -m ser_core.batch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="folder, glob, manifest (.csv/.parquet) or file")
    parser.add_argument("--output", "-o", type=Path, required=True, help="output folder (Parquet parts)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=_positive, help="start a local Ray with this many CPUs (default: all)")
    where.add_argument("--address", help="use an existing Ray cluster as it is: 'auto' or ray://HOST:10001")
    parser.add_argument("--segments", action="store_true", help="also one row per speech segment (OUT/segments)")
    parser.add_argument("--adapt", choices=("speaker", "all"),
                        help="standardise with each speaker's own statistics (manifest 'speaker' column), or "
                             "with all the files' as one setup")
    parser.add_argument("--threshold", type=threshold_argument,
                        help="confidence from 0 to 1 below which the label is 'uncertain' (default: the model's)")
    parser.add_argument("--artifacts", type=Path, help="model folder (default: artifacts/)")
    parser.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                        help="skip the files OUT already holds (default); --no-resume deletes its results first")
    parser.add_argument("--dashboard", action="store_true", help="start Ray's dashboard (local Ray only)")
    parser.add_argument("--batch-files", type=_positive, default=4, help="files per Ray task (default 4)")
    parser.add_argument("--part-files", type=_positive, default=200,
                        help="files per output part: at most this much work is lost to a kill (default 200)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.adapt and args.segments:
        parser.error("--segments gives a timeline per file; adapted answers (--adapt) are whole-file answers only")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from ser_core.inference.artifacts import ModelNotFoundError
    from ser_core.scale.inputs import list_inputs
    from ser_core.scale.model_files import ModelFiles
    from ser_core.scale.parts import JobMismatch

    try:
        model = ModelFiles.read(args.artifacts)
    except ModelNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        files = list_inputs(args.inputs)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.adapt == "speaker":
        unnamed = sum(item.speaker is None for item in files)
        if unnamed:
            print(f"error: --adapt speaker needs each file's speaker: {unnamed} of {len(files)} files have none "
                  "(give a manifest with a 'speaker' column)", file=sys.stderr)
            return 2
    print(f"{len(files)} files; results in {args.output}", file=sys.stderr)

    from ser_core.scale.cluster import start_ray, stop_ray
    from ser_core.scale.jobs import BatchOptions, run_batch

    options = BatchOptions(output=args.output, threshold=args.threshold, segments=args.segments, adapt=args.adapt,
                           resume=args.resume, workers=args.workers, batch_files=args.batch_files,
                           part_files=args.part_files, progress=False if args.quiet else None)
    ray = start_ray(args.workers, args.address, dashboard=args.dashboard)
    try:
        summary = run_batch(ray, files, model, options)
    except JobMismatch as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stopped: the parts written so far are kept; run the same command again to go on", file=sys.stderr)
        return 130
    finally:
        stop_ray()
    for line in summary.lines():
        print(line)
    return 1 if summary.this_run["error"] else 0
