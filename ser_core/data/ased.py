"""ASED, the Amharic Speech Emotion Dataset (v1): 65 speakers, each recorded where and when they chose.

Layout ``01Neutral/ 02Fearful/ 03Happy/ 04Sad/ 05Angry/`` with names ``xn-ss-rr-gg-pp.wav``: the
emotion's letter and folder number (``n1`` neutral, ``f2`` fear, ``h3`` happy, ``s4`` sad, ``a5``
angry; one release file starts with a capital ``S``), sentence, repetition, gender code (01 female,
02 male) and speaker number. The speaker is the last field: a few speaker numbers carry both gender
codes in the release, so such a speaker's gender is left unknown.

Sentence numbers count within each emotion's own list of seven: 01 and 02 are the two texts every
speaker said in every emotion (the *common* sentences); 03-07 are five texts written for that emotion
alone (25 in all), always spoken with it. A model that recognises those words can score well on ASED
for the wrong reason, so protocols can keep to :data:`COMMON_SENTENCES` (:func:`ased_sentence`).
"""

from __future__ import annotations

from pathlib import Path

from ser_core.data.corpora import Clip, ScanReport, audio_files, drop_duplicates

__all__ = ["ASED_EMOTIONS", "COMMON_SENTENCES", "ased_sentence", "is_common_sentence", "parse_ased_name", "scan_ased"]

ASED_EMOTIONS = {"n1": "neutral", "f2": "fear", "h3": "happy", "s4": "sad", "a5": "angry"}
# The file names alone cannot tell them apart (every number 01-07 occurs with every emotion, counted
# per emotion); the release's transcripts can: sentences 01 and 02 are the same two texts in all five
# emotions' lists. They are also the only numbers said by a different set of speakers (38 of the 52
# here) from the emotion-specific ones (27).
COMMON_SENTENCES: frozenset[str] = frozenset({"01", "02"})
GENDERS = {"01": "female", "02": "male"}


def parse_ased_name(name: str | Path) -> tuple[str, str, str, str] | None:
    """``a5-03-01-02-50.wav`` -> ``("50", "angry", "03", "male")``; None when not an ASED name.

    Returns
    -------
    (speaker, emotion, sentence, gender) or None
        The speaker number and sentence number as written, the emotion, and the gender of the
        name's code (``"female"``, ``"male"``, or ``""`` for another code).

    Examples
    --------
    >>> parse_ased_name("04Sad/S4-04-02-01-29.opus")
    ('29', 'sad', '04', 'female')
    """
    parts = Path(name).stem.split("-")
    if len(parts) != 5 or not all(len(part) == 2 for part in parts) or not all(p.isdigit() for p in parts[1:]):
        return None
    emotion = ASED_EMOTIONS.get(parts[0].lower())
    if emotion is None:
        return None
    return parts[4], emotion, parts[1], GENDERS.get(parts[3], "")


def ased_sentence(path: str | Path) -> str | None:
    """The sentence number of an ASED file (``"01"`` ... ``"07"``), None for another name."""
    parsed = parse_ased_name(path)
    return parsed[2] if parsed else None


def is_common_sentence(path: str | Path) -> bool:
    """Whether an ASED file says one of the two sentences spoken in every emotion."""
    return ased_sentence(path) in COMMON_SENTENCES


def scan_ased(root: str | Path, *, auxiliary: bool = False, calm_as: str = "drop") -> tuple[list[Clip], ScanReport]:
    """Clips of ASED's five emotions (no disgust) from an ASED folder.

    Parameters
    ----------
    root : str or Path
        The folder holding ``01Neutral/`` ... ``05Angry/``; read at every depth (the emotion comes
        from the name, not the folder).
    auxiliary, calm_as
        Accepted for the common loader signature; ASED has no other emotions.

    Returns
    -------
    clips : list of Clip
        Sorted by path; speakers ``"ased_<number>"``, e.g. ``"ased_29"``.
    report : ScanReport
    """
    report = ScanReport("ased")
    parsed_files = []
    for path in drop_duplicates(audio_files(Path(root)), report):
        parsed = parse_ased_name(path)
        if parsed is None:
            report.unparsed.append(str(path))
        else:
            parsed_files.append((path, parsed))
    genders: dict[str, set[str]] = {}
    for _, (speaker, _, _, gender) in parsed_files:
        genders.setdefault(speaker, set()).add(gender)
    clips = []
    for path, (speaker, emotion, _, _) in parsed_files:
        known = genders[speaker]
        gender = next(iter(known)) if len(known) == 1 and "" not in known else None
        clips.append(Clip(str(path), "ased", f"ased_{speaker}", gender, emotion))
    report.kept = len(clips)
    return sorted(clips, key=lambda clip: clip.path), report
