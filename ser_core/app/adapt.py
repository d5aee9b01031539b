""""Adapt to my voice": the user's adaptation statistics, kept in this browser session only.

The Whisper model standardises its input with statistics; out of the box they are the training
corpora's, and a user's own (from a few clips of their ordinary speech, no labels) bring it
nearer the "adapted" figures of the Test results page. The statistics are an
:class:`ser_core.inference.adaptation.Adaptation`, stored in ``st.session_state`` as its JSON-safe
``to_dict()``: nothing is written to disk, and they are gone with the session.

The Analyse page, the Live page and the Adapt page share them through the functions here:
:func:`supported` (does the loaded model adapt at all), :func:`current` / :func:`store` /
:func:`clear`, the on/off switch (:func:`is_on`) and :func:`in_use` (what to pass to
``predict_wave``), and :func:`adapted_note` (the words under a result).
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any, MutableMapping

import streamlit as st

from ser_core.inference.audio import AudioError

__all__ = [
    "ADAPTATION_KEY", "CLIPS_KEY", "FED_AT_KEY", "MOODS_KEY", "ON_KEY", "REFUSED_KEY", "AddResult", "LiveAnswer",
    "adapted_note", "add_clip", "classify_live", "clear", "current", "in_use", "is_on",
    "live_window_due", "moods_text", "needs", "progress", "signature", "status_text", "store", "supported",
    "switch",
]

LOGGER = logging.getLogger(__name__)

ADAPTATION_KEY = "adaptation"  # Adaptation.to_dict()
CLIPS_KEY = "adaptation_clips_seen"  # digests of the clips already added (a rerun must not add twice)
SOURCES_KEY = "adaptation_sources_seen"  # upload/recording ids offered so far: a rerun, or a second copy?
REFUSED_KEY = "adaptation_clips_refused"  # digest -> the NotEnoughSpeech of a clip already measured
FED_AT_KEY = "adaptation_live_fed_at"  # stream seconds at which the last live window was added
ON_KEY = "adaptation_on"  # the user's switch; on by default once the statistics are ready
MOODS_KEY = "adaptation_moods"  # how each added clip sounded to the model before adapting (its top emotion)


def needs() -> tuple[int, float]:
    """``(clips, seconds of speech)``: the adaptation is used after that many clips, or two clips or
    more holding that much speech (the inference package's ``MIN_CLIPS``, ``MIN_SPEECH_SECONDS``)."""
    try:
        from ser_core.inference import adaptation
    except ImportError:
        return 5, 15.0
    return int(getattr(adaptation, "MIN_CLIPS", 5)), float(getattr(adaptation, "MIN_SPEECH_SECONDS", 15.0))


def progress(adaptation: Any) -> float:
    """How far from 0 to 1 the adaptation is towards being used (1 once ``ready``)."""
    if adaptation.ready:
        return 1.0
    clips, seconds = needs()
    by_clips = adaptation.n_clips / clips
    by_speech = min(adaptation.n_clips / 2, 1.0) * adaptation.speech_seconds / seconds
    return float(min(max(by_clips, by_speech), 0.99))


def supported(predictor: Any) -> bool:
    """Whether ``predictor`` can adapt (the Whisper model); False for the CNN, or an inference
    package without :mod:`ser_core.inference.adaptation`."""
    if not getattr(predictor, "supports_adaptation", False):
        return False
    try:
        import ser_core.inference.adaptation  # noqa: F401
    except ImportError:
        return False
    return True


def _state(session: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
    return st.session_state if session is None else session


def current(session: MutableMapping[str, Any] | None = None):
    """The session's :class:`Adaptation` (empty when there is none, or it cannot be read back)."""
    from ser_core.inference.adaptation import Adaptation

    state = _state(session)
    stored = state.get(ADAPTATION_KEY)
    if not stored:
        return Adaptation.empty()
    try:
        return Adaptation.from_dict(stored)
    except (ValueError, TypeError, KeyError):
        LOGGER.warning("unreadable adaptation state in the session; starting again")
        clear(state)
        return Adaptation.empty()


def store(adaptation: Any, session: MutableMapping[str, Any] | None = None) -> None:
    """Keep ``adaptation`` in the session (its JSON-safe dict, never on disk)."""
    _state(session)[ADAPTATION_KEY] = adaptation.to_dict()


def clear(session: MutableMapping[str, Any] | None = None) -> None:
    """Forget every adaptation clip of this session."""
    state = _state(session)
    for key in (ADAPTATION_KEY, CLIPS_KEY, SOURCES_KEY, REFUSED_KEY, FED_AT_KEY, MOODS_KEY):
        state.pop(key, None)


def is_on(session: MutableMapping[str, Any] | None = None) -> bool:
    """The user's switch (on unless they turned it off)."""
    return bool(_state(session).get(ON_KEY, True))


def in_use(predictor: Any, session: MutableMapping[str, Any] | None = None):
    """The adaptation to pass to ``predict_wave``: None when the model cannot adapt, the switch is
    off, or there is not yet enough speech (``ready``)."""
    if not supported(predictor) or not is_on(session):
        return None
    adaptation = current(session)
    return adaptation if adaptation.ready and adaptation.n_clips else None


def switch(label: str, key: str, help: str | None = None, disabled: bool = False) -> bool:
    """The on/off toggle, on any page; every page's toggle shows and sets the same setting.

    The setting lives under :data:`ON_KEY`, not under the widget's key: Streamlit forgets a
    widget's state on pages where the widget is not drawn.
    """
    def _sync() -> None:
        st.session_state[ON_KEY] = bool(st.session_state[key])

    # Drawn from the setting on every run; off while there is nothing to use (``disabled``), so a greyed
    # switch never looks on.
    st.session_state[key] = is_on() and not disabled
    return bool(st.toggle(label, key=key, on_change=_sync, help=help, disabled=disabled))


def signature(adaptation: Any | None) -> tuple | None:
    """A small value that changes whenever the adaptation does (for caching results)."""
    if adaptation is None:
        return None
    return adaptation.n_clips, round(float(adaptation.speech_seconds), 3), adaptation.model_key


@dataclass(frozen=True)
class AddResult:
    """What became of one clip offered for adaptation."""

    added: bool  # False: already added earlier in this session
    adaptation: Any
    speech_seconds: float = 0.0
    duplicate: bool = False  # not added: a new upload or recording with the same audio as an earlier clip
    heard: list[str] | None = None  # the clip's answer before adapting (a set of emotions, most likely first)


def _add_sample(sample: Any, state: MutableMapping[str, Any]) -> Any:
    """Store and return the session's adaptation with ``sample`` added; one made for another
    (earlier) model is cleared first, so the clip starts a new adaptation."""
    adaptation = current(state)
    try:
        adaptation = adaptation.add(sample)
    except ValueError:  # measured for another (earlier) model: start again
        clear(state)
        from ser_core.inference.adaptation import Adaptation

        adaptation = Adaptation.empty().add(sample)
    store(adaptation, state)
    return adaptation


def add_clip(predictor: Any, wave: Any, sample_rate: int, clip_id: bytes | str | None = None,
             session: MutableMapping[str, Any] | None = None, source_id: str | None = None) -> AddResult:
    """Measure one clip of the user's speech and add it to the session's adaptation.

    Parameters
    ----------
    predictor : Predictor
        One that :func:`supported` accepts.
    wave : np.ndarray
        The clip, any emotion, any words.
    sample_rate : int
        Its rate, Hz.
    clip_id : bytes or str, optional
        Identifies the clip (its file bytes); a clip already added in this session is not added
        again (Streamlit reruns the page on every widget change).
    source_id : str, optional
        Identifies the upload or recording it came from (Streamlit's ``file_id``): the same audio from
        a source not seen before is a second copy, reported as ``duplicate`` rather than a rerun.

    Raises
    ------
    NotEnoughSpeech
        Silence or too little speech (the adaptation is unchanged).
    ValueError
        The stored statistics belong to another model (retrained since): cleared first, so the
        next clip starts a new adaptation.
    """
    state = _state(session)
    digest = None
    if clip_id is not None:
        raw = clip_id.encode() if isinstance(clip_id, str) else clip_id
        digest = hashlib.sha1(raw).hexdigest()
        sources = state.get(SOURCES_KEY, [])
        new_source = source_id is not None and source_id not in sources
        if new_source:
            state[SOURCES_KEY] = [*sources, source_id]
        if digest in state.get(CLIPS_KEY, ()):
            return AddResult(False, current(state), duplicate=new_source)
        refused = state.get(REFUSED_KEY, {}).get(digest)
        if refused is not None:
            raise refused
    try:
        sample = predictor.adaptation_sample(wave, sample_rate)
    except AudioError as error:  # remembered: a rerun shows it again without measuring again
        if digest is not None:
            state[REFUSED_KEY] = {**state.get(REFUSED_KEY, {}), digest: error}
        raise
    adaptation = _add_sample(sample, state)
    if digest is not None:
        state[CLIPS_KEY] = [*state.get(CLIPS_KEY, ()), digest]
    answer = None
    if hasattr(predictor, "probabilities_of"):  # the clip's answer without any adaptation
        heard = predictor.probabilities_of(sample, None)
        state[MOODS_KEY] = [*state.get(MOODS_KEY, ()), max(heard, key=heard.get)]  # clear() empties it too
        if hasattr(predictor, "emotion_set"):
            answer = predictor.emotion_set(heard)
    return AddResult(True, adaptation, float(sample.speech_seconds), heard=answer)


def moods_text(session: MutableMapping[str, Any] | None = None) -> str | None:
    """How the clips given so far sound to the model before adapting, and a nudge when they all sound alike.

    The mood one adapts with becomes "normal" (docs/experiments.md, W193-W194): clips of one mood only
    leave that mood seldom named afterwards.
    """
    moods = list(_state(session).get(MOODS_KEY, ()))
    if not moods:
        return None
    counts = Counter(moods).most_common()
    heard = ", ".join(f"{mood} ×{count}" for mood, count in counts)
    text = f"To the model, before adapting, your clips sound: {heard}."
    if len(moods) >= 3 and len(counts) == 1:
        mood = counts[0][0]
        text += (f" They all sound {mood}: add a clip or two in another mood (read a line with feeling), or "
                 f"{mood} will become your \"normal\" and seldom be named.")
    return text


def status_text(adaptation: Any, on: bool = True) -> str:
    """Where the adaptation stands, in one sentence."""
    if not adaptation.n_clips:
        return ("Not adapted to your voice yet: results compare your voice with the recordings the model "
                "learnt from.")
    amount = (f"{adaptation.speech_seconds:.0f} s of speech from {adaptation.n_clips} "
              f"recording{'s' if adaptation.n_clips != 1 else ''}")
    if not adaptation.ready:
        clips, seconds = needs()
        return (f"Collecting: {amount} so far. Adaptation starts at {clips} clips, or {seconds:g} s of "
                "speech over two clips or more; until then results are not adapted.")
    if not on:
        return (f"Adaptation is switched off ({amount} kept): results compare your voice with the recordings "
                "the model learnt from.")
    return f"Adapted to your voice: {amount}."


def adapted_note(prediction: Any, adaptation: Any | None) -> str | None:
    """"Adapted to your voice (N clips, S s)" under a result that used the adaptation, else None."""
    if not getattr(prediction, "adapted", False):
        return None
    clips = getattr(prediction, "adaptation_clips", 0) or (adaptation.n_clips if adaptation else 0)
    seconds = f", {adaptation.speech_seconds:.0f} s" if adaptation is not None else ""
    return f"Adapted to your voice ({clips} recording{'s' if clips != 1 else ''}{seconds} of speech)."


# ---------------------------------------------------------------- the Live page


@dataclass(frozen=True)
class LiveAnswer:
    """The Live page's answer for the last seconds: what :func:`ser_core.app.views.headline` and
    the probability bars read, and whether a window went into the adaptation."""

    probabilities: dict[str, float]
    top_emotion: str
    confidence: float
    uncertain: bool
    threshold: float
    adapted: bool
    adaptation_clips: int
    collected: bool
    emotions: list[str] | None = None  # the answer's set, as a Prediction's
    coverage: float | None = None


def live_window_due(stream_seconds: float, window_seconds: float,
                    session: MutableMapping[str, Any] | None = None) -> bool:
    """Whether the last ``window_seconds`` of the stream hold no audio added before: windows go
    into the adaptation back to back, never overlapping (each second of speech counts once)."""
    fed_at = _state(session).get(FED_AT_KEY)
    return fed_at is None or stream_seconds - fed_at >= window_seconds or stream_seconds < fed_at


def classify_live(predictor: Any, wave: Any, sample_rate: int, threshold: float, *, collect: bool,
                  stream_seconds: float, window_seconds: float,
                  session: MutableMapping[str, Any] | None = None, coverage: float | None = None) -> Any:
    """Classify the Live page's last window, and with ``collect`` add it to the adaptation when due.

    One encoder pass either way: with ``collect`` the window's adaptation sample is measured and its
    probabilities come from that same sample (``Predictor.probabilities_of``), so learning the voice
    while streaming costs no more than classifying. Runs on the page's thread, never on the WebRTC
    thread. Raises what ``predict_wave`` raises (``NotEnoughSpeech`` for a quiet moment).

    Returns
    -------
    Prediction or LiveAnswer
        Both have what the page shows (verdict, probabilities, ``adapted``).
    """
    state = _state(session)
    can_collect = collect and supported(predictor) and hasattr(predictor, "probabilities_of")
    if not can_collect:
        adaptation = in_use(predictor, state)
        extra = {} if adaptation is None else {"adaptation": adaptation}
        if coverage is not None:
            extra["coverage"] = coverage
        return predictor.predict_wave(wave, sample_rate, threshold, **extra)
    sample = predictor.adaptation_sample(wave, sample_rate)
    collected = False
    if live_window_due(stream_seconds, window_seconds, state):
        _add_sample(sample, state)
        state[FED_AT_KEY] = stream_seconds
        collected = True
    adaptation = in_use(predictor, state)
    probabilities = predictor.probabilities_of(sample, adaptation)
    top = max(probabilities, key=probabilities.get)
    emotions = None
    if hasattr(predictor, "emotion_set"):  # the same sets and calibration as a whole clip's answer
        emotions = predictor.emotion_set(probabilities, adapted=adaptation is not None,
                                         coverage=coverage if coverage is not None else 0.9)
    return LiveAnswer(probabilities=probabilities, top_emotion=top, confidence=float(probabilities[top]),
                      uncertain=bool(probabilities[top] < threshold), threshold=float(threshold),
                      adapted=adaptation is not None,
                      adaptation_clips=adaptation.n_clips if adaptation else 0,
                      collected=collected, emotions=emotions, coverage=coverage)
