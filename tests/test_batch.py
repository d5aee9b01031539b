"""``python -m ser_core.batch`` on Ray: the same answers as ``predict``, faults as rows, resume after a kill.

One local Ray (two CPUs) is started for the whole module; the killed-job test drives a separate
``python -m ser_core.batch`` process that joins it with ``--address``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from ser_core.scale.inputs import list_inputs, read_bytes
from ser_core.scale.jobs import BatchOptions, run_batch
from ser_core.scale.model_files import ModelFiles
from ser_core.scale.parts import JobMismatch, read_table

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ray_session():
    from ser_core.scale.cluster import start_ray, stop_ray

    ray = start_ray(2)
    yield ray
    stop_ray()


@pytest.fixture(scope="module")
def model(model_artifacts) -> ModelFiles:
    return ModelFiles.read(model_artifacts)


@pytest.fixture(scope="module")
def clips(real_ravdess, tmp_path_factory) -> dict[str, list[Path]]:
    """Real clips of two RAVDESS actors, and a folder of three of them with a broken and a silent file."""
    first = sorted((real_ravdess / "Actor_01").glob("*.flac"))[:5]
    second = sorted((real_ravdess / "Actor_02").glob("*.flac"))[:5]
    mixed = tmp_path_factory.mktemp("mixed")
    for clip in first[:3]:
        (mixed / clip.name).symlink_to(clip)
    (mixed / "broken.wav").write_bytes(b"this is not audio")
    sf.write(mixed / "silence.wav", np.zeros(32_000, np.float32), 16_000)
    return {"first": first, "second": second, "mixed": sorted(mixed.iterdir())}


@pytest.fixture(scope="module")
def local_predictor(model_artifacts):
    from ser_core.inference.predictor import Predictor

    return Predictor.from_artifacts(model_artifacts)


def rows_by_path(folder: Path) -> dict[str, dict]:
    return {row["path"]: row for row in read_table(folder).to_pylist()}


def test_the_same_answers_as_predict_and_faults_are_rows(ray_session, model, model_artifacts, clips, tmp_path):
    from ser_core.inference.predict_cli import main as predict

    files = list_inputs([str(clips["mixed"][0].parent)])
    summary = run_batch(ray_session, files, model, BatchOptions(output=tmp_path / "out", segments=True, workers=2,
                                                                batch_files=2, progress=False))
    rows = rows_by_path(tmp_path / "out" / "files")
    assert len(rows) == 5 and summary.done_this_run == 5
    assert summary.in_output == {"answered": 3, "no_speech": 1, "error": 1}
    named = {path.name: str(path) for path in clips["mixed"]}
    broken, silent = rows[named["broken.wav"]], rows[named["silence.wav"]]
    assert broken["status"] == "error" and "broken.wav" in broken["error"] and broken["label"] is None
    assert silent["status"] == "no_speech" and silent["duration_s"] == pytest.approx(2.0) and silent["p_angry"] is None

    audio = [path for path in clips["mixed"] if path.suffix == ".flac"]
    printed = io.StringIO()
    with redirect_stdout(printed):
        predict(["--json", "--artifacts", str(model_artifacts), *map(str, audio)])
    expected = [json.loads(line) for line in printed.getvalue().splitlines()]
    segments = read_table(tmp_path / "out" / "segments").to_pylist()
    for answer in expected:
        row = rows[answer["file"]]
        assert row["status"] == "answered" and row["model_hash"] == model.model_hash
        for key in ("label", "top_emotion", "confidence", "uncertain", "threshold", "duration_s", "speech_seconds"):
            assert row[key] == answer[key], key
        assert {emotion: row[f"p_{emotion}"] for emotion in answer["probabilities"]} == answer["probabilities"]
        own = sorted((s for s in segments if s["path"] == answer["file"]), key=lambda s: s["segment"])
        assert row["n_segments"] == len(own) == len(answer["segments"])
        for mine, theirs in zip(own, answer["segments"]):
            assert (mine["start_s"], mine["end_s"], mine["label"]) == (theirs["start_s"], theirs["end_s"], theirs["label"])


def test_a_finished_job_started_again_does_nothing_and_another_job_is_refused(ray_session, model, clips, tmp_path):
    files = list_inputs([str(path) for path in clips["first"][:2]])
    options = BatchOptions(output=tmp_path, workers=1, progress=False)
    assert run_batch(ray_session, files, model, options).done_this_run == 2
    again = run_batch(ray_session, files, model, options)
    assert again.done_this_run == 0 and again.skipped == 2 and sum(again.in_output.values()) == 2
    with pytest.raises(JobMismatch, match="threshold"):
        run_batch(ray_session, files, model, BatchOptions(output=tmp_path, threshold=0.9, progress=False))
    fresh = run_batch(ray_session, files, model, BatchOptions(output=tmp_path, threshold=0.9, resume=False,
                                                             workers=1, progress=False))
    assert fresh.done_this_run == 2 and {row["threshold"] for row in read_table(tmp_path / "files").to_pylist()} == {0.9}


def test_adapt_speaker_uses_each_speakers_own_statistics(ray_session, model, local_predictor, clips, tmp_path):
    from ser_core.inference.adaptation import Adaptation
    from ser_core.inference.audio import load_audio

    manifest = tmp_path / "clips.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "speaker"])
        writer.writerows([(str(path), "one") for path in clips["first"]] +
                         [(str(path), "two") for path in clips["second"]])
    files = list_inputs([str(manifest)])
    assert {item.speaker for item in files} == {"one", "two"} and len(files) == 10
    run_batch(ray_session, files, model, BatchOptions(output=tmp_path / "out", adapt="speaker", workers=2,
                                                      progress=False))
    rows = rows_by_path(tmp_path / "out" / "files")

    predictor = local_predictor
    rate = predictor.params.sample_rate
    for group in ("first", "second"):
        samples = [predictor.adaptation_sample(load_audio(path, rate), rate) for path in clips[group]]
        adaptation = Adaptation.empty()
        for sample in samples:
            adaptation = adaptation.add(sample)
        assert adaptation.ready
        for path, expected in zip(clips[group], predictor.batch_probabilities(samples, adaptation)):
            row = rows[str(path)]
            assert row["adapted"] and row["adaptation_clips"] == 5
            assert {emotion: row[f"p_{emotion}"] for emotion in expected} == pytest.approx(expected, abs=1e-9)


def test_a_job_killed_halfway_and_started_again_has_every_file_once(ray_session, clips, model_artifacts, tmp_path):
    # 40 files (each clip under four names) and a fast poll: with ten, a quick machine answered them all
    # between two looks at the output folder, and there was nothing left to resume
    copies = tmp_path / "inputs"
    copies.mkdir()
    inputs = []
    for copy in range(4):
        for path in clips["first"] + clips["second"]:
            target = copies / f"{copy}_{Path(path).name}"
            shutil.copyfile(path, target)
            inputs.append(str(target))
    output = tmp_path / "output"
    command = [sys.executable, "-m", "ser_core.batch", *inputs, "--output", str(output),
               "--address", ray_session.get_runtime_context().gcs_address, "--batch-files", "1",
               "--part-files", "1", "--artifacts", str(model_artifacts), "--quiet"]
    job = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           start_new_session=True)
    deadline = time.monotonic() + 240
    while len(list((output / "files").glob("part-*.parquet"))) < 3:
        assert job.poll() is None, job.stderr.read().decode()
        assert time.monotonic() < deadline, "no parts written in time"
        time.sleep(0.01)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    before = read_table(output / "files", ["path"]).column("path").to_pylist()
    assert 3 <= len(before) < len(inputs), "killed too late to test a resume"

    finished = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert f"{len(before)} were already done" in finished.stdout
    after = read_table(output / "files", ["path"]).column("path").to_pylist()
    assert sorted(after) == sorted(inputs)  # each file exactly once
    assert not list(output.rglob(".part-*"))
    assert all(pq.read_schema(part).names[:3] == ["path", "status", "error"]
               for part in (output / "files").glob("part-*.parquet"))


def test_a_worker_that_dies_is_replaced_and_every_file_answered(ray_session, model, clips, tmp_path):
    files = list_inputs([str(path) for path in clips["first"] + clips["second"]])
    killed: list[int] = []

    def kill_the_first_worker(done: int, batch: dict) -> None:
        if not killed:  # a worker that has just answered, with more of its files still in flight
            killed.append(int(batch["worker"][0]))
            os.kill(killed[0], signal.SIGKILL)

    summary = run_batch(ray_session, files, model, BatchOptions(output=tmp_path, workers=2, batch_files=1,
                                                                progress=False), on_batch=kill_the_first_worker)
    rows = read_table(tmp_path / "files").to_pylist()
    assert killed and summary.done_this_run == len(files) == 10
    assert sorted(row["path"] for row in rows) == sorted(item.path for item in files)
    assert {row["status"] for row in rows} == {"answered"}


def test_the_ray_client_route_keeps_its_own_actor_pool(ray_session, model, local_predictor, clips):
    """Through ``ray://`` Ray Data cannot run; the core-API pool that replaces it gives the same rows."""
    from ser_core.scale.jobs import _stream_through_client
    from ser_core.scale.workers import FileAnswers, answer_row

    items = [{"path": str(path), "speaker": ""} for path in clips["second"][:3]]
    batches = list(_stream_through_client(ray_session, items, FileAnswers,
                                          {"model": model, "threshold": None, "segments": False}, pool=1, batch_files=2))
    rows = {row["path"]: row for batch in batches for row in map(json.loads, batch["row"])}
    assert sorted(rows) == sorted(item["path"] for item in items)
    for path, row in rows.items():
        expected, _ = answer_row(local_predictor, path, None, False)
        assert {key: row[key] for key in expected} == expected


