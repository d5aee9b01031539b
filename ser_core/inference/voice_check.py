"""A second opinion on what the speech detector calls speech: is it a voice, or a tone, a sweep or
a tune?

The speech detector (:mod:`ser_core.inference.speech`) scores 32 ms windows. A steady tone near a
voice's pitch, a siren, a plucked melody or reversed speech can hold its probability above the
threshold for 0.3 s or more, and the model then gave them an emotion ("Sad, 93 %" for a 220 Hz
tone). This module looks at the same regions with three measurements a voice cannot fake for long:

``tonal_share``
    The median share of a frame's energy (60-5,000 Hz) in its four strongest frequency bins. A
    pure tone, a glide or a siren puts all of it in one line (> 0.998); a voice spreads it over
    many harmonics shaped by the mouth, plus noise in its consonants (real speech: at most 0.997).
``held_pitch_share``
    Of the pairs of consecutive voiced frames, the share whose pitch differs by less than 0.2 %.
    An instrument holds a note at one pitch; a voice's pitch is always moving (real speech: at
    most 0.58 in 9,367 clips; the tests' synthetic voice, whose pitch glides smoothly: 0.88).
``onset_skew``
    The skewness of the level's change from frame to frame over the speech. Syllables start fast
    and fade slowly, so speech has a positive skew (real speech: above -0.43 for 99 % of
    9,367 clips); a plucked or struck note starts very abruptly (above 3, with its pitch held between
    the onsets). Speech played backwards fades in and stops abruptly (negative skew), but no rule
    uses that yet (see below).

The thresholds and what they cost are measured by ``benchmarks/non_speech.py`` on the seven real
corpora and on generated non-speech (``docs/speech_detection.md``, "A second opinion"). Reversed
speech is not caught: it has the spectrum and pitch of speech, and only its time course differs.

Features are computed frame by frame as blocks arrive (:class:`VoiceCheck`), so a recording of any
length is judged without holding its audio: four float32 numbers per 10 ms frame are kept
(~6 MB per hour of audio).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ser_core.inference.speech import MIN_SPEECH_SECONDS, NotEnoughSpeech, SpeechRegions

__all__ = ["NotSpeech", "VoiceCheck", "VoiceEvidence", "refuse_if_not_voice", "voice_evidence"]

SAMPLE_RATE = 16_000
FRAME = 512  # 32 ms
HOP = 160  # 10 ms
BAND_HZ = (60.0, 5_000.0)
PITCH_HZ = (70.0, 500.0)
VOICED_CORRELATION = 0.7  # normalised autocorrelation peak above which a frame has a pitch
QUIET_BELOW = 1e-4  # frames 40 dB under the loudest speech frame are left out
MIN_FRAMES = 20  # less than 0.2 s of loud speech frames: no second opinion (the detector's word stands)

# The rules (measured in benchmarks/non_speech.py; see the module docstring).
# Tones, glides and sirens measure 0.999-1.000; two sad TurEV words of one speaker measured 0.996-0.997.
MAX_TONAL_SHARE = 0.998
# A pitch held on more than 95 % of the voiced frame pairs, or on more than 70 % with a spectrum of a
# few lines (a flute-like melody): real speech reached 0.58, the tests' synthetic voice 0.88 (with
# a tonal share of at most 0.93, never both above 0.7 and 0.9).
MAX_HELD_PITCH_SHARE = 0.95
HELD_PITCH_SHARE_OF_FEW_LINES = 0.7
FEW_LINES_TONAL_SHARE = 0.9
MIN_HELD_PITCH_PAIRS = 20
# No rule for a negative skew (speech played backwards): at -1.5 it would refuse 29 % of reversed
# clips and 0.1 % of real ones, but the tests' synthetic voice, whose syllables rise and fall
# symmetrically, reaches -2 by chance (docs/speech_detection.md, "A second opinion").
# Plucked notes: very abrupt onsets *and* a pitch held between them. Each alone is found in real
# speech (onset skew up to 5.2, held pitch up to 0.58); abrupt onsets with a held pitch of 0.43-0.52
# are one TESS speaker's neutral words, so the held pitch must be above 0.6 (plucked melodies:
# 0.73-0.98). Abrupt onsets with a tonal share above 0.9 were tried too: 9 real words refused.
MAX_ONSET_SKEW = 3.0
PLUCKED_HELD_PITCH_SHARE = 0.6


@dataclass(frozen=True)
class VoiceEvidence:
    """What the three measurements found over the speech regions (see the module docstring)."""

    tonal_share: float
    held_pitch_share: float
    onset_skew: float
    frames: int
    voiced_pairs: int

    @property
    def reason(self) -> str | None:
        """Why this is not a voice, in plain words; None when it may be one."""
        if self.frames < MIN_FRAMES:
            return None
        if self.tonal_share > MAX_TONAL_SHARE:
            return "it sounds like a steady tone or a sweep, not a voice"
        held = self.voiced_pairs >= MIN_HELD_PITCH_PAIRS and (
            self.held_pitch_share > MAX_HELD_PITCH_SHARE
            or (self.held_pitch_share > HELD_PITCH_SHARE_OF_FEW_LINES and self.tonal_share > FEW_LINES_TONAL_SHARE))
        if held:
            return "it sounds like notes held at one pitch (music), not a voice"
        if self.onset_skew > MAX_ONSET_SKEW and self.held_pitch_share > PLUCKED_HELD_PITCH_SHARE:
            return "it sounds like plucked or struck notes (music), not a voice"
        return None

    @property
    def is_voice(self) -> bool:
        return self.reason is None


class NotSpeech(NotEnoughSpeech):
    """The speech detector heard speech, but the second opinion says it is not a voice.

    A :class:`~ser_core.inference.speech.NotEnoughSpeech` of kind ``"no_speech"`` (so every
    handler of "no speech" treats it the same), with :attr:`evidence` and a message saying why.
    """

    def __init__(self, evidence: VoiceEvidence, total_seconds: float, name: str | None = None) -> None:
        super().__init__("no_speech", 0.0, MIN_SPEECH_SECONDS, total_seconds, name)
        self.evidence = evidence
        length = f"{total_seconds:.{1 if total_seconds >= 1 else 2}f}"
        self.args = (f"No speech found in {name or 'the audio'} ({length} s): {evidence.reason}. "
                     f"Record someone speaking and try again.",)


def _frame_features(frames: np.ndarray) -> np.ndarray:
    """``[n, 4]`` float32 per frame: band energy, tonal share, pitch (Hz), autocorrelation peak."""
    frames = frames.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(frames * np.hanning(FRAME), axis=1)) ** 2
    frequencies = np.fft.rfftfreq(FRAME, 1.0 / SAMPLE_RATE)
    band = spectrum[:, (frequencies >= BAND_HZ[0]) & (frequencies <= BAND_HZ[1])] + 1e-20
    energy = band.sum(axis=1)
    tonal = np.sort(band, axis=1)[:, -4:].sum(axis=1) / energy
    centred = frames - frames.mean(axis=1, keepdims=True)
    power = np.abs(np.fft.rfft(centred, 2 * FRAME, axis=1)) ** 2
    autocorrelation = np.fft.irfft(power, axis=1)[:, :FRAME]
    low, high = int(SAMPLE_RATE / PITCH_HZ[1]), int(SAMPLE_RATE / PITCH_HZ[0])
    lags = np.arange(low, high)
    normalised = autocorrelation[:, low:high] / (autocorrelation[:, :1] + 1e-20) * (FRAME / (FRAME - lags))
    best = np.clip(np.argmax(normalised, axis=1), 1, len(lags) - 2)
    rows = np.arange(len(best))
    left, middle, right = normalised[rows, best - 1], normalised[rows, best], normalised[rows, best + 1]
    offset = np.clip(0.5 * (left - right) / (left - 2 * middle + right - 1e-20), -1.0, 1.0)
    pitch = SAMPLE_RATE / (low + best + offset)
    return np.stack([energy, tonal, pitch, middle], axis=1).astype(np.float32)


class VoiceCheck:
    """Frame features of a stream fed block by block; :meth:`evidence` judges given regions.

    Feed the same 16 kHz samples the speech detector heard (any block sizes); frames are 32 ms
    every 10 ms, frame ``i`` centred on sample ``i * 160 + 256``.
    """

    def __init__(self) -> None:
        self._tail = np.zeros(0, np.float32)
        self._features: list[np.ndarray] = []
        self.total = 0

    def feed(self, block: np.ndarray) -> None:
        block = np.asarray(block, np.float32).reshape(-1)
        self.total += block.size
        samples = np.concatenate([self._tail, block])
        n = 0 if samples.size < FRAME else 1 + (samples.size - FRAME) // HOP
        if n:
            index = np.arange(FRAME)[None, :] + HOP * np.arange(n)[:, None]
            self._features.append(_frame_features(samples[index]))
        self._tail = samples[n * HOP:]

    def evidence(self, regions: SpeechRegions | tuple[tuple[int, int], ...]) -> VoiceEvidence:
        """The measurements over ``regions`` (``SpeechRegions`` or ``(start, end)`` sample pairs)."""
        spans = regions.regions if isinstance(regions, SpeechRegions) else regions
        features = np.concatenate(self._features) if self._features else np.zeros((0, 4), np.float32)
        centres = np.arange(len(features)) * HOP + FRAME // 2
        inside = np.zeros(len(features), bool)
        for start, end in spans:
            inside |= (centres >= start) & (centres < end)
        energy, tonal, pitch, peak = (features[:, k].astype(np.float64) for k in range(4))
        if not inside.any():
            return VoiceEvidence(0.0, 0.0, 0.0, 0, 0)
        loud = inside & (energy > energy[inside].max() * QUIET_BELOW)
        voiced = loud & (peak > VOICED_CORRELATION)
        pairs = voiced[1:] & voiced[:-1]
        steps = np.abs(np.diff(np.log(pitch)))[pairs]
        steps = steps[steps < 0.05]  # within a note or a syllable, not across an octave error
        held = float(np.mean(steps < 0.002)) if steps.size else 0.0
        change = np.diff(10.0 * np.log10(energy[loud] + 1e-20))
        spread = float(np.mean(change ** 2)) if change.size else 0.0
        skew = float(np.mean(change ** 3) / spread ** 1.5) if spread > 1e-12 else 0.0
        return VoiceEvidence(float(np.median(tonal[loud])), held, skew, int(loud.sum()), int(steps.size))


def voice_evidence(wave: np.ndarray, regions: SpeechRegions | tuple[tuple[int, int], ...]) -> VoiceEvidence:
    """:class:`VoiceEvidence` of a whole 16 kHz mono ``wave`` over the detector's ``regions``."""
    check = VoiceCheck()
    check.feed(wave)
    return check.evidence(regions)


def refuse_if_not_voice(evidence: VoiceEvidence, total_seconds: float, name: str | None = None) -> None:
    """Raise :class:`NotSpeech` when ``evidence`` says the detector's speech is not a voice."""
    if not evidence.is_voice:
        raise NotSpeech(evidence, total_seconds, name)

