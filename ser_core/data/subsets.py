"""Choosing the clips each part of a training run sees: enough of them, features loaded, per split.

A run first asks :func:`not_enough_data` whether its clips can fill the splits it needs (before any
feature is computed, and again once the files that do not decode are known), then takes its
training, validation and test sets from the speaker assignment with :func:`subset`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ser_core.data.corpora import Clip, class_counts
from ser_core.data.dataset import WindowSet, extract_features, window_set
from ser_core.data.split import fold_assignment, held_out_folds, speaker_split
from ser_core.inference.params import EMOTIONS, FeatureParams

__all__ = ["Auxiliary", "NO_AUXILIARY", "load_features", "not_enough_data", "pooled_training_set",
           "separate_auxiliary", "split_summary", "subset", "training_subset"]

log = logging.getLogger(__name__)

Auxiliary = tuple[list[Clip], list[np.ndarray]]  # auxiliary-emotion clips and their features
NO_AUXILIARY: Auxiliary = ([], [])
_SPLITS = ("train", "validation", "test")


def not_enough_data(clips: list[Clip], *, cv: int | str | None, test_fraction: float, seed: int,
                    undecodable: list[str] = ()) -> str | None:
    """A paragraph saying why ``clips`` cannot fill the run's splits, or None when they can.

    Parameters
    ----------
    clips : list of Clip
        The clips of the six emotions the run would train and score on.
    cv : int, "corpus" or None
        Folds of a cross-validation (or one per corpus), or None for one training run.
    test_fraction : float
        Share of speakers a single run holds out for testing (0: none).
    seed : int
        The run's seed, which decides the speaker split and the folds.
    undecodable : list of str
        Files that did not decode, named in the message.

    Returns
    -------
    str or None
        What was found (speakers, clips per emotion, files that did not decode) and the minimum.

    Examples
    --------
    >>> print(not_enough_data([], cv=None, test_fraction=0.15, seed=0))  # doctest: +ELLIPSIS
    Not enough data to train. Found 0 speakers and 0 usable clips (angry 0, ...
    """
    speakers = sorted({clip.speaker for clip in clips})
    if cv is None:
        needed = ("train", "validation", "test") if test_fraction > 0 else ("train", "validation")
        splits = [speaker_split(clips, seed=seed, test=test_fraction)] if clips else []
        minimum = (f"at least 3 speakers of one corpus (one each for training, validation"
                   f"{' and testing' if test_fraction > 0 else ''})")
    else:
        needed = _SPLITS
        folds = held_out_folds(clips, cv, seed=seed) if clips else []
        splits = [fold_assignment(clips, fold, seed=seed) for fold in folds]
        if cv == "corpus":
            splits = splits if len(folds) >= 2 else []
            minimum = ("at least 2 corpora for --cv corpus, and 3 speakers of one corpus besides each held-out "
                       "one (for its training and validation)")
        else:
            minimum = (f"at least {cv} speakers for --cv {cv} (each fold's test speakers), and 3 of one corpus "
                       f"besides each fold's (for its training and validation)")
    filled = bool(splits) and all(split in assignment.values() for assignment in splits for split in needed)
    if filled:
        return None
    counts = class_counts(clips)
    found = (f"Found {len(speakers)} speakers and {len(clips)} usable clips "
             f"({', '.join(f'{emotion} {counts.get(emotion, 0)}' for emotion in EMOTIONS)})")
    if undecodable:
        shown = ", ".join(Path(path).name for path in undecodable[:5])
        more = f" and {len(undecodable) - 5} more" if len(undecodable) > 5 else ""
        found += f"; {len(undecodable)} files did not decode ({shown}{more})"
    remedies = ["add speakers (another --ravdess-dir or --crema-dir folder)"]
    remedies += ["ask for fewer folds"] if isinstance(cv, int) and cv > 2 else []
    remedies += ["replace the files that do not decode"] if undecodable else []
    return f"Not enough data to train. {found}. A run needs {minimum}. To go on, {' or '.join(remedies)}."


def load_features(clips: list[Clip], params: FeatureParams, cache_dir: Path,
                  workers: int | None) -> tuple[list[Clip], list[np.ndarray], list[str]]:
    """Log-mel windows of every clip that decodes: ``(clips kept, their features, files that did not)``.

    The reason for each failure is logged by ``extract_features``."""
    features, failures = extract_features(clips, params, cache_dir, workers)
    if failures:
        log.warning("%d unreadable clips skipped (listed above in this log)", len(failures))
    kept = [(clip, f) for clip, f in zip(clips, features) if f is not None]
    return [clip for clip, _ in kept], [f for _, f in kept], [path for path, _ in failures]


def separate_auxiliary(clips: list[Clip], features: list[np.ndarray]) -> tuple[list[Clip], list[np.ndarray],
                                                                               Auxiliary]:
    """The six emotions' clips and features, and the auxiliary-emotion ones (for training only) apart."""
    six = [clip.emotion in EMOTIONS for clip in clips]
    auxiliary = ([c for c, keep in zip(clips, six) if not keep], [f for f, keep in zip(features, six) if not keep])
    return [c for c, keep in zip(clips, six) if keep], [f for f, keep in zip(features, six) if keep], auxiliary


def subset(clips: list[Clip], features: list[np.ndarray], assignment: dict[str, str],
           split: str | tuple[str, ...]) -> WindowSet:
    """The windows of the clips whose speaker ``assignment`` puts in ``split`` (one name or several)."""
    splits = (split,) if isinstance(split, str) else split
    chosen = [i for i, clip in enumerate(clips) if assignment.get(clip.speaker) in splits]
    return window_set([clips[i] for i in chosen], [features[i] for i in chosen])


def training_subset(clips: list[Clip], features: list[np.ndarray], auxiliary: Auxiliary,
                    assignment: dict[str, str], split: str | tuple[str, ...]) -> WindowSet:
    """:func:`subset` with the auxiliary-emotion clips of the same speakers added (training sets only)."""
    return subset(clips + auxiliary[0], features + auxiliary[1], assignment, split)


def pooled_training_set(clips: list[Clip], features: list[np.ndarray], auxiliary: Auxiliary,
                        assignment: dict[str, str], pool_validation: bool) -> WindowSet | None:
    """Training and validation speakers together, for ``--pool-validation``'s members; else None."""
    if not pool_validation:
        return None
    return training_subset(clips, features, auxiliary, assignment, ("train", "validation"))


def split_summary(clips: list[Clip], assignment: dict[str, str]) -> dict:
    """Clips, speakers and clips per emotion of each split, as ``metrics.json`` records them."""
    summary = {}
    for split in _SPLITS:
        members = [clip for clip in clips if assignment[clip.speaker] == split]
        summary[split] = {"clips": len(members), "speakers": sorted({c.speaker for c in members}),
                          "class_counts": class_counts(members)}
    return summary
