"""Reading the member spec strings that run descriptions and reports carry.

``"ser_tdnn/cosine+ema:acoustic_vtlp@last"`` names a member's network, schedule, augmentation and
kept checkpoint (``ser_core.training.recipes.MemberRecipe`` parses and checks one for training).
These functions only read them, so the app and reports can describe a model without importing the
training code.
"""

from __future__ import annotations

SCHEDULES = ("plateau", "cosine")
CHECKPOINTS = ("best", "last")
# A cosine schedule anneals to zero, so its last epoch is the one it was designed to end on; on
# unseen speakers it beat the epoch that 2-3 validation actors chose by 2-3 points
# (docs/experiments.md). A plateau run stops early, 20 epochs past its best, so it keeps the best.
DEFAULT_KEEP = {"plateau": "best", "cosine": "last"}


def split_network(spec: str) -> tuple[str | None, str]:
    """``"ser_tdnn/cosine:acoustic"`` -> ``("ser_tdnn", "cosine:acoustic")``; ``(None, spec)`` without one."""
    network, slash, rest = spec.rpartition("/")
    return (network if slash else None), rest


def kept_checkpoint(spec: str) -> str:
    """"best" or "last": the weights a member spec keeps, read without checking the rest of it."""
    training, _, rest = split_network(spec)[1].partition(":")
    keep = rest.partition("@")[2]
    return keep if keep in CHECKPOINTS else DEFAULT_KEEP.get(training.partition("+")[0], "best")


def ensemble_label(members: list[str], arch: str) -> str:
    """How a report names its model: ``ser_cnn_lite``, ``ser_cnn_lite × 3 averaged``, or for a
    mixed ensemble ``ser_cnn_lite × 2 + ser_tdnn, averaged`` (``members`` as the report lists them,
    ``arch`` its ``arch``: members without an architecture of their own train its first one)."""
    if len(members) == 1:
        return arch
    default = arch.split("+")[0]
    counts: dict[str, int] = {}
    for spec in members:
        network = split_network(spec)[0] or default
        counts[network] = counts.get(network, 0) + 1
    if len(counts) == 1:
        return f"{arch} × {len(members)} averaged"
    return " + ".join(name if n == 1 else f"{name} × {n}" for name, n in counts.items()) + ", averaged"
