"""The recipe record: what a training run was asked to do, built once and written everywhere.

``config.json`` (``arch``, ``seed``, ``feature_params`` and its ``recipe``), every
``cv_<arch>.json`` and ``oof_<arch>.json``, and the ``--temperature-from`` check all take their
description of the run from :func:`recipe_record`, so they cannot drift apart.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from ser_core.inference.params import AUXILIARY_EMOTIONS, FeatureParams
from ser_core.training.recipes import MemberRecipe, ensemble_arch

__all__ = ["CALIBRATION_KEYS", "CONFIG_RECIPE_KEYS", "cross_validated_temperature", "member_seeds",
           "recipe_record"]

# What must match for a cross-validation's temperature to calibrate another run of the recipe:
# not the seed (other runs of one recipe) nor the batch size (reports older than it lack it).
CALIBRATION_KEYS = ("arch", "members", "feature_params", "epochs", "pool_validation", "auxiliary_emotions")
# The record's entries that config.json keeps under "recipe" (the others sit at its top level).
CONFIG_RECIPE_KEYS = ("members", "member_seeds", "epochs", "pool_validation", "auxiliary_emotions", "batch_size")
_ABSENT_IN_OLD_REPORTS = {"pool_validation": False, "auxiliary_emotions": []}


def member_seeds(members: list[MemberRecipe], seed: int, member_seed: int | None = None) -> list[int]:
    """Each member's training seed: ``member_seed`` (default ``seed``), and a recipe repeated in
    ``members`` gets the next seed each time, since the same seed would train the same model."""
    first = seed if member_seed is None else member_seed
    repeats: Counter[str] = Counter()
    seeds = []
    for member in members:
        seeds.append(first + repeats[str(member)])
        repeats[str(member)] += 1
    return seeds


def recipe_record(*, arch: str, members: list[MemberRecipe], seed: int, member_seed: int | None, epochs: int,
                  batch_size: int, pool_validation: bool, auxiliary_emotions: bool,
                  params: FeatureParams) -> dict:
    """The run's description as every report writes it.

    Parameters
    ----------
    arch : str
        ``--arch``: the network of members that do not name their own.
    members : list of MemberRecipe
        The averaged members, in order.
    seed, member_seed : int, int or None
        ``--seed`` (splits, folds) and ``--member-seed`` (the first member's training seed).
    epochs, batch_size : int
        Every member's epochs and batch size.
    pool_validation, auxiliary_emotions : bool
        The ``--pool-validation`` and ``--auxiliary-emotions`` switches.
    params : FeatureParams
        The log-mel parameters the model reads.

    Returns
    -------
    dict
        ``arch`` (e.g. ``"ser_cnn_lite+ser_tdnn"``), ``seed``, ``members`` (spec strings),
        ``member_seeds``, ``epochs``, ``batch_size``, ``pool_validation``, ``auxiliary_emotions``
        (the emotion names, ``[]`` without) and ``feature_params``; JSON-ready.
    """
    return {"arch": ensemble_arch(members, arch), "seed": seed, "members": [str(m) for m in members],
            "member_seeds": member_seeds(members, seed, member_seed), "epochs": epochs, "batch_size": batch_size,
            "pool_validation": pool_validation,
            "auxiliary_emotions": list(AUXILIARY_EMOTIONS) if auxiliary_emotions else [],
            "feature_params": params.to_dict()}


def cross_validated_temperature(path: Path, record: dict) -> dict:
    """The temperature a cross-validation of this very recipe fitted on its out-of-fold test clips.

    Parameters
    ----------
    path : Path
        A ``cv_<arch>.json`` written by ``train.py --cv``.
    record : dict
        The run's :func:`recipe_record`.

    Returns
    -------
    dict
        ``temperature``, and the ``clips`` and ``speakers`` it was fitted on.

    Raises
    ------
    ValueError
        Saying what differs, when the file is missing or describes another recipe.
    """
    try:
        report = json.loads(Path(path).read_text())
        recorded = {**_ABSENT_IN_OLD_REPORTS, **report,
                    "members": [str(MemberRecipe.parse(spec)) for spec in report["members"]]}
        pooled = report["summary"]["pooled_calibration"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path} is not a readable cross-validation report ({error})") from None
    differing = [key for key in CALIBRATION_KEYS if recorded.get(key) != record[key]]
    if differing:
        raise ValueError(f"{path} cross-validated another recipe ({', '.join(differing)} differ): "
                         f"run train.py --cv 5 with the same options first")
    if "cv_temperature" not in pooled:
        raise ValueError(f"{path} has no temperature fitted on out-of-fold clips (a complete --cv run writes one)")
    return {"temperature": float(pooled["cv_temperature"]), "clips": int(pooled["clips"]),
            "speakers": report.get("speakers")}
