"""The generalisation report for the app: read ``artifacts/loco_whisper.json`` and turn it into
plain sentences and tables. Pure functions, no Streamlit.

Each corpus was recorded in its own room, with its own microphones and its own actors, in its own
language. Holding one corpus out of training and testing on it is the closest measurement there is
to a user's laptop in their own room: a recording setup the model never heard. "Strict" scores the
held-out corpus with the training corpora's statistics only; "adapted" first standardises its
features with statistics taken from its own unlabelled speech, which is what "Adapt to my voice"
does for a user.

The file (written by ``train.py ... --cv corpus``)::

    {"kind": "leave_one_corpus_out", "model_name": str, "recipe": {...}, "created": iso,
     "corpora": {NAME: {"clips": int, "speakers": int,
                        "strict": {"accuracy": f, "uar": f, "recall": {emotion: f or null}},
                        "adapted": {same}}},
     "mean": {"strict_uar": f, "adapted_uar": f, "strict_accuracy": f, "adapted_accuracy": f},
     "trained_only": [NAME, ...],            # corpora trained on, never held out (too few emotions)
     "speaker_cv": {NAME: {"folds": int, "speakers": int,
                           "all": {"clips": int, "strict": {...}, "adapted": {...}},
                           "common_sentences": {"sentences": [...], "clips": int, ...}}}}  # ASED only

Fractions are 0-1; a null recall means the corpus has no clip of that emotion. ``trained_only`` and
``speaker_cv`` (speaker-grouped cross-validation inside a corpus, every other corpus in training;
"adapted" there means each test speaker adapted to their own clips) are optional: older files lack
them.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from ser_core.evaluation import cv_report
from ser_core.inference import artifacts
from ser_core.inference.params import EMOTIONS

__all__ = [
    "ADAPTED", "ALL_CLIPS", "AS_IS", "CORPUS_LANGUAGES", "LOCO_COMMAND", "LOCO_FILE", "LOCO_KIND", "MISSING", "CorpusResult",
    "LocoReport", "LocoReportError", "Scores", "SpeakerCV", "SubsetScores", "corpus_table", "details_table", "headline",
    "in_ten", "load_loco_report", "new_people_text", "parse_loco_report", "recall_table", "speaker_cv_table",
]

LOGGER = logging.getLogger(__name__)

LOCO_FILE = "loco_whisper.json"
LOCO_KIND = "leave_one_corpus_out"
LOCO_COMMAND = cv_report.LOCO_COMMAND  # python train.py --data ... --cv corpus
MISSING = "—"  # an emotion the held-out corpus has no clip of

# Display name and language of each corpus the shipped model can be tested on.
CORPUS_LANGUAGES: dict[str, tuple[str, str]] = {
    "ravdess": ("RAVDESS", "English (North American)"),
    "tess": ("TESS", "English (Canadian)"),
    "nemo": ("nEMO", "Polish"),
    "turev": ("TurEV-DB", "Turkish"),
    "crema": ("CREMA-D", "English (American)"),
    "ased": ("ASED", "Amharic"),
    "casia": ("CASIA", "Mandarin"),
    "banglaser": ("BanglaSER-Ext", "Bangla"),
}


class LocoReportError(ValueError):
    """The report file is there but does not have the expected layout; the message says where."""


@dataclass(frozen=True)
class Scores:
    """One way of scoring a held-out corpus (strict or adapted)."""

    accuracy: float
    uar: float
    recall: dict[str, float | None]  # None: the corpus has no clip of this emotion


class _NamedCorpus:
    """How the page names a corpus (``name``): its display label and language."""

    name: str

    @property
    def label(self) -> str:
        return CORPUS_LANGUAGES.get(self.name.lower(), (self.name, ""))[0]

    @property
    def language(self) -> str:
        return CORPUS_LANGUAGES.get(self.name.lower(), ("", "unknown"))[1]


@dataclass(frozen=True)
class CorpusResult(_NamedCorpus):
    """One held-out corpus: trained on the others, tested on all of its clips."""

    name: str
    clips: int
    speakers: int
    strict: Scores
    adapted: Scores | None


@dataclass(frozen=True)
class SubsetScores:
    """Some clips of a cross-validated corpus (all of them, or its common sentences), scored both ways."""

    clips: int
    strict: Scores
    adapted: Scores | None
    sentences: tuple[str, ...] = ()  # the common sentences' numbers, for a subset of sentences


@dataclass(frozen=True)
class SpeakerCV(_NamedCorpus):
    """Speaker-grouped cross-validation inside one corpus: new people, every other corpus in training."""

    name: str
    folds: int
    speakers: int
    all: SubsetScores
    common_sentences: SubsetScores | None = None  # ASED: the two sentences said in every emotion


@dataclass(frozen=True)
class LocoReport:
    """The whole report: corpora held out, and the speaker cross-validations when the file has them."""

    model_name: str
    created: str | None
    corpora: list[CorpusResult]
    mean: dict[str, float] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    trained_only: list[str] = field(default_factory=list)
    speaker_cv: list[SpeakerCV] = field(default_factory=list)
    # The head the issue measures against, trained and tested in the same run (train.py: the ridge alone)
    baseline: LocoReport | None = None

    def cv(self, name: str) -> SpeakerCV | None:
        return next((cv for cv in self.speaker_cv if cv.name == name), None)

    def mean_of(self, key: str) -> float | None:
        """``strict_accuracy``, ``adapted_uar``...: the file's mean, else the mean over corpora."""
        value = self.mean.get(key)
        if value is not None:
            return value
        mode, metric = key.split("_", 1)
        values = [getattr(getattr(c, mode), metric) for c in self.corpora if getattr(c, mode) is not None]
        return sum(values) / len(values) if values else None

    @property
    def has_adapted(self) -> bool:
        return any(c.adapted is not None for c in self.corpora)


