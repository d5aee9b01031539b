"""Finding the corpora and reading labels from their file names: RAVDESS and CREMA-D, and the
``Clip`` and ``ScanReport`` records every loader returns (TESS, nEMO and TurEV-DB have modules of
their own; ``registry`` names them all)."""

from __future__ import annotations

import csv
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import soundfile

from ser_core.inference.audio import SUPPORTED_EXTENSIONS
from ser_core.inference.params import AUXILIARY_EMOTIONS

log = logging.getLogger(__name__)

RAVDESS_KAGGLE = "uwrfkaggler/ravdess-emotional-speech-audio"
CREMA_KAGGLE = "ejlok1/cremad"

# RAVDESS codes for the shared emotions; 02 calm and 08 surprised have no CREMA-D counterpart.
RAVDESS_EMOTIONS = {"01": "neutral", "03": "happy", "04": "sad", "05": "angry", "06": "fear", "07": "disgust"}
RAVDESS_OTHER_EMOTIONS = {"02": "calm", "08": "surprised"}
CREMA_EMOTIONS = {"ANG": "angry", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}

# Every format the predictor decodes (Ogg Opus .opus/.oga included: ASED, CASIA and BanglaSER-Ext here).
AUDIO_SUFFIXES = frozenset(
    {f".{ext.lower()}" for ext in soundfile.available_formats()} | set(SUPPORTED_EXTENSIONS)
)


class DataUnavailableError(RuntimeError):
    """A corpus could not be found or downloaded; the message says what to do instead."""


@dataclass(frozen=True)
class Clip:
    path: str
    corpus: str  # "ravdess", "crema", "tess", "nemo", "turev" (registry.CORPORA), or "folders"
    speaker: str  # unique across corpora: "<corpus>_<id>", e.g. "ravdess_12", "crema_1001", "tess_OAF"
    gender: str | None  # "male", "female", or None when unknown
    emotion: str
    source_emotion: str | None = None  # the corpus's own label when it differs, e.g. "calm" kept as neutral


@dataclass
class ScanReport:
    corpus: str
    kept: int = 0
    other_emotions: int = 0  # parsed, but an emotion outside the six (and not kept as auxiliary)
    auxiliary: int = 0  # kept with an auxiliary emotion (params.AUXILIARY_EMOTIONS), for training only
    unparsed: list[str] = field(default_factory=list)
    duplicates: int = 0
    calm_as: str | None = None  # "neutral" or "drop" where the corpus has calm clips (labels.CALM_CHOICES)
    calm: int = 0  # calm clips found, whichever way calm_as took them
    ignored_folders: list[str] = field(default_factory=list)  # folder-per-emotion layout only

    def summary(self) -> str:
        auxiliary = f" (and {self.auxiliary} of auxiliary emotions, for training)" if self.auxiliary else ""
        text = (
            f"{self.corpus}: kept {self.kept} clips{auxiliary}, skipped {self.other_emotions} of other emotions, "
            f"{len(self.unparsed)} unparsable names, {self.duplicates} duplicate copies dropped"
        )
        if self.calm_as is not None and self.calm:
            text += f"; {self.calm} calm clips {'' if self.calm_as == 'neutral' else 'not '}counted as neutral" \
                    f" (calm_as={self.calm_as})"
        return text

    def record(self) -> dict:
        """The counts as train.py's config.json records them under ``data``."""
        record = {"clips": self.kept, "duplicates_dropped": self.duplicates, "unparsed_names": len(self.unparsed),
                  "other_emotions": self.other_emotions, "auxiliary_clips": self.auxiliary}
        if self.calm_as is not None:
            record.update(calm_as=self.calm_as, calm_clips=self.calm)
        return record


def parse_ravdess_name(name: str, auxiliary: bool = False) -> tuple[str | None, int] | None:
    """``03-01-05-01-02-02-12.wav`` -> ``("angry", 12)``; ``(None, actor)`` for calm/surprised/song,
    or ``("calm", actor)`` / ``("surprised", actor)`` for speech with ``auxiliary``.

    Returns None when the name is not a RAVDESS name.
    """
    parts = Path(name).stem.split("-")
    if len(parts) != 7 or not all(len(part) == 2 and part.isdigit() for part in parts):
        return None
    modality, channel, emotion, _intensity, _statement, _repetition, actor = parts
    if emotion not in RAVDESS_EMOTIONS and emotion not in RAVDESS_OTHER_EMOTIONS:
        return None
    if modality != "03" or channel != "01":  # audio-only speech; song and video are not used
        return None, int(actor)
    if auxiliary and emotion in RAVDESS_OTHER_EMOTIONS:
        return RAVDESS_OTHER_EMOTIONS[emotion], int(actor)
    return RAVDESS_EMOTIONS.get(emotion), int(actor)


def parse_crema_name(name: str) -> tuple[str, int] | None:
    """``1001_DFA_ANG_XX.wav`` -> ``("angry", 1001)``; None when not a CREMA-D name."""
    parts = Path(name).stem.split("_")
    if len(parts) != 4 or not (parts[0].isdigit() and len(parts[0]) == 4):
        return None
    emotion = CREMA_EMOTIONS.get(parts[2])
    return (emotion, int(parts[0])) if emotion else None


def audio_files(root: Path, suffixes: Iterable[str] = AUDIO_SUFFIXES) -> list[Path]:
    """Every audio file below ``root`` (any depth, any case of suffix), sorted."""
    suffixes = frozenset(suffixes)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)


