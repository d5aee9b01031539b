"""Protocols for embedding heads: which corpora and speakers train, which test, and what the test may adapt to.

Pure functions over a feature matrix (one row per clip), integer labels and the clips' groups; the
head is passed in as ``fit(features, labels, sample_weight) -> predict_logits``, so this room never
imports training. Every protocol returns plain dictionaries of figures
(``metrics.classification_report``) and the test logits.

Normalisations (``Normalisation``): the heads read standardised features, and where the
standardisation statistics come from is the difference between the protocols:

- ``"global"``: mean/std of all training rows, applied to the test rows as they are (strict);
- ``"per_corpus"``: each training corpus with its own statistics; the test rows with the average of
  the training corpora's statistics (strict: nothing of the test corpus is used);
- ``"adapted"``: as ``per_corpus``, the test corpus with its own statistics from unlabelled clips
  (all of them, or ``adapt_clips`` random ones: a new room's first recordings);
- ``"adapted_speaker"``: as ``adapted``, but every test speaker with the statistics of all their own
  unlabelled clips (needs ``speakers``).

With ``speakers`` (``per_corpus``/``adapted`` only) each training speaker is standardised with the
statistics of their own clips instead of their corpus's; the held-out corpus is standardised as
above (corpus statistics: the training corpora's average, or its own).
"""

from __future__ import annotations

from typing import Any, Callable, Literal, Sequence

import numpy as np

from ser_core.evaluation.metrics import classification_report
from ser_core.inference.adaptation import Adaptation, AdaptationSample
from ser_core.inference.params import EMOTIONS
from ser_core.inference.self_training import self_train as self_trained

__all__ = ["FitHead", "Normalisation", "TrainNorm", "average_corpus_statistics", "held_out_logits", "held_out_corpora",
           "leave_one_corpus_out", "leave_one_corpus_out_enrolled", "sample_weights",
           "speaker_adaptation", "speaker_cross_validation", "speaker_folds", "speaker_groups", "standardise_groups",
           "summarise"]

FitHead = Callable[[np.ndarray, np.ndarray, np.ndarray], Callable[[np.ndarray], np.ndarray]]
Normalisation = Literal["global", "per_corpus", "adapted", "adapted_speaker"]
TrainNorm = Literal["global", "corpus", "speaker"]
_EPS = 1e-6
# A corpus is held out whole when it has at least this many of the six emotions: a corpus of two
# (BanglaSER-Ext: disgust and fear) measures little more than which of two rooms it sounds like.
MIN_HELD_OUT_EMOTIONS = 3


