"""Throughput and worker memory of ``python -m ser_core.batch``: 1 and 2 local workers, and two nodes, in one run.

    nice -n 5 python -m benchmarks.batch [--clips 1000] [--data-root ../shared/data] [--configs 1 2 nodes 2 1]

Takes ``--clips`` files spread evenly over every corpus in ``--data-root`` (every k-th file of the
sorted list) and answers them all with each configuration, each into an empty output folder:

- ``1``, ``2``: a local Ray with that many CPUs (one worker per CPU);
- ``nodes``: a two-node cluster simulated on this machine (``ray.cluster_utils.Cluster``: a head and
  a second node of one CPU each, on loopback), joined as an existing cluster;
- ``plain``: no Ray, ``Predictor.predict_file`` in a loop in this process (what ``predict`` does),
  for the engine's overhead.

Prints for each: wall time (Ray start and model loading included), the steady rate (files per
second from the first 10 % of files to the end), the workers' resident memory sampled every 2 s
(first sample after 10 % of the files, the last, the largest), their CPU time per file, and the
load average. Then the
throughput ratio of 2 workers to 1 (means over the repeats: the default order 1 2 nodes 2 1
spreads a change in the machine's load over both).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

from ser_core.scale.inputs import AUDIO_SUFFIXES, InputFile
from ser_core.scale.jobs import BatchOptions, run_batch
from ser_core.scale.model_files import ModelFiles


def pick_clips(root: Path, n: int) -> list[InputFile]:
    every = sorted(str(path) for path in root.rglob("*") if path.suffix.lower() in AUDIO_SUFFIXES)
    step = max(1, len(every) // n)
    return [InputFile(path) for path in every[::step][:n]]


def _descends_from_us(pid: int) -> bool:
    """True for a process this benchmark started (through Ray): other people's Ray jobs are not measured."""
    ours = os.getpid()
    while pid > 1:
        if pid == ours:
            return True
        try:
            with open(f"/proc/{pid}/status") as handle:
                pid = int(next(line for line in handle if line.startswith("PPid:")).split()[1])
        except (OSError, StopIteration):
            return False
    return False


def worker_memory_mb() -> dict[int, tuple[float, float]]:
    """Resident memory (MB) and CPU time so far (s) of the Ray Data worker processes (``ray::MapWorker...``)
    this run started."""
    found = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or not _descends_from_us(int(entry)):
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                if not handle.read(64).startswith(b"ray::MapWorker"):
                    continue
            with open(f"/proc/{entry}/status") as handle:
                rss = next(line for line in handle if line.startswith("VmRSS:"))
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            found[int(entry)] = (int(rss.split()[1]) / 1024, (int(fields[11]) + int(fields[12])) / tick)
        except (OSError, StopIteration):
            continue
    return found


class Sampler:
    """Samples the workers' memory and the load average every ``period`` seconds while a job runs."""

    def __init__(self, period: float = 2.0) -> None:
        self.period, self.samples, self.loads = period, [], []
        self.done = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.samples.append((self.done, worker_memory_mb()))
            self.loads.append(os.getloadavg()[0])

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join()