# ---------------------------------------------------------------- parsing


def _fraction(value: Any, where: str, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0.0 <= value <= 1.0:
        raise LocoReportError(f"{where} must be a fraction from 0 to 1, got {value!r}")
    return float(value)


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise LocoReportError(f"{where} must be a whole number of 0 or more, got {value!r}")
    return value


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise LocoReportError(f"{where} must be an object, got {type(value).__name__}")
    return value


def _scores(value: Any, where: str) -> Scores:
    value = _mapping(value, where)
    recall = _mapping(value.get("recall", {}), f"{where}.recall")
    return Scores(
        accuracy=_fraction(value.get("accuracy"), f"{where}.accuracy"),
        uar=_fraction(value.get("uar"), f"{where}.uar"),
        recall={str(e): _fraction(r, f"{where}.recall.{e}", allow_none=True) for e, r in recall.items()},
    )


def parse_loco_report(data: Any, path: Path | None = None) -> LocoReport:
    """Check a decoded ``loco_whisper.json`` and return it as a :class:`LocoReport`.

    Parameters
    ----------
    data : object
        The decoded JSON.
    path : Path, optional
        Where it came from (kept for the page).

    Raises
    ------
    LocoReportError
        Wrong ``kind``, no corpora, or a figure that is missing or not a fraction; the message
        names the field, e.g. ``corpora.nemo.strict.uar``.

    Examples
    --------
    >>> report = parse_loco_report({"kind": "leave_one_corpus_out", "model_name": "m", "corpora": {
    ...     "tess": {"clips": 10, "speakers": 2, "strict": {"accuracy": 0.5, "uar": 0.5}}}})
    >>> report.corpora[0].language
    'English (Canadian)'
    """
    data = _mapping(data, "the report")
    if data.get("kind") != LOCO_KIND:
        raise LocoReportError(f"kind must be {LOCO_KIND!r}, got {data.get('kind')!r}")
    corpora_data = _mapping(data.get("corpora"), "corpora")
    if not corpora_data:
        raise LocoReportError("corpora is empty: no corpus was held out")
    corpora = []
    for name, entry in corpora_data.items():
        where = f"corpora.{name}"
        entry = _mapping(entry, where)
        adapted = entry.get("adapted")
        corpora.append(CorpusResult(
            name=str(name),
            clips=_count(entry.get("clips"), f"{where}.clips"),
            speakers=_count(entry.get("speakers"), f"{where}.speakers"),
            strict=_scores(entry.get("strict"), f"{where}.strict"),
            adapted=None if adapted is None else _scores(adapted, f"{where}.adapted"),
        ))
    mean = {}
    for key, value in _mapping(data.get("mean") or {}, "mean").items():
        mean[str(key)] = _fraction(value, f"mean.{key}")
    recipe = data.get("recipe")
    trained_only = data.get("trained_only") or []
    if not isinstance(trained_only, list):
        raise LocoReportError(f"trained_only must be a list, got {type(trained_only).__name__}")
    return LocoReport(
        model_name=str(data.get("model_name") or "unnamed model"),
        created=str(data["created"]) if data.get("created") else None,
        corpora=corpora, mean=mean,
        recipe=dict(recipe) if isinstance(recipe, Mapping) else {},
        path=path,
        trained_only=[str(name) for name in trained_only],
        speaker_cv=[_speaker_cv(name, entry) for name, entry in _mapping(data.get("speaker_cv") or {},
                                                                         "speaker_cv").items()],
        baseline=_baseline(data.get("baseline")),
    )


def _baseline(value: Any) -> LocoReport | None:
    if value is None:
        return None
    try:
        return parse_loco_report(value)
    except LocoReportError as error:
        raise LocoReportError(f"baseline: {error}") from None


def _subset(value: Any, where: str) -> SubsetScores:
    value = _mapping(value, where)
    adapted = value.get("adapted")
    sentences = value.get("sentences") or []
    if not isinstance(sentences, list):
        raise LocoReportError(f"{where}.sentences must be a list, got {type(sentences).__name__}")
    return SubsetScores(clips=_count(value.get("clips"), f"{where}.clips"),
                        strict=_scores(value.get("strict"), f"{where}.strict"),
                        adapted=None if adapted is None else _scores(adapted, f"{where}.adapted"),
                        sentences=tuple(map(str, sentences)))


def _speaker_cv(name: str, entry: Any) -> SpeakerCV:
    where = f"speaker_cv.{name}"
    entry = _mapping(entry, where)
    common = entry.get("common_sentences")
    return SpeakerCV(name=str(name), folds=_count(entry.get("folds"), f"{where}.folds"),
                     speakers=_count(entry.get("speakers"), f"{where}.speakers"),
                     all=_subset(entry.get("all"), f"{where}.all"),
                     common_sentences=None if common is None else _subset(common, f"{where}.common_sentences"))


def load_loco_report(directory: Path | str | None = None) -> LocoReport | None:
    """The report in ``directory`` (default: the artifacts folder), or None when there is none.

    Raises
    ------
    LocoReportError
        The file is there but unreadable or malformed (the page says so rather than hiding it).
    """
    path = artifacts.served_model_dir(directory) / LOCO_FILE  # the served model's own report
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise LocoReportError(f"{path.name} cannot be read: {error}") from error
    return parse_loco_report(data, path)


# ---------------------------------------------------------------- words and tables


def in_ten(fraction: float | None) -> str:
    """Times in 10, to the nearest half: 0.62 -> "6", 0.55 -> "5½"; "?" when unknown.

    Halves, because the gain from adapting is often about half a time in 10 and whole numbers
    would hide it.
    """
    if fraction is None:
        return "?"
    halves = round(fraction * 20)
    whole, half = divmod(halves, 2)
    return f"{whole}{'½' if half else ''}" if whole or not half else "½"


def headline(report: LocoReport) -> str:
    """The one sentence a non-expert reads first: the mean over held-out corpora of the share of each
    emotion's clips named right (UAR), as is and after adapting."""
    strict = report.mean_of("strict_uar")
    text = (f"Tested on recordings unlike any it learned from (new speakers, microphones and rooms, and for most "
            f"corpora a new language), it names the right emotion for about **{in_ten(strict)} in 10** clips of "
            f"each emotion ({_percent_text(strict)}; guessing would get about 2 in 10)")
    if report.has_adapted:
        adapted = report.mean_of("adapted_uar")
        text += (f"; after adapting to the setup with some of its speech (no labels needed), about "
                 f"**{in_ten(adapted)} in 10** ({_percent_text(adapted)})")
    corpora = _count_words(len(report.corpora))
    return text + f". This is the average over the {corpora} corpora below, each tested after training on all the others."


def new_people_text(cv: SpeakerCV) -> str:
    """The speaker cross-validation of ASED (or another corpus) in plain words, with the text shortcut."""
    adapted = cv.all.adapted
    text = (f"{cv.label}'s {cv.speakers} {cv.language} speakers were split into {cv.folds} groups; each group "
            f"was tested by a model trained without those people (but with the other groups and every other "
            f"corpus). It named the right emotion for about **{in_ten(cv.all.strict.uar)} in 10** clips of each "
            f"emotion ({_percent_text(cv.all.strict.uar)})")
    if adapted is not None:
        text += (f", and about **{in_ten(adapted.uar)} in 10** ({_percent_text(adapted.uar)}) after adapting "
                 "to each person's own speech")
    text += "."
    common = cv.common_sentences
    if common is not None:
        text += (f"\n\n**Careful with that figure.** Most {cv.label} sentences were always spoken with the same "
                 "emotion, so a model that recognises the words could score well for the wrong reason. On the "
                 f"{_count_words(len(common.sentences))} sentences everyone said in every emotion "
                 f"({common.clips:,} clips), where "
                 f"the words give nothing away, it named the right emotion for about "
                 f"**{in_ten(common.strict.uar)} in 10** ({_percent_text(common.strict.uar)})")
        if common.adapted is not None:
            text += f", and **{in_ten(common.adapted.uar)} in 10** ({_percent_text(common.adapted.uar)}) adapted"
        text += ": that is the fairer figure for a new person talking about anything."
    return text


def _count_words(number: int) -> str:
    words = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}
    return words.get(number, str(number)) if number else "few"