def _stats(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return rows.mean(axis=0), rows.std(axis=0) + _EPS


def _default_stats(features: np.ndarray, corpus: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The average of the training corpora's statistics (all of each such corpus's rows): what a new room is
    standardised with."""
    rows = np.isin(corpus, np.unique(corpus[train]))
    return average_corpus_statistics(features[rows], corpus[rows])


def average_corpus_statistics(rows: np.ndarray, corpus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of each corpus's ``rows``, averaged over the corpora: the default a new room gets."""
    stats = [_stats(rows[corpus == c]) for c in np.unique(corpus)]
    return np.mean([m for m, _ in stats], axis=0), np.mean([s for _, s in stats], axis=0)


def _scored(labels: np.ndarray, logits: np.ndarray, **extra: Any) -> dict[str, Any]:
    """A protocol's result for one held-out group: the report, its logits and labels (and ``extra``)."""
    return {**classification_report(labels, logits.argmax(axis=1)), "logits": logits, "labels": labels, **extra}


def speaker_groups(corpus: np.ndarray, speaker: np.ndarray) -> np.ndarray:
    """``corpus/speaker`` for each row: the groups of per-speaker standardisation."""
    return np.char.add(np.char.add(corpus.astype(str), "/"), speaker.astype(str))


def standardise_groups(features: np.ndarray, groups: np.ndarray, fit_mask: np.ndarray | None = None) -> np.ndarray:
    """Standardise each group's rows with the mean/std of that group's rows under ``fit_mask``.

    Parameters
    ----------
    features : np.ndarray
        ``(n, d)``.
    groups : np.ndarray
        ``(n,)`` group of each row (corpus or speaker).
    fit_mask : np.ndarray, optional
        ``(n,)`` bool: the rows whose statistics are used (all rows of the group when None).

    Returns
    -------
    np.ndarray
        float32 ``(n, d)``.
    """
    out = np.empty(features.shape, np.float32)
    fit_mask = np.ones(len(features), bool) if fit_mask is None else fit_mask
    for group in np.unique(groups):
        rows = groups == group
        mean, std = _stats(features[rows & fit_mask])
        out[rows] = (features[rows] - mean) / std
    return out


def sample_weights(labels: np.ndarray, corpus: np.ndarray, scheme: str = "class") -> np.ndarray:
    """Weights that make the loss count classes (and corpora) evenly; they average to 1.

    Parameters
    ----------
    labels, corpus : np.ndarray
        ``(n,)`` class index and corpus of each row.
    scheme : {"none", "class", "corpus_class"}
        ``class``: every class the same total weight over all corpora; ``corpus_class``: every
        corpus the same total, shared evenly among its own classes.
    """
    if scheme == "none":
        return np.ones(len(labels))
    if scheme == "class":
        cells = labels.astype(str)
    elif scheme == "corpus_class":
        cells = np.char.add(np.char.add(corpus.astype(str), "/"), labels.astype(str))
    else:
        raise ValueError(f"unknown weighting scheme {scheme!r}")
    names, inverse, counts = np.unique(cells, return_inverse=True, return_counts=True)
    weights = 1.0 / counts[inverse]
    if scheme == "corpus_class":
        per_corpus = {c: len(np.unique(cells[corpus == c])) for c in np.unique(corpus)}
        weights = weights / np.array([per_corpus[c] for c in corpus])
    return weights * len(labels) / weights.sum()


def _fit_on(fit: FitHead, rows: np.ndarray, raw: np.ndarray, labels: np.ndarray, corpus: np.ndarray,
            weighting: str) -> Callable[[np.ndarray], np.ndarray]:
    """``fit`` on the standardised training ``rows``. A head that also reads the ``raw`` rows
    (``reads_raw_rows``: a member standardised its own way, ``training.embedding_heads.ridge_lr_head``)
    gets them and their corpora."""
    weights = sample_weights(labels, corpus, weighting)
    if getattr(fit, "reads_raw_rows", False):
        return fit(rows, labels, weights, raw=raw, corpus=corpus)
    return fit(rows, labels, weights)


def _normalise_loco(features: np.ndarray, corpus: np.ndarray, test: np.ndarray, normalisation: Normalisation,
                    adapt_rows: np.ndarray | None, speakers: np.ndarray | None = None) -> np.ndarray:
    train = ~test
    if normalisation == "global":
        if speakers is not None:
            raise ValueError("per-speaker standardisation of the training rows needs per_corpus or adapted")
        mean, std = _stats(features[train])
        return ((features - mean) / std).astype(np.float32)
    out = np.empty(features.shape, np.float32)
    groups = corpus if speakers is None else speaker_groups(corpus, speakers)
    out[train] = standardise_groups(features[train], groups[train])
    if normalisation == "per_corpus":
        mean, std = _default_stats(features, corpus, train)
    elif normalisation == "adapted":
        fit_rows = features[test] if adapt_rows is None else features[adapt_rows]
        mean, std = _stats(fit_rows)
    elif normalisation == "adapted_speaker":
        if speakers is None:
            raise ValueError("adapted_speaker standardises each test speaker: pass speakers")
        out[test] = standardise_groups(features[test], groups[test])
        return out
    else:
        raise ValueError(f"unknown normalisation {normalisation!r}")
    out[test] = (features[test] - mean) / std
    return out


def leave_one_corpus_out(
    features: np.ndarray,
    labels: np.ndarray,
    corpus: np.ndarray,
    fit: FitHead,
    *,
    normalisation: Normalisation = "per_corpus",
    weighting: str = "class",
    adapt_clips: int | None = None,
    seed: int = 0,
    test_only: Sequence[str] | None = None,
    test_features: np.ndarray | None = None,
    speakers: np.ndarray | None = None,
    self_train: bool = False,
) -> dict[str, dict[str, Any]]:
    """Train on all corpora but one, test on that one, for every corpus.

    Parameters
    ----------
    features : np.ndarray
        ``(n, d)`` head inputs (``embedding.head_input``), not yet standardised.
    labels : np.ndarray
        ``(n,)`` index into ``EMOTIONS``.
    corpus : np.ndarray
        ``(n,)`` corpus name of each row.
    fit : FitHead
        Trains a head and returns its logit function.
    normalisation : {"global", "per_corpus", "adapted"}
        See the module docstring.
    weighting : str
        :func:`sample_weights` scheme.
    adapt_clips : int, optional
        With ``adapted``: statistics from this many random unlabelled clips of the held-out corpus
        (all of its clips when None). The figures still count every clip.
    seed : int
        Draw of the adaptation clips.
    test_only : sequence of str, optional
        Hold out only these corpora.
    test_features : np.ndarray, optional
        ``(n, d)`` features the held-out rows are scored on instead (e.g. the same clips through a
        simulated channel); training always reads ``features``.
    speakers : np.ndarray, optional
        ``(n,)`` speaker of each row: standardise every training speaker on their own clips (see
        the module docstring); the held-out corpus is standardised as without it, except with
        ``adapted_speaker``.
    self_train : bool
        Re-fit the head once on the held-out corpus's own answers before scoring it
        (``inference.self_training.self_train``; transductive, so only with an adapted
        normalisation). Needs a head whose ``predict`` carries ``linear`` weights (the linear heads).

    Returns
    -------
    dict
        Corpus -> ``classification_report`` plus ``logits`` and ``labels`` of its clips.
    """
    if self_train and normalisation not in ("adapted", "adapted_speaker"):
        raise ValueError("self-training uses the held-out clips: it is an adapted protocol, not a strict one")
    results: dict[str, dict[str, Any]] = {}
    rng = np.random.default_rng(seed)
    for held_out in (test_only or sorted(np.unique(corpus))):
        test = corpus == held_out
        adapt_rows = None
        if normalisation == "adapted" and adapt_clips is not None:
            adapt_rows = np.zeros(len(test), bool)
            adapt_rows[rng.choice(np.flatnonzero(test), size=min(adapt_clips, int(test.sum())), replace=False)] = True
        source = features.copy()
        if test_features is not None:
            source[test] = test_features[test]
        normalised = _normalise_loco(source, corpus, test, normalisation, adapt_rows, speakers)
        train = ~test
        predict = _fit_on(fit, normalised[train], source[train], labels[train], corpus[train], weighting)
        if self_train:
            head = getattr(predict, "linear", None)
            if head is None:
                raise ValueError("self-training needs a linear head with all six emotions")
            predict = self_trained(head, normalised[test]).predict_on_batch
        results[held_out] = _scored(labels[test], np.asarray(predict(normalised[test]), np.float64))
    return results


def speaker_cross_validation(
    features: np.ndarray,
    labels: np.ndarray,
    corpus: np.ndarray,
    speaker: np.ndarray,
    folds: Sequence[Sequence[str]],
    fit: FitHead,
    *,
    weighting: str = "class",
) -> dict[str, Any]:
    """Speaker-independent cross-validation: each fold's speakers are tested, all other rows train.

    Every corpus is standardised with the statistics of its own training rows (the test speakers
    of a fold use those of their corpus's training speakers: a known room, new voices).

    Returns
    -------
    dict
        ``classification_report`` of the pooled out-of-fold predictions over the fold speakers'
        rows, ``folds`` (one report each), ``logits`` and ``labels`` in row order of the tested rows,
        and ``rows`` (their indices).
    """
    all_logits, all_rows, per_fold = [], [], []
    for fold in folds:
        test = np.isin(speaker, list(fold))
        train = ~test
        normalised = np.empty(features.shape, np.float32)
        for name in np.unique(corpus):
            rows = corpus == name
            mean, std = _stats(features[rows & train])
            normalised[rows] = (features[rows] - mean) / std
        predict = _fit_on(fit, normalised[train], features[train], labels[train], corpus[train], weighting)
        logits = predict(normalised[test])
        per_fold.append(classification_report(labels[test], logits.argmax(axis=1)))
        all_logits.append(logits)
        all_rows.append(np.flatnonzero(test))
    rows = np.concatenate(all_rows)
    logits = np.concatenate(all_logits)
    report = classification_report(labels[rows], logits.argmax(axis=1))
    return {**report, "folds": per_fold, "logits": logits, "labels": labels[rows], "rows": rows}


def _enrolment(labels: np.ndarray, speaker: np.ndarray, k: int, enrol: str, rng: np.random.Generator) -> np.ndarray:
    """Bool mask of k enrolment clips per speaker (see :func:`_enrolment_rows`)."""
    mask = np.zeros(len(labels), bool)
    for name in np.unique(speaker):
        mask[_enrolment_rows(np.flatnonzero(speaker == name), labels, k, enrol, rng)] = True
    return mask


def _enrolment_rows(rows: np.ndarray, labels: np.ndarray, size: int, enrol: str,
                    rng: np.random.Generator) -> np.ndarray:
    """``size`` of one speaker's ``rows`` to enrol: random ones, or neutral ones (random where too few)."""
    pool = rows[labels[rows] == EMOTIONS.index("neutral")] if enrol == "neutral" else rows
    if len(pool) < size:  # a speaker without enough neutral speech enrols with what there is
        pool = np.concatenate([pool, rng.permutation(np.setdiff1d(rows, pool))[: size - len(pool)]])
    return rng.choice(pool, size=min(size, len(pool)), replace=False)


def speaker_adaptation(
    features: np.ndarray,
    labels: np.ndarray,
    corpus: np.ndarray,
    speaker: np.ndarray,
    fit: FitHead,
    *,
    k: int,
    enrol: Literal["random", "neutral"] = "random",
    weighting: str = "class",
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Leave one corpus out, every speaker centred on the mean of ``k`` of their own clips.

    What a user gives: ``enrol="neutral"`` takes k neutral clips ("just talk"), ``"random"`` k clips
    of any emotion. Training speakers are centred the same way (same k, same kind), then all rows
    share one scale (the std of the centred training rows). Enrolment clips are not scored.

    Returns
    -------
    dict
        Corpus -> ``classification_report`` of its non-enrolment clips, with ``logits``/``labels``.
    """
    rng = np.random.default_rng(seed)
    enrolled = _enrolment(labels, speaker, k, enrol, rng)
    centred = np.empty(features.shape, np.float32)
    for name in np.unique(speaker):
        rows = speaker == name
        centred[rows] = features[rows] - features[rows & enrolled].mean(axis=0)
    results: dict[str, dict[str, Any]] = {}
    for held_out in sorted(np.unique(corpus)):
        test = corpus == held_out
        train = ~test
        scale = centred[train].std(axis=0) + _EPS
        normalised = centred / scale
        predict = _fit_on(fit, normalised[train], features[train], labels[train], corpus[train], weighting)
        scored = test & ~enrolled
        results[held_out] = _scored(labels[scored], predict(normalised[scored]))
    return results


def leave_one_corpus_out_enrolled(
    features: np.ndarray,
    labels: np.ndarray,
    corpus: np.ndarray,
    speaker: np.ndarray,
    fit: FitHead,
    *,
    k_values: Sequence[int] = (5, 10, 20),
    draws: int = 2,
    weighting: str = "class",
    seed: int = 0,
    speaker_norm: bool = False,
    enrol: Literal["random", "neutral"] = "random",
    pooled_norm: bool = False,
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Leave one corpus out, scored strict and as each held-out speaker adapts in the app.

    The head trains as it ships (each training corpus standardised with its own statistics). Strict:
    the held-out clips standardised with the average of the training corpora's statistics (as
    ``leave_one_corpus_out(normalisation="per_corpus")``). Enrolled: every held-out speaker gives k
    random clips of their own, unlabelled, ``draws`` times for each k in ``k_values``; their other
    clips are standardised with :meth:`Adaptation.statistics` of those k (their mean and
    variance, each pooled with the default's) and scored. One fit per held-out corpus serves both. With
    ``speaker_norm`` each training speaker is standardised with their own clips' statistics instead
    of their corpus's (the default statistics stay the training corpora's average). ``enrol="neutral"``
    enrols k neutral clips where the speaker has them (filled up with random ones): a user asked to
    "just talk". With ``pooled_norm`` all training rows are standardised together, and their
    statistics are the default (a globally standardised head).

    Returns
    -------
    strict, enrolled : dict
        Corpus -> ``classification_report`` with ``logits``/``labels`` and ``rows`` (each scored row's
        index into ``features``, so other models' scores of the same clips can be lined up); the
        enrolled one pools every k and draw (a clip is scored once per draw it is not enrolled in)
        and adds ``k`` per row.
    """
    rng = np.random.default_rng(seed)
    strict: dict[str, dict[str, Any]] = {}
    enrolled: dict[str, dict[str, Any]] = {}
    for held_out in sorted(np.unique(corpus)):
        test = corpus == held_out
        train = ~test
        default_mean, default_std = _stats(features[train]) if pooled_norm else _default_stats(features, corpus, train)
        groups = speaker_groups(corpus, speaker) if speaker_norm else corpus
        if pooled_norm:
            groups = np.zeros(len(corpus), np.int8)
        predict = _fit_on(fit, standardise_groups(features[train], groups[train]), features[train], labels[train],
                          corpus[train], weighting)
        strict_rows = ((features[test] - default_mean) / default_std).astype(np.float32)
        strict[held_out] = _scored(labels[test], predict(strict_rows), rows=np.flatnonzero(test))
        batches, batch_labels, batch_k, batch_rows = [], [], [], []
        for name in np.unique(speaker[test]):
            rows = np.flatnonzero(test & (speaker == name))
            if len(rows) < 2:  # nothing left to score after enrolling
                continue
            for k in k_values:
                for _ in range(draws):
                    chosen = _enrolment_rows(rows, labels, min(k, len(rows) - 1), enrol, rng)
                    adaptation = Adaptation.empty()
                    for row in chosen:
                        adaptation = adaptation.add(AdaptationSample(features[row], 0.0, "protocol"))
                    mean, std = adaptation.statistics(default_std, default_mean)
                    scored = np.setdiff1d(rows, chosen)
                    batches.append(((features[scored] - mean) / std).astype(np.float32))
                    batch_labels.append(labels[scored])
                    batch_k.append(np.full(len(scored), k))
                    batch_rows.append(scored)
        enrolled[held_out] = _scored(np.concatenate(batch_labels), predict(np.concatenate(batches)),
                                     k=np.concatenate(batch_k), rows=np.concatenate(batch_rows))
    return strict, enrolled


def summarise(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Mean and minimum UAR over held-out corpora, and every (corpus, emotion) recall under 50 %."""
    uar = {name: result["uar"] for name, result in results.items()}
    weak = {
        f"{name}/{emotion}": round(values["recall"], 3)
        for name, result in results.items()
        for emotion, values in result["per_class"].items()
        if values["support"] > 0 and values["recall"] < 0.5
    }
    return {
        "mean_uar": float(np.mean(list(uar.values()))),
        "min_uar": float(min(uar.values())),
        "mean_accuracy": float(np.mean([result["accuracy"] for result in results.values()])),
        "uar": uar,
        "recall_below_50": weak,
    }


# ---------------------------------------------------------------------------------- issue 21's protocol
def held_out_corpora(labels: np.ndarray, corpus: np.ndarray, minimum: int = MIN_HELD_OUT_EMOTIONS) -> list[str]:
    """The corpora with at least ``minimum`` of the six emotions, in name order: the ones held out."""
    return [str(name) for name in sorted(np.unique(corpus)) if len(np.unique(labels[corpus == name])) >= minimum]


def speaker_folds(speakers: Sequence[str], k: int = 5, seed: int = 0) -> list[list[str]]:
    """``speakers`` (duplicates ignored) shuffled with ``seed`` and dealt into ``k`` folds of near-equal size."""
    names = np.array(sorted(set(map(str, speakers))))
    if len(names) < k:
        raise ValueError(f"{k} folds need {k} speakers or more, got {len(names)}")
    order = np.random.default_rng(seed).permutation(len(names))
    return [sorted(names[part].tolist()) for part in np.array_split(order, k)]


def held_out_logits(
    features: np.ndarray,
    labels: np.ndarray,
    corpus: np.ndarray,
    speaker: np.ndarray,
    test: np.ndarray,
    fit: FitHead,
    *,
    train_norm: TrainNorm = "speaker",
    weighting: str = "class",
    adapt_groups: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """One head trained on every row outside ``test``; the test rows' logits, strict and adapted.

    Training rows are standardised as the recipe ships (``train_norm``: all together, each corpus,
    or each speaker with their own statistics). Strict: the test rows with the statistics a new
    user gets (the training rows' for ``global``, else the average of the training corpora's);
    nothing of the test rows is used. Adapted: each group of ``adapt_groups`` among the test rows
    (its corpus, or each speaker) with its own unlabelled statistics.

    Returns
    -------
    dict
        ``strict`` and ``adapted``: float64 ``(test.sum(), 6)`` logits in row order.
    """
    train = ~test
    if train_norm == "global":
        groups = np.zeros(len(features), np.int8)
        mean, std = _stats(features[train])
    elif train_norm in ("corpus", "speaker"):
        groups = corpus if train_norm == "corpus" else speaker_groups(corpus, speaker)
        mean, std = _default_stats(features, corpus, train)
    else:
        raise ValueError(f"train_norm must be global, corpus or speaker, got {train_norm!r}")
    predict = _fit_on(fit, standardise_groups(features[train], groups[train]), features[train], labels[train],
                      corpus[train], weighting)
    adapt_groups = corpus if adapt_groups is None else adapt_groups
    return {"strict": np.asarray(predict(((features[test] - mean) / std).astype(np.float32)), np.float64),
            "adapted": np.asarray(predict(standardise_groups(features[test], adapt_groups[test])), np.float64)}
