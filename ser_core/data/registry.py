"""Every corpus the project reads, by name: its loader, its Kaggle copy, and how to recognise it.

The names are the ones ``train.py --data NAME=DIR`` and ``python -m ser_core.evaluate --corpus NAME``
take. Each loader has the signature ``scan(root, *, auxiliary=False, calm_as="drop") ->
(clips, report)``, and gives speaker ids prefixed with the corpus name, so that a speaker split
never mixes two corpora's speakers.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ser_core.data import corpora
from ser_core.data.corpora import Clip, DataUnavailableError, ScanReport, audio_files
from ser_core.data.labels import FOLDER_SUFFIXES, canonical_emotion, check_calm_as, scan_emotion_folders
from ser_core.data.ased import parse_ased_name, scan_ased
from ser_core.data.banglaser import in_banglaser_folder, parse_banglaser_name, scan_banglaser
from ser_core.data.casia import parse_casia_path, scan_casia
from ser_core.data.nemo import parse_nemo_name, scan_nemo
from ser_core.data.tess import TESS_KAGGLE, parse_tess_name, scan_tess
from ser_core.data.turev import parse_turev_name, scan_turev
from ser_core.inference.params import EMOTIONS

__all__ = ["CORPORA", "DEFAULT_CORPORA", "FOLDERS", "LOCAL_DATA", "Corpus", "corpus_table", "default_sources",
           "detect_corpus", "fetch_corpus", "gather_corpora", "labelled_clips"]

log = logging.getLogger(__name__)

Scan = Callable[..., tuple[list[Clip], ScanReport]]


@dataclass(frozen=True)
class Corpus:
    """One corpus: ``name`` as the command lines spell it, ``layout`` as a one-line example."""

    name: str
    title: str
    layout: str
    scan: Scan
    recognises: Callable[[Path], bool]  # is this file name one of the corpus's own?
    kaggle: str | None = None
    folder: str = ""  # its folder's name in ../shared/data, when not ``name``

    @property
    def local_folder(self) -> str:
        return self.folder or self.name


def _scan_ravdess(root: str | Path, *, auxiliary: bool = False, calm_as: str = "drop"):
    # RAVDESS's calm (02) keeps its own meaning: skipped, or the auxiliary "calm"; calm_as is TurEV's.
    return corpora.scan_ravdess(root, auxiliary)


def _scan_crema(root: str | Path, *, auxiliary: bool = False, calm_as: str = "drop"):
    return corpora.scan_crema(root, auxiliary)


def _crema_like(path: Path) -> bool:
    parts = path.stem.split("_")
    return len(parts) == 4 and len(parts[0]) == 4 and parts[0].isdigit()


CORPORA: dict[str, Corpus] = {corpus.name: corpus for corpus in (
    Corpus("ravdess", "RAVDESS", "Actor_01/03-01-05-01-01-01-01.wav", _scan_ravdess,
           lambda path: corpora.parse_ravdess_name(path.name) is not None and not in_banglaser_folder(path),
           corpora.RAVDESS_KAGGLE),
    Corpus("crema", "CREMA-D", "AudioWAV/1001_DFA_ANG_XX.wav", _scan_crema, _crema_like, corpora.CREMA_KAGGLE),
    Corpus("tess", "TESS", "OAF_angry/OAF_back_angry.wav", scan_tess,
           lambda path: parse_tess_name(path) is not None, TESS_KAGGLE),
    Corpus("nemo", "nEMO", "samples/SB0_anger_0.wav + data.tsv", scan_nemo,
           lambda path: parse_nemo_name(path) is not None),
    Corpus("turev", "TurEV-DB", "Angry/1157_kz_acik.wav", scan_turev,
           lambda path: parse_turev_name(path) is not None),
    Corpus("ased", "ASED", "01Neutral/n1-01-01-01-01.wav", scan_ased, lambda path: parse_ased_name(path) is not None),
    Corpus("casia", "CASIA", "liuchanhg/angry/201.wav", scan_casia,
           lambda path: parse_casia_path(path.absolute()) is not None),
    Corpus("banglaser", "BanglaSER", "Actor - 35/03-01-06-01-01-01-35.wav", scan_banglaser,
           lambda path: parse_banglaser_name(path) is not None and in_banglaser_folder(path), folder="banglaser_ext"),
)}
# Downloaded when train.py is given no data and finds no local copy (default_sources). TESS stays
# out: its two speakers can never be held out (split._share needs three per corpus).
DEFAULT_CORPORA: tuple[str, ...] = ("ravdess", "crema")
# Where train.py looks for local copies when given no --data: ../shared/data beside the checkout,
# one folder per corpus under its own name (banglaser_ext for BanglaSER-Ext).
LOCAL_DATA: Path = Path(__file__).resolve().parents[3] / "shared" / "data"
FOLDERS = Corpus("folders", "folder per emotion", "angry/*.wav, fearful/*.wav, sadness/*.wav, ...",
                 scan_emotion_folders, lambda path: False)


def fetch_corpus(name: str) -> Path:
    """Download corpus ``name`` with kagglehub, or say how to pass a local copy when it cannot.

    Raises
    ------
    DataUnavailableError
        When the corpus has no Kaggle copy, or the download fails; the message names
        ``--data NAME=DIR``.
    """
    corpus = CORPORA[name]
    if corpus.kaggle is None:
        raise DataUnavailableError(f"{corpus.title} has no Kaggle copy to download. {corpora.local_copy_hint(name)}.")
    return corpora.download(corpus.kaggle, name)


def default_sources(local_data: Path | None = None) -> dict[str, Path | None]:
    """What train.py reads when given no ``--data``: every corpus with a local copy, else a download.

    Parameters
    ----------
    local_data : Path, optional
        The folder of local copies (default :data:`LOCAL_DATA`, ``../shared/data`` beside the checkout).

    Returns
    -------
    dict
        Corpus name -> its folder under ``local_data``, for every corpus found there, in
        :data:`CORPORA` order; when none is found, :data:`DEFAULT_CORPORA` -> None (download them).
    """
    local_data = LOCAL_DATA if local_data is None else Path(local_data)
    found = {name: _relative(local_data / corpus.local_folder) for name, corpus in CORPORA.items()
             if (local_data / corpus.local_folder).is_dir()}
    if found:
        log.info("no --data given: reading every corpus found in %s (%s)", local_data, ", ".join(found))
        return found
    log.info("no --data given and no local copies in %s: downloading %s with kagglehub", local_data,
             " and ".join(DEFAULT_CORPORA))
    return dict.fromkeys(DEFAULT_CORPORA)


def _relative(folder: Path) -> Path:
    """``folder`` as seen from the working directory (``../shared/data/tess``), so that the paths a run
    records (split.csv) do not carry this machine's absolute layout; as it is on another drive."""
    try:
        return Path(os.path.relpath(folder))
    except ValueError:
        return folder