def _percent_text(value: float | None) -> str:
    return "?" if value is None else f"{100 * value:.0f} %"


def _percent(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 1)


AS_IS = "Right, as is"
ADAPTED = "Right, after adapting"
ALL_CLIPS = "Of all clips, as is"  # accuracy: every clip counts once, whatever its emotion


def corpus_table(report: LocoReport) -> pd.DataFrame:
    """One row per held-out corpus: who, how many, and the share of each emotion's clips named right
    (percent; the mean over its emotions), as is and after adapting."""
    rows = []
    for corpus in report.corpora:
        adapted = corpus.adapted
        rows.append({"Corpus": corpus.label, "Language": corpus.language, "Speakers": corpus.speakers,
                     "Clips": corpus.clips, AS_IS: _percent(corpus.strict.uar),
                     ADAPTED: _percent(adapted.uar if adapted else None)})
    return pd.DataFrame(rows)


def details_table(report: LocoReport) -> pd.DataFrame:
    """The same with the experts' names and accuracy too: held-out corpora and speaker cross-validations;
    with a baseline in the report, its strict and adapted UAR on the same tests beside them."""
    table = _details_rows(report)
    if report.baseline is not None:
        baseline = _details_rows(report.baseline).set_index("Test")
        for column, name in (("Strict UAR", "Baseline strict UAR"), ("Adapted UAR", "Baseline adapted UAR")):
            table[name] = table["Test"].map(baseline[column])
    return table