def run(name: str, ray, files: list[InputFile], model: ModelFiles, workers: int | None) -> dict:
    marks: list[tuple[float, int]] = []
    with tempfile.TemporaryDirectory(prefix=f"batch_{name}_") as out, Sampler() as sampler:
        start = time.perf_counter()

        def on_batch(done: int, _batch) -> None:
            sampler.done = done
            marks.append((time.perf_counter(), done))

        summary = run_batch(ray, files, model, BatchOptions(output=Path(out), workers=workers, progress=False),
                            on_batch=on_batch)
        wall = time.perf_counter() - start
    tenth = next((t, d) for t, d in marks if d >= len(files) // 10)
    steady = (marks[-1][1] - tenth[1]) / (marks[-1][0] - tenth[0])
    late = [(done, memory) for done, memory in sampler.samples if done >= len(files) // 10 and memory]
    per_worker, cpu = {}, {}
    for _, memory in late:
        for pid, (mb, seconds) in memory.items():
            per_worker.setdefault(pid, []).append(mb)
            cpu[pid] = seconds
    memory_text = "; ".join(f"pid {pid}: {values[0]:.0f} -> {values[-1]:.0f} MB (max {max(values):.0f})"
                            for pid, values in per_worker.items())
    # CPU the workers used per file (model loading included; the last sample, up to 2 s before the end):
    # what the answers cost whatever share of the shared cores the job got.
    cpu_text = f"{sum(cpu.values()) / len(files) * 1000:.0f} ms of worker CPU per file"
    load = sum(sampler.loads) / max(len(sampler.loads), 1)
    print(f"{name}: {summary.done_this_run} files ({dict(summary.this_run)}) in {wall:.1f} s wall "
          f"({summary.done_this_run / wall:.2f} files/s with start-up); steady {steady:.2f} files/s; "
          f"load average {load:.1f}; {cpu_text}; workers {memory_text}", flush=True)
    return {"wall": wall, "steady": steady}


def plain(files: list[InputFile], model: ModelFiles) -> dict:
    """The same files answered in this process without Ray (the model loading included in the wall time)."""
    start, cpu_start = time.perf_counter(), time.process_time()
    predictor = model.load()
    tenth = None
    for index, item in enumerate(files, 1):
        try:
            predictor.predict_file(item.path, max_seconds=None, keep_features=False)
        except Exception:  # noqa: BLE001 - no speech and the like, as the batch rows
            pass
        if index == len(files) // 10:
            tenth = time.perf_counter()
    end = time.perf_counter()
    steady = (len(files) - len(files) // 10) / (end - tenth)
    cpu = (time.process_time() - cpu_start) / len(files) * 1000
    print(f"plain loop: {len(files)} files in {end - start:.1f} s wall; steady {steady:.2f} files/s; "
          f"load average {os.getloadavg()[0]:.1f}; {cpu:.0f} ms of CPU per file", flush=True)
    return {"wall": end - start, "steady": steady}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--clips", type=int, default=1000)
    parser.add_argument("--configs", nargs="+", default=["1", "2", "nodes", "2", "1"],
                        choices=["1", "2", "nodes", "plain"])
    args = parser.parse_args()
    from ser_core.scale.cluster import start_ray, stop_ray

    files = pick_clips(args.data_root, args.clips)
    model = ModelFiles.read()
    print(f"{len(files)} clips from {args.data_root}; {os.cpu_count()} CPUs; load average at start "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    results: dict[str, list[dict]] = {}
    for config in args.configs:
        if config == "plain":
            results.setdefault(config, []).append(plain(files, model))
        elif config == "nodes":
            from ray.cluster_utils import Cluster

            os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
            cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
            cluster.add_node(num_cpus=1)
            ray = start_ray(address=cluster.address, ship_code=False)
            print(f"nodes: {len(ray.nodes())} nodes, {ray.cluster_resources().get('CPU')} CPUs", flush=True)
            results.setdefault(config, []).append(run("two nodes", ray, files, model, None))
            stop_ray()
            cluster.shutdown()
        else:
            ray = start_ray(int(config))
            results.setdefault(config, []).append(run(f"{config} worker(s)", ray, files, model, int(config)))
            stop_ray()
    mean = {config: {key: sum(run[key] for run in runs) / len(runs) for key in ("wall", "steady")}
            for config, runs in results.items()}
    for config, figures in mean.items():
        print(f"mean of {len(results[config])} run(s) of {config}: steady {figures['steady']:.2f} files/s, "
              f"wall {figures['wall']:.1f} s")
    if "1" in mean and "2" in mean:
        print(f"2 workers / 1 worker: {mean['2']['steady'] / mean['1']['steady']:.2f}x steady, "
              f"{mean['1']['wall'] / mean['2']['wall']:.2f}x wall")


if __name__ == "__main__":
    main()
