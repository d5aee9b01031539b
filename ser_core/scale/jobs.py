"""The batch engine: files -> Ray Data (an actor pool, the model loaded once per worker) -> Parquet parts.

The driver lists the files, leaves out those the output already holds (resume), streams the rest
through the workers and writes what comes back in parts (:mod:`ser_core.scale.parts`) every
``part_files`` files or ``part_seconds`` seconds, whichever comes first: a killed job loses at most
that much work. Ray restarts a worker process that dies and runs its batch again.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from ser_core.scale.inputs import InputFile
from ser_core.scale.model_files import ModelFiles
from ser_core.scale.parts import FILES, MEASURED, Output, read_table
from ser_core.scale.workers import FileAnswers, FileMeasures, batches_for

__all__ = ["BatchOptions", "Summary", "run_batch", "stream"]


@dataclass(frozen=True)
class BatchOptions:
    """How a batch job runs (what ``python -m ser_core.batch`` parses into)."""

    output: Path
    threshold: float | None = None
    segments: bool = False
    adapt: str | None = None  # None, "speaker" (each speaker's own statistics) or "all" (the files as one setup)
    resume: bool = True
    workers: int | None = None  # the actor pool's size (default: every CPU Ray has)
    batch_files: int = 4  # files per Ray task
    part_files: int = 200
    part_seconds: float = 60.0
    progress: bool | None = None  # None: a bar on a terminal only


@dataclass
class Summary:
    """What a job did: counts of this run's rows by status, and of the whole output."""

    listed: int = 0
    skipped: int = 0  # already in the output (resumed)
    this_run: Counter = field(default_factory=Counter)
    in_output: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def done_this_run(self) -> int:
        return sum(self.this_run.values())

    def lines(self) -> list[str]:
        rate = self.done_this_run / self.seconds if self.seconds > 0 else 0.0
        counts = self.in_output
        no_speech = counts["no_speech"] + counts["too_little_speech"]
        return [f"{counts['answered']} answered, {no_speech} without enough speech, {counts['error']} errors "
                f"({sum(counts.values())} files in the output)",
                f"this run: {self.done_this_run} files in {self.seconds:.1f} s ({rate:.2f} files/s); "
                f"{self.skipped} were already done"]


def stream(ray, items: list[dict[str, Any]], worker: type, constructor: dict[str, Any], pool: int,
           batch_files: int) -> Iterator[dict[str, list]]:
    """``items`` through ``worker`` on a pool of ``pool`` actors (one CPU each); batches as they finish.

    Ray Data restarts an actor whose process dies and runs its unfinished batches again (its
    defaults: ``max_restarts=-1``, ``max_task_retries=-1``). Through Ray Client (``ray://``), where
    Ray Data does not run (ray-project/ray#48682), the same pool is kept with Ray's core API.
    """
    blocks = batches_for(len(items), batch_files)
    pool = min(pool, blocks)
    if ray.util.client.ray.is_connected():
        yield from _stream_through_client(ray, items, worker, constructor, pool, batch_files)
        return
    import ray.data

    dataset = ray.data.from_items(items, override_num_blocks=blocks)
    dataset = dataset.map_batches(worker, fn_constructor_kwargs=constructor, batch_size=batch_files,
                                  batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=pool), num_cpus=1)
    yield from dataset.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=1)


def _stream_through_client(ray, items: list[dict[str, Any]], worker: type, constructor: dict[str, Any], pool: int,
                           batch_files: int, in_flight: int = 2) -> Iterator[dict[str, list]]:
    """:func:`stream` with plain Ray actors: ``in_flight`` batches queued per actor, the next one sent as one returns."""
    import numpy as np

    actor_class = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=-1)(worker)
    actors = [actor_class.remote(**constructor) for _ in range(pool)]
    batches = [items[start : start + batch_files] for start in range(0, len(items), batch_files)]
    pending: dict[Any, int] = {}
    sent = 0

    def send(actor: int) -> None:
        nonlocal sent
        columns = {key: np.array([item[key] for item in batches[sent]]) for key in batches[sent][0]}
        pending[actors[actor].process.remote(columns)] = actor
        sent += 1

    try:
        for actor in list(range(pool)) * in_flight:
            if sent < len(batches):
                send(actor)
        while pending:
            (ready,), _ = ray.wait(list(pending), num_returns=1)
            actor = pending.pop(ready)
            yield ray.get(ready)
            if sent < len(batches):
                send(actor)
    finally:
        for handle in actors:
            ray.kill(handle)


def _pool_size(ray, workers: int | None, files: int) -> int:
    cpus = int(ray.cluster_resources().get("CPU", 1))
    return max(1, min(workers or cpus, cpus, files))


class _Progress:
    def __init__(self, total: int, enabled: bool | None) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="file", desc="files", disable=(not sys.stderr.isatty()) if enabled is None
                        else not enabled, smoothing=0.1)

    def update(self, n: int) -> None:
        self.bar.update(n)

    def close(self) -> None:
        self.bar.close()


