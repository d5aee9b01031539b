"""Helpers for the app tests (their fixtures are in conftest.py): generated audio, artifact folders, a live app server.

No audio is committed: clips are synthesised, or read from ``../shared/data`` when it exists, and
written into pytest tmp dirs.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile

REPO_ROOT = Path(__file__).resolve().parent.parent
APP_FILE = REPO_ROOT / "streamlit_app.py"
SHARED_RAVDESS = REPO_ROOT.parent / "shared" / "data" / "ravdess"
EMOTIONS = ("angry", "disgust", "fear", "happy", "neutral", "sad")


# ---------------------------------------------------------------- audio


def speech_like(seconds: float = 2.0, sample_rate: int = 16_000, f0: float = 180.0,
                seed: int = 0, amplitude: float = 0.5) -> np.ndarray:
    """Voice-like synthetic speech (``audio_factory.speech_like``): the predictor answers for
    speech only, and plain harmonics under an envelope are not speech to its detector."""
    import audio_factory

    return audio_factory.speech_like(seconds, sample_rate, f0=f0, swing=0.2, rate=4.0, seed=seed,
                                     amplitude=amplitude)


def wav_bytes(wave: np.ndarray, sample_rate: int = 16_000) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, np.asarray(wave, dtype=np.float32), sample_rate, format="WAV",
                    subtype="PCM_16")
    return buffer.getvalue()


def ravdess_clip(actor: int = 1, name: str | None = None) -> Path | None:
    """A real RAVDESS clip from ``../shared/data`` or None when that folder is absent."""
    folder = SHARED_RAVDESS / f"Actor_{actor:02d}"
    if not folder.is_dir():
        return None
    if name:
        path = folder / name
        return path if path.is_file() else None
    clips = sorted(folder.glob("*.flac"))
    return clips[0] if clips else None


def real_or_synthetic_wav(seconds: float | None = None, sample_rate: int = 16_000) -> bytes:
    """An angry RAVDESS clip as wav bytes when the shared data exists, else synthetic speech.

    With ``seconds``, the clip is looped (with short pauses) to that length.
    """
    path = ravdess_clip(1, "03-01-05-02-01-01-01.flac")
    if path is not None:
        wave, rate = soundfile.read(path, dtype="float32")
        if wave.ndim > 1:
            wave = wave.mean(axis=1)
        if rate != sample_rate:
            from ser_core.inference.audio import resample

            wave = resample(wave, rate, sample_rate)
    else:
        wave = speech_like(3.0, sample_rate)
    if seconds is not None:
        pause = np.zeros(int(0.3 * sample_rate), np.float32)
        unit = np.concatenate([wave, pause])
        wave = np.tile(unit, int(np.ceil(seconds * sample_rate / unit.size)))[: int(seconds * sample_rate)]
    return wav_bytes(wave, sample_rate)


# ---------------------------------------------------------------- artifacts


def fake_reports() -> dict[str, dict]:
    """Small but complete reports with the layout train.py writes."""
    labels = list(EMOTIONS)
    matrix = (np.eye(6, dtype=int) * 12 + 2).tolist()
    per_class = {e: {"precision": 0.7, "recall": 0.75, "f1": 0.72, "support": 22} for e in labels}
    section = {"accuracy": 0.62, "uar": 0.61, "macro_f1": 0.6, "n": 132, "labels": labels,
               "confusion_matrix": matrix, "per_class": per_class}
    edges = np.linspace(0, 1, 11).tolist()
    reliability = {
        "bin_edges": edges,
        "accuracy": [0, 0, 0.2, 0.3, 0.35, 0.5, 0.55, 0.6, 0.7, 0.85],
        "confidence": [0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95],
        "count": [0, 0, 4, 10, 20, 25, 30, 20, 15, 8],
    }
    config = {
        "model_name": "ser_cnn test model", "arch": "ser_cnn", "emotions": labels,
        "feature_params": {"sample_rate": 16000, "win_length": 400, "hop_length": 160,
                           "n_fft": 512, "n_mels": 64, "fmin": 50.0, "fmax": 8000.0,
                           "clip_seconds": 3.0, "top_db": 80.0, "trim_db": 30.0},
        "temperature": 1.3, "threshold": 0.55, "trained_at": "2025-01-01T00:00:00Z", "data": {},
    }
    metrics = {
        "test": section, "validation": section,
        "calibration": {"temperature": 1.3, "ece_before": 0.12, "ece_after": 0.04, "ece_floor": 0.071,
                        "reliability": {"before": reliability, "after": reliability}},
        "split": {"train": {"clips": 800, "speakers": [1, 2, 3]},
                  "validation": {"clips": 100, "speakers": [4]},
                  "test": {"clips": 132, "speakers": [5, 6]}},
    }
    epochs = list(range(1, 11))
    history = {
        "epoch": epochs, "accuracy": [0.2 + 0.05 * e for e in epochs],
        "val_accuracy": [0.2 + 0.04 * e for e in epochs], "loss": [2.0 - 0.1 * e for e in epochs],
        "val_loss": [2.0 - 0.08 * e for e in epochs],
        "learning_rate": [2e-3] * 6 + [1e-3] * 4, "best_epoch": 9,
    }
    return {"config.json": config, "metrics.json": metrics, "history.json": history}


CV_CONDITIONS = ("snr_20db", "snr_10db", "snr_5db", "reverb_rt60_0.6s")


def fake_cv_report(arch: str = "ser_cnn", folds: int = 5, n_folds: int = 5,
                   base: float = 0.6, pooled: bool = True) -> dict:
    """A ``cv_<arch>.json`` as ``train.py --cv`` writes it, with distinct figures per fold and a
    summary computed from the folds that are present."""
    results = []
    for index in range(folds):
        accuracy = base + 0.02 * index
        results.append({
            "fold": index, "test_speakers": [f"ravdess_{4 * index + k + 1:02d}" for k in range(4)],
            "epochs": 40 + index, "best_epoch": 25 + index, "train_seconds": 300.0 + 10 * index,
            "accuracy": accuracy, "uar": accuracy + 0.01, "macro_f1": accuracy - 0.01,
            "recall": {e: round(0.4 + 0.1 * k + 0.01 * index, 4) for k, e in enumerate(EMOTIONS)},
            "temperature": 1.3, "ece_before": 0.1, "ece_after": 0.04 + 0.001 * index,
            "confusion_matrix": (np.eye(6, dtype=int) * 10 + 2).tolist(),
            "robustness": {c: {"accuracy": accuracy - 0.05 * (k + 1), "uar": accuracy - 0.05 * (k + 1) + 0.01}
                           for k, c in enumerate(CV_CONDITIONS)},
        })

    def stats(values: list[float]) -> dict:
        return {"mean": float(np.mean(values)), "std": float(np.std(values))}

    summary = {key: stats([r[key] for r in results])
               for key in ("accuracy", "uar", "macro_f1", "ece_before", "ece_after", "train_seconds")}
    summary["recall"] = {e: stats([r["recall"][e] for r in results]) for e in EMOTIONS}
    for condition in CV_CONDITIONS:
        for key in ("accuracy", "uar"):
            summary[f"{condition}_{key}"] = stats([r["robustness"][condition][key] for r in results])
    if pooled:
        curve = fake_reports()["metrics.json"]["calibration"]["reliability"]["after"]
        summary["pooled_calibration"] = {"clips": 880, "ece_before": 0.081, "ece_after": 0.047, "ece_floor": 0.031,
                                         "reliability": {"before": curve, "after": curve},
                                         "scaled_with": "other folds", "ece_validation_temperature": 0.069,
                                         "fold_temperatures": [0.8] * n_folds, "cv_temperature": 0.77}
    return {"arch": arch, "seed": 0, "n_folds": n_folds, "speakers": 20, "clips": 880,
            "augment": "acoustic", "epochs": 70,
            "feature_params": fake_reports()["config.json"]["feature_params"],
            "folds": results, "summary": summary}


def write_fake_cv_reports(directory: Path) -> Path:
    """A complete cross-validation of the shipped ser_cnn and one fold of 5 of the baseline."""
    directory = Path(directory)
    (directory / "cv_ser_cnn.json").write_text(json.dumps(fake_cv_report("ser_cnn")))
    (directory / "cv_vgg_baseline.json").write_text(
        json.dumps(fake_cv_report("vgg_baseline", folds=1, base=0.4)))
    return directory


def fake_loco_report() -> dict:
    """A ``loco_whisper.json`` as ``train.py ... --cv corpus`` writes it: four held-out corpora,
    nEMO without disgust and TurEV-DB with angry, happy, sad and neutral only (null recall)."""
    def scores(base: float, lacking: tuple[str, ...] = ()) -> dict:
        recall = {e: (None if e in lacking else round(base + 0.05 * k - 0.1, 3)) for k, e in enumerate(EMOTIONS)}
        return {"accuracy": base, "uar": round(base - 0.02, 3), "recall": recall}

    lacking = {"ravdess": (), "tess": (), "nemo": ("disgust",), "turev": ("disgust", "fear")}
    corpora = {
        name: {"clips": clips, "speakers": speakers, "strict": scores(base, lacking[name]),
               "adapted": scores(base + 0.1, lacking[name])}
        for name, clips, speakers, base in (("ravdess", 1248, 24, 0.52), ("tess", 2400, 2, 0.61),
                                            ("nemo", 4481, 9, 0.38), ("turev", 1735, 6, 0.49))
    }
    return {"kind": "leave_one_corpus_out", "model_name": "whisper-base + logistic head (test)",
            "recipe": {"layers": [2, 3, 4], "head": "lr"}, "created": "2026-12-01T18:00:00Z",
            "corpora": corpora,
            "mean": {"strict_uar": 0.48, "adapted_uar": 0.58, "strict_accuracy": 0.5, "adapted_accuracy": 0.6},
            "trained_only": ["banglaser"],
            "speaker_cv": {
                "ased": {"folds": 5, "speakers": 52,
                         "all": {"clips": 1862, "strict": scores(0.83), "adapted": scores(0.85)},
                         "common_sentences": {"sentences": ["01", "02"], "clips": 502, "strict": scores(0.61),
                                              "adapted": scores(0.66)}},
                "ravdess": {"folds": 5, "speakers": 20,
                            "all": {"clips": 880, "strict": scores(0.81), "adapted": scores(0.85)}}}}


def write_fake_artifacts(directory: Path, with_model: bool = True, with_cv: bool = True) -> Path:
    """Reports plus (optionally) an untrained but valid model: predictions are arbitrary yet
    deterministic, which is all tests comparing the page with the predictor need. With ``with_cv``,
    cross-validation results too (:func:`write_fake_cv_reports`)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in fake_reports().items():
        (directory / name).write_text(json.dumps(content))
    rows = ["path,corpus,speaker,gender,emotion,split"]
    for index, emotion in enumerate(EMOTIONS * 3):
        split = ("train", "validation", "test")[index % 3]
        rows.append(f"a/{index}.wav,ravdess,{index % 3 + 1},female,{emotion},{split}")
    (directory / "split.csv").write_text("\n".join(rows) + "\n")
    if with_cv:
        write_fake_cv_reports(directory)
    if with_model:
        import keras

        from ser_core.training.models import build_model
        from ser_core.inference.params import FeatureParams

        keras.utils.set_random_seed(0)
        params = FeatureParams.from_dict(fake_reports()["config.json"]["feature_params"])
        model = build_model("ser_cnn", params.input_shape, len(EMOTIONS))
        model.save(directory / "model.keras")
    return directory


def committed_model_present() -> bool:
    from ser_core.inference.artifacts import ARTIFACTS_DIR

    return (ARTIFACTS_DIR / "model.keras").is_file() and (ARTIFACTS_DIR / "config.json").is_file()


# ---------------------------------------------------------------- a real app server


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(artifacts_dir: Path | None = None, log_path: Path | None = None,
                     timeout: float = 60.0) -> Iterator[str]:
    """``streamlit run streamlit_app.py`` on a free localhost port; yields its base URL."""
    port = free_port()
    env = dict(os.environ)
    if artifacts_dir is not None:
        env["SER_ARTIFACTS_DIR"] = str(artifacts_dir)
    env.pop("SER_ICE_SERVERS", None)
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(APP_FILE), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true",
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"streamlit exited with {process.returncode}; see {log_path}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not come up within {timeout:.0f} s")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        if log_path:
            log.close()