def gather_corpora(sources: dict[str, str | Path | None], *, auxiliary: bool = False,
                   calm_as: str = "drop") -> tuple[list[Clip], list[ScanReport]]:
    """Clips of every named corpus, from its folder, or downloaded where the folder is None.

    Parameters
    ----------
    sources : dict
        Corpus name (a key of :data:`CORPORA`) -> folder, or None to download it. Read in order.
    auxiliary : bool
        Also keep the auxiliary emotions (calm, surprised) for training.
    calm_as : {"drop", "neutral"}
        What TurEV-DB's Calm clips become (see :mod:`ser_core.data.labels`).

    Returns
    -------
    clips : list of Clip
    reports : list of ScanReport
        One per corpus, in the order of ``sources``.

    Raises
    ------
    DataUnavailableError
        An unknown name, a missing folder, a folder without usable clips, or a failed download.
    """
    check_calm_as(calm_as)
    unknown = [name for name in sources if name not in CORPORA]
    if unknown:
        raise DataUnavailableError(f"unknown corpus {unknown[0]!r}: the corpora are {', '.join(CORPORA)}")
    clips: list[Clip] = []
    reports = []
    for name, directory in sources.items():
        directory = Path(directory) if directory is not None else fetch_corpus(name)
        if not directory.is_dir():
            raise DataUnavailableError(f"{directory} is not a directory (given for {name}).")
        found, report = CORPORA[name].scan(directory, auxiliary=auxiliary, calm_as=calm_as)
        if not found:
            raise DataUnavailableError(f"No usable {CORPORA[name].title} audio files found under {directory} "
                                       f"(expected names like {CORPORA[name].layout}).")
        clips += found
        reports.append(report)
        log.info(report.summary())
        for path in report.unparsed[:20]:
            log.warning("unparsable file name skipped: %s", path)
    log.info("clips per corpus and emotion:\n%s", corpus_table(clips))
    return clips, reports