def run_batch(ray, files: list[InputFile], model: ModelFiles, options: BatchOptions,
              on_batch: Callable[[int, dict[str, list]], None] | None = None) -> Summary:
    """Answer every file not yet in ``options.output``; returns the :class:`Summary`.

    ``on_batch(files done this run, the batch as the workers sent it)`` is called after each batch.

    Raises
    ------
    JobMismatch
        The output holds another model's or another setting's results.
    """
    start = time.perf_counter()
    job = {"model_hash": model.model_hash, "threshold": options.threshold, "segments": options.segments,
           "adapt": options.adapt}
    output = Output(options.output, job)
    output.open(options.resume)
    done = output.done(FILES)
    summary = Summary(listed=len(files))
    if options.adapt:
        _run_adapted(ray, files, model, options, output, done, summary, on_batch)
    else:
        todo = [item for item in files if item.path not in done]
        summary.skipped = len(files) - len(todo)
        if todo:
            items = [{"path": item.path, "speaker": item.speaker or ""} for item in todo]
            constructor = {"model": model, "threshold": options.threshold, "segments": options.segments}
            batches = stream(ray, items, FileAnswers, constructor, _pool_size(ray, options.workers, len(todo)),
                             options.batch_files)
            _collect(batches, len(todo), output, FILES, options, summary, on_batch, with_segments=options.segments)
    summary.seconds = time.perf_counter() - start
    statuses = read_table(options.output / FILES, ["status"])
    summary.in_output = Counter(statuses.column("status").to_pylist()) if "status" in statuses.column_names else Counter()
    return summary


def _collect(batches: Iterator[dict[str, list]], total: int, output: Output, kind: str, options: BatchOptions,
             summary: Summary, on_batch: Callable[[int, dict[str, list]], None] | None, with_segments: bool = False) -> None:
    progress = _Progress(total, options.progress)
    rows: list[dict] = []
    segments: list[dict] = []
    last_write = time.monotonic()
    try:
        for batch in batches:
            for index, text in enumerate(batch["row"]):
                row = json.loads(text)
                rows.append(row)
                summary.this_run[row["status"]] += 1
                if with_segments:
                    segments.extend(json.loads(batch["segments"][index]))
            progress.update(len(batch["row"]))
            if len(rows) >= options.part_files or time.monotonic() - last_write >= options.part_seconds:
                output.write(rows, segments, kind)
                rows, segments, last_write = [], [], time.monotonic()
            if on_batch is not None:
                on_batch(summary.done_this_run, batch)
        output.write(rows, segments, kind)
    finally:
        progress.close()


def _run_adapted(ray, files: list[InputFile], model: ModelFiles, options: BatchOptions, output: Output,
                 done: set[str], summary: Summary, on_batch: Callable[[int, dict[str, list]], None] | None) -> None:
    """Measure every file (resumably, on the workers), then answer each with its group's statistics (here)."""
    measured = output.done(MEASURED)
    todo = [item for item in files if item.path not in measured and item.path not in done]
    summary.skipped = len(files) - len(todo)
    if todo:
        items = [{"path": item.path, "speaker": item.speaker or ""} for item in todo]
        batches = stream(ray, items, FileMeasures, {"model": model}, _pool_size(ray, options.workers, len(todo)),
                         options.batch_files)
        _collect(batches, len(todo), output, MEASURED, options, summary, on_batch)
    wanted = {item.path for item in files}
    measured_rows = [row for row in read_table(output.root / MEASURED).to_pylist() if row["path"] in wanted]
    # Every measured file of a group counts towards its statistics, also those answered before a restart.
    answered = [row for row in _adapted_answers(model, measured_rows, options) if row["path"] not in done]
    for start in range(0, len(answered), options.part_files):
        output.write(answered[start : start + options.part_files])
    summary.this_run = Counter(row["status"] for row in answered)


def _adapted_answers(model: ModelFiles, rows: list[dict[str, Any]], options: BatchOptions) -> list[dict[str, Any]]:
    """Each measured file's answer, standardised with its group's statistics (``evaluate --adapt speaker``)."""
    import numpy as np

    from ser_core.inference.adaptation import Adaptation, AdaptationSample
    from ser_core.inference.prediction import UNCERTAIN, check_threshold

    predictor = model.load()
    threshold = predictor.threshold if options.threshold is None else check_threshold(options.threshold)
    measured = [row for row in rows if row["status"] == "measured"]
    samples = [AdaptationSample(np.asarray(row["features"], dtype=np.float64), row["speech_seconds"],
                                predictor.adaptation_key) for row in measured]
    groups = [row.get("speaker") or "" if options.adapt == "speaker" else "" for row in measured]
    by_group: dict[str, Adaptation] = {}
    for sample, group in zip(samples, groups):
        by_group[group] = by_group.get(group, Adaptation.empty()).add(sample)
    answers = predictor.batch_probabilities(samples, [by_group[group] for group in groups])
    out = []
    for row, group, probabilities in zip(measured, groups, answers):
        top = max(probabilities, key=probabilities.get)
        adaptation = by_group[group]
        uncertain = probabilities[top] < threshold
        out.append({"path": row["path"], "speaker": row.get("speaker"), "status": "answered", "error": None,
                    "duration_s": row["duration_s"], "speech_seconds": row["speech_seconds"],
                    "label": UNCERTAIN if uncertain else top, "top_emotion": top, "confidence": probabilities[top],
                    "uncertain": uncertain, "threshold": threshold, "adapted": adaptation.ready,
                    "adaptation_clips": adaptation.n_clips if adaptation.ready else 0,
                    **{f"p_{emotion}": p for emotion, p in probabilities.items()}, "model_hash": row["model_hash"]})
    for row in rows:
        if row["status"] != "measured":
            out.append({key: value for key, value in row.items() if key != "features"})
    return out