def _details_rows(report: LocoReport) -> pd.DataFrame:
    rows = []
    for corpus in report.corpora:
        rows.append({"Test": f"{corpus.label} held out", "Strict UAR": _percent(corpus.strict.uar),
                     "Adapted UAR": _percent(corpus.adapted.uar if corpus.adapted else None),
                     "Strict accuracy": _percent(corpus.strict.accuracy),
                     "Adapted accuracy": _percent(corpus.adapted.accuracy if corpus.adapted else None)})
    rows.append({"Test": "Mean over held-out corpora", "Strict UAR": _percent(report.mean_of("strict_uar")),
                 "Adapted UAR": _percent(report.mean_of("adapted_uar")),
                 "Strict accuracy": _percent(report.mean_of("strict_accuracy")),
                 "Adapted accuracy": _percent(report.mean_of("adapted_accuracy"))})
    for cv in report.speaker_cv:
        for label, subset in (("all sentences", cv.all), ("common sentences", cv.common_sentences)):
            if subset is None:
                continue
            rows.append({"Test": f"{cv.label} {cv.folds}-fold speaker CV, {label}",
                         "Strict UAR": _percent(subset.strict.uar),
                         "Adapted UAR": _percent(subset.adapted.uar if subset.adapted else None),
                         "Strict accuracy": _percent(subset.strict.accuracy),
                         "Adapted accuracy": _percent(subset.adapted.accuracy if subset.adapted else None)})
    return pd.DataFrame(rows)


def speaker_cv_table(cv: SpeakerCV) -> pd.DataFrame:
    """Right how often (percent) on a corpus's new people: all sentences, and the common ones alone."""
    rows = []
    for label, subset in (("All sentences", cv.all), ("Sentences said in every emotion", cv.common_sentences)):
        if subset is not None:
            rows.append({"Which clips": label, "Clips": subset.clips, AS_IS: _percent(subset.strict.uar),
                         ADAPTED: _percent(subset.adapted.uar if subset.adapted else None),
                         ALL_CLIPS: _percent(subset.strict.accuracy)})
    return pd.DataFrame(rows)


def recall_table(report: LocoReport, mode: str = "strict") -> pd.DataFrame:
    """Recall per emotion (rows) and held-out corpus (columns), as text percentages; ``MISSING``
    where the corpus has no clip of the emotion."""
    if mode not in ("strict", "adapted"):
        raise ValueError(f"mode must be 'strict' or 'adapted', got {mode!r}")
    emotions = list(EMOTIONS) + sorted({e for c in report.corpora for e in c.strict.recall} - set(EMOTIONS))
    table: dict[str, list[str]] = {}
    for corpus in report.corpora:
        scores = getattr(corpus, mode)
        column = []
        for emotion in emotions:
            value = scores.recall.get(emotion) if scores is not None else None
            column.append(MISSING if value is None else f"{100 * value:.0f} %")
        table[corpus.label] = column
    return pd.DataFrame(table, index=pd.Index(emotions, name="Emotion")).reset_index()