def drop_duplicates(paths: list[Path], report: ScanReport) -> list[Path]:
    """Keep one file per recording name, in any case: the Kaggle RAVDESS and TESS copies hold many
    files twice (the shallower copy is kept)."""
    seen: set[str] = set()
    unique = []
    for path in sorted(paths, key=lambda p: (len(p.parts), str(p))):
        if path.stem.lower() in seen:
            report.duplicates += 1
            continue
        seen.add(path.stem.lower())
        unique.append(path)
    return unique


def scan_ravdess(root: str | Path, auxiliary: bool = False) -> tuple[list[Clip], ScanReport]:
    """Clips of the six emotions, and with ``auxiliary`` also those of calm and surprised."""
    root = Path(root)
    report = ScanReport("ravdess")
    clips = []
    for path in drop_duplicates(audio_files(root), report):
        parsed = parse_ravdess_name(path.name, auxiliary)
        if parsed is None:
            report.unparsed.append(str(path))
            continue
        emotion, actor = parsed
        if emotion is None:
            report.other_emotions += 1
            continue
        gender = "male" if actor % 2 else "female"
        clips.append(Clip(str(path), "ravdess", f"ravdess_{actor:02d}", gender, emotion))
    report.auxiliary = sum(clip.emotion in AUXILIARY_EMOTIONS for clip in clips)
    report.kept = len(clips) - report.auxiliary
    return sorted(clips, key=lambda clip: clip.path), report


def _crema_genders(root: Path) -> dict[int, str]:
    """Read ``VideoDemographics.csv`` when the copy has it (the Kaggle audio-only copy does not)."""
    genders: dict[int, str] = {}
    for table in root.rglob("VideoDemographics.csv"):
        with open(table, newline="") as handle:
            for row in csv.DictReader(handle):
                sex = (row.get("Sex") or "").strip().lower()
                if row.get("ActorID", "").isdigit() and sex in ("male", "female"):
                    genders[int(row["ActorID"])] = sex
    return genders


def scan_crema(root: str | Path, auxiliary: bool = False) -> tuple[list[Clip], ScanReport]:
    """Clips of the six emotions (CREMA-D has no others; ``auxiliary`` is for the same signature)."""
    root = Path(root)
    report = ScanReport("crema")
    genders = _crema_genders(root)
    clips = []
    for path in drop_duplicates(audio_files(root), report):
        parsed = parse_crema_name(path.name)
        if parsed is None:
            if len(Path(path).stem.split("_")) == 4 and path.stem[:4].isdigit():
                report.other_emotions += 1
            else:
                report.unparsed.append(str(path))
            continue
        emotion, actor = parsed
        clips.append(Clip(str(path), "crema", f"crema_{actor}", genders.get(actor), emotion))
    report.kept = len(clips)
    return sorted(clips, key=lambda clip: clip.path), report


def local_copy_hint(name: str) -> str:
    """How to pass a local copy of corpus ``name`` instead of downloading it."""
    folder = {"banglaser": "banglaser_ext"}.get(name, name)  # registry.Corpus.local_folder
    return (f"Use a local copy instead: python train.py --data {name}=DIR, for example "
            f"--data {name}=../shared/data/{folder} (several at once: --data ravdess=DIR crema=DIR tess=DIR "
            "nemo=DIR turev=DIR ased=DIR casia=DIR banglaser=DIR; --ravdess-dir and --crema-dir still work)")


def download(handle: str, name: str | None = None) -> Path:
    """Download a Kaggle dataset with kagglehub; a clear error when offline or unauthorised.

    Parameters
    ----------
    handle : str
        The Kaggle handle, e.g. ``RAVDESS_KAGGLE``.
    name : str, optional
        The corpus's name for ``--data`` (``"ravdess"``), used in the error message.

    Returns
    -------
    Path
        The folder kagglehub downloaded (or had cached).

    Raises
    ------
    DataUnavailableError
        When kagglehub fails, with the ``--data NAME=DIR`` form to use instead.
    """
    if name is None:
        name = {RAVDESS_KAGGLE: "ravdess", CREMA_KAGGLE: "crema"}.get(handle, "NAME")
    try:
        import kagglehub

        return Path(kagglehub.dataset_download(handle))
    except Exception as error:  # network, auth and API errors all mean the same to the user
        raise DataUnavailableError(
            f"Could not download the Kaggle dataset '{handle}' ({type(error).__name__}: {error}).\n"
            f"{local_copy_hint(name)}; or set up Kaggle access."
        ) from error


def gather(ravdess_dir: str | None, crema_dir: str | None,
           auxiliary: bool = False) -> tuple[list[Clip], list[ScanReport]]:
    """Clips of the six emotions from local folders, or from Kaggle when no folder is given; with
    ``auxiliary`` also RAVDESS's calm and surprised clips (``clip.emotion`` tells them apart).

    The two-corpus form; ``registry.gather_corpora`` reads any set of corpora (train.py's ``--data``)."""
    if ravdess_dir is None and crema_dir is None:
        ravdess_dir, crema_dir = str(download(RAVDESS_KAGGLE)), str(download(CREMA_KAGGLE))
    clips: list[Clip] = []
    reports = []
    for directory, scan in ((ravdess_dir, scan_ravdess), (crema_dir, scan_crema)):
        if directory is None:
            continue
        if not Path(directory).is_dir():
            raise DataUnavailableError(f"{directory} is not a directory.")
        found, report = scan(directory, auxiliary)
        if not found:
            raise DataUnavailableError(f"No usable audio files found under {directory}.")
        clips += found
        reports.append(report)
        log.info(report.summary())
        for name in report.unparsed[:20]:
            log.warning("unparsable file name skipped: %s", name)
    return clips, reports


def class_counts(clips: list[Clip]) -> dict[str, int]:
    return dict(sorted(Counter(clip.emotion for clip in clips).items()))
