"""How one member of the shipped ensemble is trained, written as a short spec string.

``"cosine+ema:acoustic_vtlp"`` means: warm-up + cosine learning-rate schedule, checkpoints of the
weights' moving average, augmentation preset ``acoustic_vtlp``. ``"plateau:acoustic"``: constant rate
halved when validation loss stalls, early stopping, preset ``acoustic``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ser_core.augment import PRESETS

SCHEDULES = ("plateau", "cosine")
# Three members trained differently: their average beat each of them by about 4 points on unseen
# speakers (docs/experiments.md), for 3x the model time (still ~15 ms per 3 s clip).
DEFAULT_MEMBERS = ("plateau:acoustic", "cosine+ema:acoustic", "cosine+ema:acoustic_vtlp")


@dataclass(frozen=True)
class MemberRecipe:
    schedule: str
    ema: bool
    augment: str

    @classmethod
    def parse(cls, spec: str) -> MemberRecipe:
        """``"SCHEDULE[+ema]:PRESET"`` -> recipe; ValueError naming the valid choices otherwise."""
        training, _, augment = spec.partition(":")
        schedule, _, extra = training.partition("+")
        if schedule not in SCHEDULES or extra not in ("", "ema") or augment not in PRESETS:
            raise ValueError(f"bad member {spec!r}: expected SCHEDULE[+ema]:PRESET with SCHEDULE in "
                             f"{', '.join(SCHEDULES)} and PRESET in {', '.join(sorted(PRESETS))}")
        return cls(schedule, extra == "ema", augment)

    def __str__(self) -> str:
        return f"{self.schedule}{'+ema' if self.ema else ''}:{self.augment}"
