"""The Toronto Emotional Speech Set (TESS): two speakers saying "Say the word ___" in seven emotions.

Release layout ``OAF_angry/OAF_back_angry.wav`` (folders ``SPEAKER_emotion``, files
``SPEAKER_word_emotion``). The Kaggle copy nests the folders one or two levels deeper, holds some of
them twice and spells names in mixed case (``OAF_Fear``, ``YAF_pleasant_surprised``), so the scan
reads every level, ignores case and keeps one copy of each recording. Pleasant surprise (``ps``) is
not one of the six emotions: skipped, or kept as the auxiliary ``surprised``.
"""

from __future__ import annotations

from pathlib import Path

from ser_core.data.corpora import Clip, ScanReport, audio_files, drop_duplicates
from ser_core.data.labels import canonical_emotion, clips_from_names

__all__ = ["TESS_KAGGLE", "TESS_GENDERS", "parse_tess_name", "scan_tess"]

TESS_KAGGLE = "ejlok1/toronto-emotional-speech-set-tess"
# Both speakers are women (OAF aged 64, YAF aged 26), per the corpus's documentation.
TESS_GENDERS = {"OAF": "female", "YAF": "female"}


def _emotion_at_end(parts: list[str]) -> str | None:
    """The canonical emotion that the last one or two ``_`` parts spell ("angry", "pleasant_surprise")."""
    for size in (1, 2):
        if len(parts) > size:
            emotion = canonical_emotion("_".join(parts[-size:]))
            if emotion:
                return emotion
    return None


def parse_tess_name(path: str | Path) -> tuple[str, str] | None:
    """``OAF_angry/OAF_back_angry.wav`` -> ``("OAF", "angry")``; None when not a TESS name.

    Parameters
    ----------
    path : str or Path
        A file name, or a path whose parent folder ``SPEAKER_emotion`` is read when the file name's
        own emotion word is not recognised.

    Returns
    -------
    (speaker, emotion) or None
        The speaker code in upper case and the canonical emotion word (one of the six, or
        ``"surprised"`` for pleasant surprise).

    Examples
    --------
    >>> parse_tess_name("YAF_pleasant_surprised/YAF_germ_ps.wav")
    ('YAF', 'surprised')
    """
    path = Path(path)
    parts = path.stem.split("_")
    if len(parts) < 3 or not parts[0].isalpha():
        return None
    emotion = _emotion_at_end(parts)
    if emotion is None:  # a few Kaggle names misspell the emotion; the folder still says it
        folder = path.parent.name.split("_")
        if folder[0].lower() == parts[0].lower():
            emotion = _emotion_at_end(folder)
    return (parts[0].upper(), emotion) if emotion else None


def scan_tess(root: str | Path, *, auxiliary: bool = False, calm_as: str = "drop") -> tuple[list[Clip], ScanReport]:
    """Clips of the six emotions from a TESS folder.

    Parameters
    ----------
    root : str or Path
        The release folder or the Kaggle download; read at every depth.
    auxiliary : bool
        Keep pleasant surprise as the auxiliary ``surprised`` instead of skipping it.
    calm_as : str
        Accepted for the common loader signature; TESS has no calm clips.

    Returns
    -------
    clips : list of Clip
        Sorted by path; speakers ``"tess_OAF"`` and ``"tess_YAF"``, both female.
    report : ScanReport
    """
    report = ScanReport("tess")
    paths = drop_duplicates(audio_files(Path(root)), report)
    clips = clips_from_names(paths, "tess", parse_tess_name, report, gender_of=TESS_GENDERS.get,
                             auxiliary=auxiliary, calm_as=calm_as)
    return clips, report
