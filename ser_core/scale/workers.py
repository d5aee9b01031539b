"""What one Ray worker does with a batch of files: the model is loaded once per worker (an actor).

Rows travel back to the driver as JSON text (one column), so a batch's schema never depends on its
contents; the driver writes the Parquet (:mod:`ser_core.scale.parts`). ``worker`` (the process id
that answered) is for the driver's callers (benchmarks, tests), never written.
"""

from __future__ import annotations

import io
import json
import math
import os
from typing import Any

import numpy as np

from ser_core.inference.audio import AudioError, about_file, load_audio
from ser_core.inference.speech import NotEnoughSpeech
from ser_core.scale.inputs import is_url, read_bytes
from ser_core.scale.model_files import ModelFiles

__all__ = ["EmbeddingWorker", "FileAnswers", "FileMeasures", "answer_row"]

# Fields of Prediction.to_dict() that the row carries under their own names; any other scalar or
# list field the answer gains (an emotion set, say) is carried as it is.
_OWN = {"probabilities", "segments", "windows", "adapted", "adaptation_clips"}


def _source(path: str):
    return read_bytes(path) if is_url(path) else path


def _failure(path: str, error: Exception) -> dict[str, Any]:
    if isinstance(error, NotEnoughSpeech):
        return {"status": error.kind, "error": about_file(path, error), "duration_s": error.total_seconds,
                "speech_seconds": error.speech_seconds}
    if isinstance(error, AudioError):
        return {"status": "error", "error": about_file(path, error)}
    return {"status": "error", "error": f"{path}: {type(error).__name__}: {error}"}


def _plain(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (tuple, set, frozenset)):
        return [_plain(item) for item in value]
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


class _Worker:
    """``process`` is ``__call__`` under a name Ray's actor handles can call (the Ray Client route)."""

    def process(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        return self(batch)  # type: ignore[operator]


def answer_row(predictor, path: str, threshold: float | None, with_segments: bool) -> tuple[dict, list[dict]]:
    """One file's row (and its segments' rows): what ``predict --json`` says of it, flattened.

    Never raises for a file: a file that cannot be read, or holds no speech, is a row whose
    ``status`` and ``error`` say so.
    """
    try:
        prediction = predictor.predict_file(_source(path), threshold=threshold, max_seconds=None, keep_features=False)
    except Exception as error:  # noqa: BLE001 - every file's fault becomes its row, never the job's
        return {"path": path, **_failure(path, error)}, []
    answer = prediction.to_dict()
    row = {"path": path, "status": "answered", "error": None}
    for key, value in answer.items():
        if key not in _OWN and (value is None or isinstance(value, (str, int, float, bool, list, tuple, np.generic))):
            row[key] = _plain(value)
    row["n_segments"] = len(prediction.segments)
    row.update({f"p_{emotion}": float(p) for emotion, p in prediction.probabilities.items()})
    segments = []
    if with_segments:
        for index, segment in enumerate(answer["segments"]):
            segments.append({"path": path, "segment": index, "start_s": segment["start_s"], "end_s": segment["end_s"],
                             "label": segment["label"], "top_emotion": segment["top_emotion"],
                             "confidence": segment["confidence"],
                             **{f"p_{emotion}": float(p) for emotion, p in segment["probabilities"].items()}})
    return row, segments


class FileAnswers(_Worker):
    """Ray Data actor: a batch of files -> their rows (``path``, ``row`` and ``segments`` as JSON text)."""

    def __init__(self, model: ModelFiles, threshold: float | None, segments: bool) -> None:
        self.predictor = model.load()
        self.model_hash = model.model_hash
        self.threshold, self.segments = threshold, segments

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        out: dict[str, list] = {"path": [], "row": [], "segments": [], "worker": []}
        for path, speaker in zip(batch["path"], batch["speaker"]):
            out["worker"].append(os.getpid())
            row, segments = answer_row(self.predictor, str(path), self.threshold, self.segments)
            if speaker:
                row["speaker"] = str(speaker)
            row["model_hash"] = self.model_hash
            out["path"].append(str(path))
            out["row"].append(json.dumps(row))
            out["segments"].append(json.dumps([{**segment, "model_hash": self.model_hash} for segment in segments]))
        return out


class FileMeasures(_Worker):
    """Ray Data actor for adapted batches: each file's adaptation sample (its head input), not yet an answer."""

    def __init__(self, model: ModelFiles) -> None:
        self.predictor = model.load()
        self.model_hash = model.model_hash

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        out: dict[str, list] = {"path": [], "row": [], "worker": []}
        rate = self.predictor.params.sample_rate
        for path, speaker in zip(batch["path"], batch["speaker"]):
            out["worker"].append(os.getpid())
            path = str(path)
            row: dict[str, Any] = {"path": path, "speaker": str(speaker) or None, "model_hash": self.model_hash}
            try:
                wave = load_audio(_source(path), rate)
                sample = self.predictor.adaptation_sample(wave, rate)
                row.update(status="measured", error=None, duration_s=wave.size / rate,
                           speech_seconds=sample.speech_seconds, features=sample.features.tolist())
            except Exception as error:  # noqa: BLE001 - as in FileAnswers
                row.update(_failure(path, error))
            out["path"].append(path)
            out["row"].append(json.dumps(row))
        return out


class EmbeddingWorker(_Worker):
    """Ray Data actor for ``train.py``: a batch of clips -> their pooled Whisper embeddings (``.npy`` bytes)."""

    def __init__(self, params) -> None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1)
        self.params = params

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        from ser_core.inference import embedding

        out: dict[str, list] = {"path": [], "array": [], "error": []}
        for path in batch["path"]:
            path = str(path)
            try:
                pooled = embedding.embed_waveform(load_audio(_source(path), self.params.sample_rate), self.params).pooled
                buffer = io.BytesIO()
                np.save(buffer, np.asarray(pooled), allow_pickle=False)
                out["array"].append(buffer.getvalue())
                out["error"].append("")
            except Exception as error:  # noqa: BLE001 - returned to the driver, which logs it
                out["array"].append(b"")
                out["error"].append(f"{type(error).__name__}: {error}")
            out["path"].append(path)
        return out


def batches_for(n_files: int, batch_files: int) -> int:
    """How many input blocks ``n_files`` are cut into (one per ``batch_files``)."""
    return max(1, math.ceil(n_files / batch_files))