def test_inputs_folder_glob_manifest_and_urls(tmp_path):
    (tmp_path / "a").mkdir()
    for name in ("a/x.wav", "a/y.flac", "a/notes.txt", "z.opus"):
        (tmp_path / name).write_bytes(b"")
    assert [Path(item.path).name for item in list_inputs([str(tmp_path)])] == ["x.wav", "y.flac", "z.opus"]
    assert [Path(item.path).name for item in list_inputs([str(tmp_path / "**" / "*.wav")])] == ["x.wav"]
    (tmp_path / "list.csv").write_text("path,speaker\na/x.wav,s1\nz.opus,\na/x.wav,s9\n")
    listed = list_inputs([str(tmp_path / "list.csv")])
    assert [(item.path, item.speaker) for item in listed] == [(str(tmp_path / "a/x.wav"), "s1"),
                                                              (str(tmp_path / "z.opus"), None)]
    import fsspec

    memory = fsspec.filesystem("memory")
    memory.pipe({"/archive/one.wav": b"1", "/archive/deep/two.mp3": b"2"})
    urls = [item.path for item in list_inputs(["memory://archive"])]
    assert [url.rsplit("/", 1)[1] for url in urls] == ["two.mp3", "one.wav"]
    assert [read_bytes(url) for url in urls] == [b"2", b"1"]
    assert [item.path for item in list_inputs(["memory://archive/*.wav"])] == urls[1:]
    with pytest.raises(ValueError, match="does not exist"):
        list_inputs([str(tmp_path / "missing")])
    (tmp_path / "bad.csv").write_text("file\nx.wav\n")
    with pytest.raises(ValueError, match="no 'path' column"):
        list_inputs([str(tmp_path / "bad.csv")])


