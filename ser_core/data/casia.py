"""CASIA Chinese emotional speech (the public 1,200-file subset): 4 speakers, the same 50 texts in six emotions.

Layout ``SPEAKER/emotion/NNN.wav`` (``liuchanhg/angry/201.wav``): the speaker and the emotion come
from the folders, the text number from the name. Emotions angry, fear, happy, neutral, sad and
surprise: no disgust, and "surprise" is skipped (or kept as the auxiliary ``surprised``).
"""

from __future__ import annotations

from pathlib import Path

from ser_core.data.corpora import Clip, ScanReport, audio_files
from ser_core.data.labels import canonical_emotion, clips_from_names

__all__ = ["CASIA_GENDERS", "parse_casia_path", "scan_casia"]

CASIA_GENDERS = {"liuchanhg": "female", "zhaoquanyin": "female", "wangzhe": "male", "zhaozuoxiang": "male"}


def parse_casia_path(path: str | Path) -> tuple[str, str] | None:
    """``liuchanhg/angry/201.wav`` -> ``("liuchanhg", "angry")``; None when not a CASIA path.

    Returns
    -------
    (speaker, emotion) or None
        The speaker folder's name and the canonical emotion word (``"surprised"`` for surprise).

    Examples
    --------
    >>> parse_casia_path("casia/wangzhe/surprise/230.opus")
    ('wangzhe', 'surprised')
    """
    path = Path(path)
    if not path.stem.isdigit() or len(path.parts) < 3:
        return None
    emotion = canonical_emotion(path.parent.name)
    speaker = path.parent.parent.name
    if emotion is None or not speaker or canonical_emotion(speaker) is not None:
        return None
    return speaker, emotion


def scan_casia(root: str | Path, *, auxiliary: bool = False, calm_as: str = "drop") -> tuple[list[Clip], ScanReport]:
    """Clips of the six emotions (five: CASIA has no disgust) from a CASIA folder.

    Parameters
    ----------
    root : str or Path
        The folder holding one folder per speaker (or one speaker's folder of emotion folders).
    auxiliary : bool
        Keep "surprise" as the auxiliary ``surprised`` instead of skipping it.
    calm_as : str
        Accepted for the common loader signature; CASIA has no calm clips.

    Returns
    -------
    clips : list of Clip
        Sorted by path; speakers ``"casia_<name>"``, e.g. ``"casia_wangzhe"``.
    report : ScanReport
    """
    report = ScanReport("casia")
    paths = drop_duplicates_per_speaker(audio_files(Path(root)), report)
    # a speaker's folder given as "." still names them: parse the absolute path
    clips = clips_from_names(paths, "casia", lambda path: parse_casia_path(path.absolute()), report,
                             gender_of=lambda speaker: CASIA_GENDERS.get(speaker.lower()), auxiliary=auxiliary,
                             calm_as=calm_as)
    return clips, report


def drop_duplicates_per_speaker(paths: list[Path], report: ScanReport) -> list[Path]:
    """CASIA names repeat in every folder (``201.wav`` is in each): a recording is its speaker,
    emotion and number, so only a second copy of all three is a duplicate."""
    seen: set[tuple[str, str, str]] = set()
    unique = []
    for path in sorted(paths, key=lambda p: (len(p.parts), str(p))):
        key = (path.absolute().parent.parent.name.lower(), path.parent.name.lower(), path.stem.lower())
        if key in seen:
            report.duplicates += 1
            continue
        seen.add(key)
        unique.append(path)
    return unique
