"""The Whisper path of ``train.py``: clips to cached embeddings, the shipped head, and its reports.

``train.py --front-end whisper`` (the default) reads as: clips -> :func:`embeddings` (cached per
file, with a progress bar) -> ``train_embedding_model`` -> :func:`served_files` (``config.json``,
``metrics.json``, ``history.json``, ``split.csv`` beside ``model.keras``) -> publish. ``--cv corpus``
writes :func:`loco_report` instead: every corpus held out in turn, strict and adapted.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ser_core.data.ased import COMMON_SENTENCES, is_common_sentence
from ser_core.data.corpora import Clip
from ser_core.data.embedding_cache import EmbeddingSet, clip_embeddings, stale_folders
from ser_core.evaluation import embedding_protocols as protocols
from ser_core.evaluation.metrics import classification_report
from ser_core.inference.embedding_head import head_input
from ser_core.inference.params import EMOTIONS, EmbeddingParams
from ser_core.training.embedding_model import EmbeddingRecipe, fit_head_for

__all__ = ["LOCO_FILE", "baseline_recipe", "embedded_clips", "embeddings", "loco_report", "mention_stale_cache",
           "model_name", "served_files", "training_set_fingerprint"]

LOCO_FILE = "loco_whisper.json"
log = logging.getLogger("train")


def embeddings(clips: Sequence[Clip], params: EmbeddingParams, cache_dir: Path, workers: int | None) -> EmbeddingSet:
    """The clips' Whisper embeddings, from the cache where there (a progress bar while computing).

    Clips whose audio cannot be decoded are left out (and logged by the cache).
    """
    return clip_embeddings(clips, params, cache_dir=cache_dir, workers=workers or 1, desc="Whisper embeddings")


def mention_stale_cache(cache_dir: Path) -> None:
    """Say (once a run) how much of the embedding cache older front-end code left behind, and how to free it."""
    stale = stale_folders(cache_dir)
    if stale:
        size_mb = sum(size for _, size in stale) / 1e6
        log.info("%s holds %d folder(s) of embeddings from an older version of the front end (%.0f MB) that this "
                 "code never reads; to free the space: rm -r %s", cache_dir, len(stale), size_mb,
                 " ".join(str(folder) for folder, _ in stale))


def embedded_clips(data: EmbeddingSet, clips: Sequence[Clip]) -> list[Clip]:
    """The clips that have an embedding (undecodable files were left out), in their order."""
    kept = set(data.path.tolist())
    return [clip for clip in clips if clip.path in kept]


def model_name(recipe: EmbeddingRecipe, params: EmbeddingParams, corpora: Sequence[str]) -> str:
    """What the app shows as the model's name, e.g. ``Whisper base layers 1-4 + logistic regression (nemo, ...)``."""
    layers = recipe.layers
    span = f"{layers[0]}-{layers[-1]}" if list(layers) == list(range(layers[0], layers[-1] + 1)) else ",".join(map(str, layers))
    head = {"lr": "logistic regression", "ridge": "ridge regression",
            "ridge+lr": "ridge and logistic regression"}.get(recipe.head, "layer-mix network")
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


SPEAKER_CV_CORPORA = ("ased", "ravdess")  # new voices: ASED's own rooms, RAVDESS's studio
SPEAKER_CV_FOLDS = 5


def _subset_figures(labels: np.ndarray, logits: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, Any]:
    return {"clips": int(rows.sum()),
            **{protocol: _figures(classification_report(labels[rows], scores[rows].argmax(axis=1)))
               for protocol, scores in logits.items()}}


def _speaker_cv(data: EmbeddingSet, features: np.ndarray, target: str, fit, recipe: EmbeddingRecipe,
                seed: int) -> dict[str, Any]:
    """Speaker-grouped k-fold CV on one corpus, every other corpus in training too; strict and each
    test speaker adapted to their own clips. ASED adds its two common sentences on their own."""
    rows = np.flatnonzero(data.corpus == target)
    folds = protocols.speaker_folds(data.speaker[rows], SPEAKER_CV_FOLDS, seed)
    logits = {protocol: np.zeros((len(rows), len(EMOTIONS))) for protocol in ("strict", "adapted")}
    for fold in folds:
        test = np.isin(data.speaker, fold)
        scores = protocols.held_out_logits(features, data.labels, data.corpus, data.speaker, test, fit,
                                           train_norm=recipe.train_norm, weighting=recipe.weighting,
                                           adapt_groups=data.speaker)
        where = np.isin(data.speaker[rows], fold)
        for protocol in logits:
            logits[protocol][where] = scores[protocol]
    labels = data.labels[rows]
    report = {"folds": len(folds), "speakers": len(np.unique(data.speaker[rows])),
              "all": _subset_figures(labels, logits, np.ones(len(rows), bool))}
    common = np.array([target == "ased" and is_common_sentence(path) for path in data.path[rows]])
    if common.any():
        report["common_sentences"] = {"sentences": sorted(COMMON_SENTENCES),
                                      **_subset_figures(labels, logits, common)}
    return report


