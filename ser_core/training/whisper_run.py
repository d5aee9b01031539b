"""The Whisper path of ``train.py``: clips to cached embeddings, the shipped head, and its reports.

``train.py --front-end whisper`` (the default) reads as: clips -> :func:`embeddings` (cached per
file, with a progress bar) -> ``train_embedding_model`` -> :func:`served_files` (``config.json``,
``metrics.json``, ``history.json``, ``split.csv`` beside ``model.keras``) -> publish. ``--cv corpus``
writes :func:`loco_report` instead: every corpus held out in turn, strict and adapted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ser_core.data.corpora import Clip
from ser_core.data.embedding_cache import EmbeddingSet, clip_embeddings
from ser_core.evaluation import embedding_protocols as protocols
from ser_core.inference.embedding_head import head_input
from ser_core.inference.params import EMOTIONS, EmbeddingParams
from ser_core.training.embedding_model import EmbeddingRecipe, fit_head_for

__all__ = ["LOCO_FILE", "embedded_clips", "embeddings", "loco_report", "model_name", "served_files",
           "training_set_fingerprint"]

LOCO_FILE = "loco_whisper.json"


def embeddings(clips: Sequence[Clip], params: EmbeddingParams, cache_dir: Path, workers: int | None) -> EmbeddingSet:
    """The clips' Whisper embeddings, from the cache where there (a progress bar while computing).

    Clips whose audio cannot be decoded are left out (and logged by the cache).
    """
    return clip_embeddings(clips, params, cache_dir=cache_dir, workers=workers or 1, desc="Whisper embeddings")


def embedded_clips(data: EmbeddingSet, clips: Sequence[Clip]) -> list[Clip]:
    """The clips that have an embedding (undecodable files were left out), in their order."""
    kept = set(data.path.tolist())
    return [clip for clip in clips if clip.path in kept]


def model_name(recipe: EmbeddingRecipe, params: EmbeddingParams, corpora: Sequence[str]) -> str:
    """What the app shows as the model's name, e.g. ``Whisper base layers 1-4 + logistic regression (nemo, ...)``."""
    layers = recipe.layers
    span = f"{layers[0]}-{layers[-1]}" if list(layers) == list(range(layers[0], layers[-1] + 1)) else ",".join(map(str, layers))
    head = {"lr": "logistic regression", "ridge": "ridge regression"}.get(recipe.head, "layer-mix network")
    return f"Whisper {params.model} layers {span} + {head} ({', '.join(sorted(corpora))})"


def training_set_fingerprint(data: EmbeddingSet, recipe: EmbeddingRecipe, params: EmbeddingParams, seed: int) -> str:
    """Names what a model was trained on (clips and labels, recipe, front end, seed): two runs with the same
    fingerprint fit the same head, so a ``--cv corpus`` report of one describes the other."""
    identity = [sorted(zip(data.path.tolist(), data.labels.tolist())), recipe.to_dict(), params.to_dict(), seed]
    return hashlib.sha1(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _figures(result: dict[str, Any]) -> dict[str, Any]:
    recall = {emotion: (None if row["support"] == 0 else round(float(row["recall"]), 4))
              for emotion, row in result["per_class"].items()}
    return {"accuracy": round(float(result["accuracy"]), 4), "uar": round(float(result["uar"]), 4), "recall": recall}


def loco_report(data: EmbeddingSet, recipe: EmbeddingRecipe, name: str, seed: int = 0) -> dict[str, Any]:
    """Leave one corpus out with the shipped recipe: strict and adapted figures per held-out corpus.

    Strict: the held-out corpus standardised with the average of the training corpora's statistics
    (nothing of it is used). Adapted: with its own statistics from all its clips, unlabelled (what
    ``python -m ser_core.evaluate --adapt`` does for a folder).

    Parameters
    ----------
    data : EmbeddingSet
        Two corpora or more.
    recipe : EmbeddingRecipe
    name : str
        ``model_name`` of the report.

    Returns
    -------
    dict
        ``{"kind": "leave_one_corpus_out", "model_name", "recipe", "created", "corpora": {NAME:
        {"clips", "speakers", "strict": {"accuracy", "uar", "recall": {emotion: float or None}},
        "adapted": {...}}}, "mean": {"strict_uar", "adapted_uar", "strict_accuracy",
        "adapted_accuracy"}}``; fractions 0-1, None for an emotion the corpus lacks.
    """
    corpora = sorted(np.unique(data.corpus))
    if len(corpora) < 2:
        raise ValueError(f"leaving one corpus out needs two corpora or more, got {corpora}")
    features = head_input(data.embeddings, recipe.layers, recipe.statistics)
    speakers = data.speaker if recipe.train_norm == "speaker" else None
    runs = {protocol: protocols.leave_one_corpus_out(features, data.labels, data.corpus, fit_head_for(recipe, seed),
                                                     normalisation=normalisation, weighting=recipe.weighting,
                                                     speakers=speakers)
            for protocol, normalisation in (("strict", "per_corpus"), ("adapted", "adapted"))}
    per_corpus = {
        str(corpus): {"clips": int((data.corpus == corpus).sum()),
                      "speakers": int(len(np.unique(data.speaker[data.corpus == corpus]))),
                      **{protocol: _figures(results[corpus]) for protocol, results in runs.items()}}
        for corpus in corpora
    }
    mean = {f"{protocol}_{figure}": round(float(np.mean([c[protocol][figure] for c in per_corpus.values()])), 4)
            for figure in ("uar", "accuracy") for protocol in ("strict", "adapted")}
    return {"kind": "leave_one_corpus_out", "model_name": name, "recipe": recipe.to_dict(),
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "corpora": per_corpus, "mean": mean}


def served_files(data: EmbeddingSet, config: dict[str, Any], *, name: str, threshold: float, seconds: float,
                 data_info: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """``config.json``, ``metrics.json`` and ``history.json`` of a trained Whisper model.

    The model trains on every speaker, so ``metrics.json`` has no test section: its unseen-speaker
    figures are the leave-one-corpus-out ones (``loco`` here, and ``--cv corpus``), and its split
    says so (the Test results page reads ``split`` and ``calibration``).
    """
    from ser_core.inference.predictor import WHISPER_LOG_MEL

    arch = {"lr": "whisper_lr", "ridge": "whisper_ridge"}.get(config["recipe"]["head"], "whisper_mix")
    config = {**config, "model_name": name, "arch": arch,
              "threshold": config.get("threshold", threshold), "feature_params": WHISPER_LOG_MEL.to_dict(),
              "trained_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "training_seconds": round(seconds, 1), "data": data_info}
    speakers = sorted(set(data.speaker.tolist()))
    metrics = {
        "split": {"train": {"clips": len(data), "speakers": speakers}, "test": {"clips": 0, "speakers": []}},
        "calibration": {"temperature": config["temperature"],
                        "fitted_on": "leave-one-corpus-out logits (each corpus scored by a head that never heard it)",
                        "temperature_adapted": config.get("temperature_adapted"),
                        "adapted_fitted_on": "the same, each held-out speaker adapted with 5-20 of their own clips"},
        "loco_strict": config.get("loco"),
        "emotions": list(EMOTIONS),
    }
    history = {"note": "linear head (solved in one go) on frozen Whisper embeddings: no epochs", "members": []}
    return config, metrics, history
