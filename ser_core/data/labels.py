"""Emotion words as corpora and people spell them, and the folder-per-emotion layout.

Every loader maps its corpus's own label to a *canonical* word first (one of the six emotions,
``calm`` or ``surprised``), then decides with :func:`kept_label` what the clip is trained or scored
as. "Calm" is not "neutral" (a calm voice is a chosen, relaxed one), so whether it counts as
neutral is an explicit option, ``calm_as``, that nobody has measured yet; it defaults to ``"drop"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

from ser_core.data.corpora import AUDIO_SUFFIXES, Clip, ScanReport, audio_files
from ser_core.inference.audio import SUPPORTED_EXTENSIONS
from ser_core.inference.params import EMOTIONS

__all__ = ["CALM_CHOICES", "EMOTION_WORDS", "FOLDER_SUFFIXES", "canonical_emotion", "check_calm_as", "clips_from_names", "kept_label",
           "scan_emotion_folders"]

CALM_CHOICES: tuple[str, ...] = ("drop", "neutral")
# Everything the predictor decodes, for folders of the user's own recordings (m4a, webm too).
FOLDER_SUFFIXES = AUDIO_SUFFIXES | frozenset(SUPPORTED_EXTENSIONS)

# Lower-case spellings (spaces and hyphens read as "_") -> canonical word.
EMOTION_WORDS: dict[str, str] = {
    **{emotion: emotion for emotion in EMOTIONS},
    "anger": "angry", "mad": "angry", "ang": "angry",
    "disgusted": "disgust", "dis": "disgust",
    "fearful": "fear", "fearfulness": "fear", "scared": "fear", "afraid": "fear", "fea": "fear",
    "happiness": "happy", "joy": "happy", "hap": "happy",
    "neu": "neutral",
    "sadness": "sad",
    "calm": "calm",
    "surprised": "surprised", "surprise": "surprised", "ps": "surprised",
    "pleasant_surprise": "surprised", "pleasant_surprised": "surprised",
}


def canonical_emotion(word: str) -> str | None:
    """The canonical word for an emotion label, or None when the word is not an emotion.

    Parameters
    ----------
    word : str
        A label as a corpus or a folder spells it, in any case: ``"Fearful"``, ``"happiness"``,
        ``"Pleasant_surprise"``.

    Returns
    -------
    str or None
        One of the six emotions, ``"calm"`` or ``"surprised"``; None for anything else.

    Examples
    --------
    >>> canonical_emotion("Fearful"), canonical_emotion("sadness"), canonical_emotion("Actor_01")
    ('fear', 'sad', None)
    """
    return EMOTION_WORDS.get(word.strip().lower().replace(" ", "_").replace("-", "_"))


def check_calm_as(calm_as: str) -> str:
    """``calm_as`` itself when it is one of :data:`CALM_CHOICES`; ValueError naming it otherwise."""
    if calm_as not in CALM_CHOICES:
        raise ValueError(f"calm_as must be one of {', '.join(CALM_CHOICES)}, not {calm_as!r}")
    return calm_as


def kept_label(canonical: str, *, auxiliary: bool = False, calm_as: str = "drop") -> str | None:
    """What a clip of a canonical emotion is kept as, or None when it is skipped.

    Parameters
    ----------
    canonical : str
        A value of :data:`EMOTION_WORDS`.
    auxiliary : bool
        Keep ``calm`` (when not counted as neutral) and ``surprised`` as auxiliary training labels
        (``params.AUXILIARY_EMOTIONS``) instead of skipping them.
    calm_as : {"drop", "neutral"}
        ``"neutral"`` counts calm clips as neutral; ``"drop"`` leaves them out of the six.

    Returns
    -------
    str or None
        One of the six emotions, an auxiliary label, or None.
    """
    if canonical in EMOTIONS:
        return canonical
    if canonical == "calm" and check_calm_as(calm_as) == "neutral":
        return "neutral"
    return canonical if auxiliary else None


def scan_emotion_folders(root: str | Path, *, auxiliary: bool = False,
                         calm_as: str = "drop") -> tuple[list[Clip], ScanReport]:
    """Clips from a folder with one sub-folder per emotion: ``root/fearful/*.wav``, ``root/Sad/…``.

    Parameters
    ----------
    root : str or Path
        The folder; its sub-folders are named after emotions with the usual synonyms (see
        :data:`EMOTION_WORDS`); files anywhere below an emotion folder belong to it.
    auxiliary, calm_as
        As for :func:`kept_label`.

    Returns
    -------
    clips : list of Clip
        Corpus ``"folders"``, speaker ``"folders_unknown"`` (the layout names no speakers).
    report : ScanReport
        ``ignored_folders`` lists the sub-folders that are not (kept) emotions, ``calm`` as well
        when calm clips are dropped; files directly in ``root`` are ``unparsed``.
    """
    root = Path(root)
    report = ScanReport("folders", calm_as=check_calm_as(calm_as))
    clips = []
    report.unparsed += [str(path) for path in audio_files(root, FOLDER_SUFFIXES) if path.parent == root]
    for folder in sorted(path for path in root.iterdir() if path.is_dir()):
        canonical = canonical_emotion(folder.name)
        label = kept_label(canonical, auxiliary=auxiliary, calm_as=calm_as) if canonical else None
        files = audio_files(folder, FOLDER_SUFFIXES)
        if canonical == "calm":
            report.calm += len(files)
        if label is None:
            report.ignored_folders.append(folder.name)
            continue
        source = canonical if canonical != label else None
        clips += [Clip(str(path), "folders", "folders_unknown", None, label, source) for path in files]
    report.auxiliary = sum(clip.emotion not in EMOTIONS for clip in clips)
    report.kept = len(clips) - report.auxiliary
    return clips, report


def clips_from_names(paths: Iterable[Path], corpus: str, parse: Callable[[Path], tuple[str, str] | None],
                     report: ScanReport, *, gender_of: Callable[[str], str | None] = lambda speaker: None,
                     auxiliary: bool = False, calm_as: str = "drop") -> list[Clip]:
    """Clips of the files whose names ``parse`` reads as ``(speaker, canonical emotion)``.

    The loop every corpus whose file names say speaker and emotion shares: a name ``parse`` cannot
    read is listed in ``report.unparsed``, an emotion outside the six (and the auxiliary ones when
    asked) is counted in ``report.other_emotions``; ``report.kept`` and ``report.auxiliary`` are set.

    Returns
    -------
    list of Clip
        Sorted by path; speakers ``"<corpus>_<speaker>"``, gender from ``gender_of(speaker)``.
    """
    clips = []
    for path in paths:
        parsed = parse(path)
        if parsed is None:
            report.unparsed.append(str(path))
            continue
        speaker, canonical = parsed
        emotion = kept_label(canonical, auxiliary=auxiliary, calm_as=calm_as)
        if emotion is None:
            report.other_emotions += 1
            continue
        clips.append(Clip(str(path), corpus, f"{corpus}_{speaker}", gender_of(speaker), emotion))
    report.auxiliary = sum(clip.emotion not in EMOTIONS for clip in clips)
    report.kept = len(clips) - report.auxiliary
    return sorted(clips, key=lambda clip: clip.path)