def test_train_embeddings_on_ray_fill_the_same_cache(ray_session, clips, tmp_path):
    from ser_core.data.embedding_cache import embed_files
    from ser_core.inference import embedding
    from ser_core.inference.audio import load_audio
    from ser_core.inference.params import EmbeddingParams
    from ser_core.scale.embedding import embed_on_ray

    params = EmbeddingParams()
    paths = [str(path) for path in clips["first"][:3]] + [str(tmp_path / "broken.wav")]
    (tmp_path / "broken.wav").write_bytes(b"not audio")
    computed, failures = embed_on_ray(paths, params, cache_dir=tmp_path / "cache", workers=2, progress=False)
    assert computed == 3 and [path for path, _ in failures] == [paths[-1]]
    assert embed_on_ray(paths[:3], params, cache_dir=tmp_path / "cache", progress=False) == (0, [])
    cached, _ = embed_files(paths[:3], params, cache_dir=tmp_path / "cache")  # read, not computed
    local = embedding.embed_waveform(load_audio(paths[0], params.sample_rate), params).pooled
    np.testing.assert_allclose(cached[0], local, rtol=1e-5, atol=1e-6)


def test_train_takes_ray_options_for_the_whisper_front_end_only():
    import train

    args = train.parse_args(["--ray-workers", "2"])
    assert args.ray_workers == 2 and args.workers is None
    with pytest.raises(SystemExit):
        train.parse_args(["--front-end", "log_mel", "--ray-address", "auto"])


def test_a_field_the_answer_gains_becomes_a_column_and_a_missing_one_is_absent(tmp_path):
    """An emotion set (being added to the predictor's answer elsewhere) is carried as it comes; none, no column."""
    from types import SimpleNamespace

    from ser_core.scale.parts import Output
    from ser_core.scale.workers import answer_row

    def predictor(extra: dict):
        answer = {"label": "angry", "top_emotion": "angry", "confidence": 0.7, "uncertain": False, "threshold": 0.5,
                  "duration_s": 2.0, "speech_seconds": 1.5, "probabilities": {"angry": 0.7, "sad": 0.3},
                  "segments": [], "windows": [], "adapted": False, "adaptation_clips": 0, **extra}
        prediction = SimpleNamespace(to_dict=lambda: answer, segments=[], probabilities=answer["probabilities"])
        return SimpleNamespace(predict_file=lambda *args, **kwargs: prediction)

    with_set, _ = answer_row(predictor({"emotion_set": ("angry", "disgust")}), "a.wav", None, False)
    without, _ = answer_row(predictor({}), "b.wav", None, False)
    assert with_set["emotion_set"] == ["angry", "disgust"] and "emotion_set" not in without
    output = Output(tmp_path, {"model_hash": "x"})
    output.open(resume=True)
    output.write([without])
    output.write([with_set])
    table = read_table(tmp_path / "files")
    assert sorted(table.column("emotion_set").to_pylist(), key=bool) == [None, ["angry", "disgust"]]
    assert table.column("p_angry").to_pylist() == [0.7, 0.7]
