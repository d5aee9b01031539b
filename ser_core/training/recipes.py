"""How one member of the shipped ensemble is trained, written as a short spec string.

``"cosine+ema:acoustic_vtlp@last"`` means: warm-up + cosine learning-rate schedule, the weights'
moving average, augmentation preset ``acoustic_vtlp``, and the last epoch's weights kept.
``"plateau:acoustic@best"``: constant rate halved when validation loss stalls, early stopping, preset
``acoustic``, and the epoch with the best validation accuracy kept. ``"ser_tdnn/cosine:acoustic"``:
that member's network is ``ser_tdnn`` rather than the run's ``--arch``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ser_core.evaluation.member_specs import CHECKPOINTS, DEFAULT_KEEP, SCHEDULES, split_network

# Three cosine members of one augmentation recipe, 120 epochs each (docs/experiments.md, rows 40-45):
# two ser_cnn_lite runs (seeds 0 and 1) and a ser_tdnn, whose 1-D convolutions over time err
# differently from the 2-D CNNs, so the three average better than three CNNs. At 70 epochs the
# members underfit (training accuracy 0.76 against 0.88); 200 gained nothing more. The cosine
# members keep their last weights, so they need no validation actors to choose them.
DEFAULT_EPOCHS = 120  # every member's, a cosine schedule's full length
DEFAULT_MEMBERS: tuple[str, ...] = ("cosine+ema:acoustic_vtlp@last", "cosine+ema:acoustic_vtlp@last",
                                    "ser_tdnn/cosine+ema:acoustic_vtlp@last")


@dataclass(frozen=True)
class MemberRecipe:
    schedule: str
    ema: bool
    augment: str
    keep: str
    arch: str | None = None  # None: the run's --arch

    @classmethod
    def parse(cls, spec: str) -> MemberRecipe:
        """``"[ARCH/]SCHEDULE[+ema]:PRESET[@best|@last]"`` -> recipe; ValueError naming the valid choices
        otherwise.

        Without ``@``, a plateau member keeps its best epoch and a cosine member its last.
        """
        from ser_core.training.augment import PRESETS  # imports TensorFlow; kept_checkpoint() must not
        from ser_core.training.models import ARCHITECTURES

        arch, spec = split_network(spec)
        if arch is not None and arch not in ARCHITECTURES:
            raise ValueError(f"bad member architecture {arch!r}: choose from {', '.join(sorted(ARCHITECTURES))}")
        training, _, rest = spec.partition(":")
        augment, at, keep = rest.partition("@")
        schedule, _, extra = training.partition("+")
        if (schedule not in SCHEDULES or extra not in ("", "ema") or augment not in PRESETS
                or (at and keep not in CHECKPOINTS)):
            raise ValueError(f"bad member {spec!r}: expected [ARCH/]SCHEDULE[+ema]:PRESET[@KEEP] with SCHEDULE in "
                             f"{', '.join(SCHEDULES)}, PRESET in {', '.join(sorted(PRESETS))} and KEEP in "
                             f"{', '.join(CHECKPOINTS)}")
        return cls(schedule, extra == "ema", augment, keep or DEFAULT_KEEP[schedule], arch)

    def network(self, run_arch: str) -> str:
        """The architecture this member trains: its own, or the run's ``--arch``."""
        return self.arch or run_arch

    def on(self, run_arch: str) -> MemberRecipe:
        """The same recipe with its architecture left to a run of ``run_arch`` when it is that one, so
        a spec is written one way whichever way it was given."""
        return replace(self, arch=None) if self.arch == run_arch else self

    @property
    def needs_validation(self) -> bool:
        """Whether the validation speakers steer this member: a plateau schedule cuts its rate and
        stops on them, and ``@best`` picks its weights with them. A cosine member keeping its last
        epoch does neither, so ``train.py --pool-validation`` can train it on those speakers too."""
        return self.schedule == "plateau" or self.keep == "best"

    def __str__(self) -> str:
        network = f"{self.arch}/" if self.arch else ""
        return f"{network}{self.schedule}{'+ema' if self.ema else ''}:{self.augment}@{self.keep}"


def ensemble_arch(members: list[MemberRecipe], run_arch: str) -> str:
    """The architectures ``members`` train, joined by ``+``, ``run_arch`` first when any member trains
    it, the others in order of first use: ``run_arch`` itself when they all train it,
    ``"ser_cnn_lite+ser_tdnn"`` for a mixed ensemble. It names the run's reports
    (``cv_<arch>.json``) and is the shipped model's ``config.json`` ``arch``."""
    networks = [member.network(run_arch) for member in members]
    return "+".join(dict.fromkeys(sorted(networks, key=lambda network: network != run_arch)))