def loco_report(data: EmbeddingSet, recipe: EmbeddingRecipe, name: str, seed: int = 0) -> dict[str, Any]:
    """Issue 21's protocol for a recipe: every corpus with three or more of the six emotions held out
    in turn (strict and adapted; the headline is their mean UAR), and speaker-grouped 5-fold
    cross-validation inside ASED (all sentences, and its two common sentences alone) and RAVDESS,
    every other corpus in training.

    Strict: the held-out clips standardised with what a new user gets (nothing of them is used).
    Adapted: with their own unlabelled statistics (a held-out corpus its own; in the cross-validation
    each test speaker their own, as "Adapt to my voice" does).

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
        "adapted_accuracy"}, "trained_only": [corpora never held out], "speaker_cv": {NAME: {"folds",
        "speakers", "all": {"clips", "strict", "adapted"}, "common_sentences": {...} (ASED)}}}``;
        fractions 0-1, None for an emotion the corpus lacks.
    """
    corpora = sorted(np.unique(data.corpus))
    if len(corpora) < 2:
        raise ValueError(f"leaving one corpus out needs two corpora or more, got {corpora}")
    features = head_input(data.embeddings, recipe.layers, recipe.statistics)
    fit = fit_head_for(recipe, seed)
    held_out = protocols.held_out_corpora(data.labels, data.corpus)
    per_corpus = {}
    for corpus in held_out:
        test = data.corpus == corpus
        logits = protocols.held_out_logits(features, data.labels, data.corpus, data.speaker, test, fit,
                                           train_norm=recipe.train_norm, weighting=recipe.weighting)
        figures = {protocol: _figures(classification_report(data.labels[test], scores.argmax(axis=1)))
                   for protocol, scores in logits.items()}
        per_corpus[str(corpus)] = {"clips": int(test.sum()), "speakers": int(len(np.unique(data.speaker[test]))),
                                   **figures}
    mean = {f"{protocol}_{figure}": round(float(np.mean([c[protocol][figure] for c in per_corpus.values()])), 4)
            for figure in ("uar", "accuracy") for protocol in ("strict", "adapted")}
    speaker_cv = {corpus: _speaker_cv(data, features, corpus, fit, recipe, seed) for corpus in SPEAKER_CV_CORPORA
                  if len(np.unique(data.speaker[data.corpus == corpus])) >= SPEAKER_CV_FOLDS}
    return {"kind": "leave_one_corpus_out", "model_name": name, "recipe": recipe.to_dict(),
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "corpora": per_corpus, "mean": mean,
            "trained_only": [str(c) for c in corpora if c not in held_out], "speaker_cv": speaker_cv}


def baseline_recipe(recipe: EmbeddingRecipe) -> EmbeddingRecipe | None:
    """The head issue 21 measures a recipe against: the ridge alone, on the same input and corpora (None
    for a recipe that is that ridge already)."""
    baseline = dataclasses.replace(recipe, head="ridge")
    return None if baseline == recipe else baseline


def served_files(data: EmbeddingSet, config: dict[str, Any], *, name: str, threshold: float, seconds: float,
                 data_info: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """``config.json``, ``metrics.json`` and ``history.json`` of a trained Whisper model.

    The model trains on every speaker, so ``metrics.json`` has no test section: its unseen-speaker
    figures are the leave-one-corpus-out ones (``loco`` here, and ``--cv corpus``), and its split
    says so (the Test results page reads ``split`` and ``calibration``).
    """
    from ser_core.inference.predictor import WHISPER_LOG_MEL

    arch = {"lr": "whisper_lr", "ridge": "whisper_ridge", "ridge+lr": "whisper_ridge_lr"}.get(config["recipe"]["head"],
                                                                                           "whisper_mix")
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
