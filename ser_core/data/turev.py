"""TurEV-DB, the Turkish Emotion-Voice Database: isolated words by 6 speakers in four emotions.

Layout ``Angry/``, ``Calm/``, ``Happy/``, ``Sad/`` with names ``SPEAKER_CODE_word.wav`` (codes
kz angry, sk calm, mt happy, hl sad). The corpus's "Calm" is not the same thing as neutral, so the
loader takes an explicit ``calm_as``: ``"drop"`` (the default until someone measures both) or
``"neutral"``; the report records which. The database gives no speaker genders.
"""

from __future__ import annotations

from pathlib import Path

from ser_core.data.corpora import Clip, ScanReport, audio_files, drop_duplicates
from ser_core.data.labels import canonical_emotion, check_calm_as, kept_label
from ser_core.inference.params import EMOTIONS

__all__ = ["TUREV_CODES", "parse_turev_name", "scan_turev"]

TUREV_CODES = {"kz": "angry", "sk": "calm", "mt": "happy", "hl": "sad"}


def parse_turev_name(name: str | Path) -> tuple[str, str] | None:
    """``Angry/1157_kz_acik.wav`` -> ``("1157", "angry")``; None when not a TurEV-DB name.

    Returns
    -------
    (speaker, emotion) or None
        The speaker code and the canonical emotion word (``"calm"`` for code sk).

    Examples
    --------
    >>> parse_turev_name("Calm/1234_sk_algi.flac")
    ('1234', 'calm')
    """
    parts = Path(name).stem.split("_")
    if len(parts) < 3 or not parts[0].isalnum():
        return None
    emotion = TUREV_CODES.get(parts[1].lower())
    return (parts[0], emotion) if emotion else None


def scan_turev(root: str | Path, *, auxiliary: bool = False, calm_as: str = "drop") -> tuple[list[Clip], ScanReport]:
    """Clips of angry, happy and sad (and calm as ``calm_as`` says) from a TurEV-DB folder.

    Parameters
    ----------
    root : str or Path
        The folder holding ``Angry/`` ... ``Sad/``; read at every depth.
    auxiliary : bool
        With ``calm_as="drop"``, keep calm clips as the auxiliary ``calm`` instead of skipping them.
    calm_as : {"drop", "neutral"}
        Count Calm clips as neutral, or leave them out of the six emotions.

    Returns
    -------
    clips : list of Clip
        Sorted by path; speakers ``"turev_<code>"``, e.g. ``"turev_1157"``, gender unknown. A calm
        clip kept as neutral has ``source_emotion="calm"``.
    report : ScanReport
        ``calm_as`` and ``calm`` (the calm clips found) say what happened to Calm.
    """
    report = ScanReport("turev", calm_as=check_calm_as(calm_as))
    clips = []
    for path in drop_duplicates(audio_files(Path(root)), report):
        parsed = parse_turev_name(path)
        if parsed is None:
            report.unparsed.append(str(path))
            continue
        speaker, canonical = parsed
        folder = canonical_emotion(path.parent.name)
        if folder is not None and folder != canonical:  # a file filed under the wrong emotion
            report.unparsed.append(str(path))
            continue
        report.calm += canonical == "calm"
        emotion = kept_label(canonical, auxiliary=auxiliary, calm_as=calm_as)
        if emotion is None:
            report.other_emotions += 1
            continue
        source = canonical if canonical != emotion else None
        clips.append(Clip(str(path), "turev", f"turev_{speaker}", None, emotion, source))
    report.auxiliary = sum(clip.emotion not in EMOTIONS for clip in clips)
    report.kept = len(clips) - report.auxiliary
    return sorted(clips, key=lambda clip: clip.path), report