def detect_corpus(root: str | Path) -> str:
    """The layout of a folder: the corpus whose names most of its files carry, else ``"folders"``.

    Parameters
    ----------
    root : str or Path
        A corpus folder, or a folder with one sub-folder per emotion.

    Returns
    -------
    str
        A key of :data:`CORPORA`, or ``"folders"`` when no corpus recognises more files than the
        emotion folders hold (TurEV-DB's ``Angry/`` folders count for TurEV-DB on a tie).
    """
    root = Path(root)
    files = audio_files(root, FOLDER_SUFFIXES)
    in_emotion_folders = sum(len(path.relative_to(root).parts) > 1
                             and canonical_emotion(path.relative_to(root).parts[0]) is not None for path in files)
    best, most = "folders", in_emotion_folders
    for name, corpus in CORPORA.items():
        count = sum(corpus.recognises(path) for path in files)
        if count > most or (count == most and count and best == "folders"):
            best, most = name, count
    return best


def labelled_clips(root: str | Path, corpus: str | None = None, *,
                   calm_as: str = "drop") -> tuple[list[Clip], ScanReport]:
    """Clips of the six emotions in any folder ``train.py`` or ``evaluate`` reads.

    Parameters
    ----------
    root : str or Path
        A RAVDESS, CREMA-D, TESS, nEMO, TurEV-DB, ASED, CASIA or BanglaSER folder, or one sub-folder per emotion
        (``angry/``, ``fearful/``, ``sadness/``, ...).
    corpus : str, optional
        A key of :data:`CORPORA` or ``"folders"``; detected from the file names when omitted.
    calm_as : {"drop", "neutral"}
        What calm clips (TurEV-DB's, or a ``calm/`` folder) become.

    Returns
    -------
    clips : list of Clip
        Only the six emotions (no auxiliary ones).
    report : ScanReport
        ``report.corpus`` names the layout read.

    Raises
    ------
    DataUnavailableError
        ``root`` is not a folder, or ``corpus`` is not a known name.

    Examples
    --------
    >>> clips, report = labelled_clips("../shared/data/ravdess")  # doctest: +SKIP
    >>> report.corpus, len(clips)  # doctest: +SKIP
    ('ravdess', 880)
    """
    root = Path(root)
    if not root.is_dir():
        raise DataUnavailableError(f"{root} is not a directory.")
    if corpus is None:
        corpus = detect_corpus(root)
    known = {**CORPORA, FOLDERS.name: FOLDERS}
    if corpus not in known:
        raise DataUnavailableError(f"unknown corpus {corpus!r}: use one of {', '.join(known)}")
    return known[corpus].scan(root, auxiliary=False, calm_as=check_calm_as(calm_as))


def corpus_table(clips: list[Clip]) -> str:
    """A small table: per corpus, its speakers and its clips per emotion.

    Returns
    -------
    str
        One header line and one line per corpus (and a total line for several corpora); the
        auxiliary emotions get columns only when some clip has one.

    Examples
    --------
    >>> print(corpus_table([Clip("a.wav", "tess", "tess_OAF", "female", "sad")]))
    corpus  speakers  angry disgust  fear happy neutral   sad  total
    tess           1      0       0     0     0       0     1      1
    """
    labels = list(EMOTIONS) + sorted({clip.emotion for clip in clips} - set(EMOTIONS))
    rows = {}
    for corpus in sorted({clip.corpus for clip in clips}):
        mine = [clip for clip in clips if clip.corpus == corpus]
        rows[corpus] = (len({clip.speaker for clip in mine}), Counter(clip.emotion for clip in mine))
    if len(rows) > 1:
        rows["total"] = (len({clip.speaker for clip in clips}), Counter(clip.emotion for clip in clips))
    widths = [max(5, len(label)) for label in labels]
    lines = ["corpus  speakers  " + " ".join(f"{label:>{w}}" for label, w in zip(labels, widths)) + "  total"]
    for corpus, (speakers, counts) in rows.items():
        lines.append(f"{corpus:<7} {speakers:>8}  " + " ".join(f"{counts[label]:>{w}}" for label, w in
                                                              zip(labels, widths)) + f"  {sum(counts.values()):>5}")
    return "\n".join(lines)
