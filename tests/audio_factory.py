"""Synthetic audio for the tests: tones, noise, speech-like signals, and corpus-shaped folders.

Nothing here is committed audio: every file is written into a pytest tmp dir at test time.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile

# RAVDESS emotion codes (01 neutral, 02 calm, 03 happy, 04 sad, 05 angry, 06 fearful, 07 disgust,
# 08 surprised) and the label each of the six shared ones maps to.
RAVDESS_CODES = {"neutral": "01", "calm": "02", "happy": "03", "sad": "04", "angry": "05",
                 "fear": "06", "disgust": "07", "surprised": "08"}
SIX_EMOTIONS = ("angry", "disgust", "fear", "happy", "neutral", "sad")
CREMA_CODES = {"angry": "ANG", "disgust": "DIS", "fear": "FEA", "happy": "HAP", "neutral": "NEU", "sad": "SAD"}

# Per-emotion character of the synthetic "speech": base pitch (Hz), pitch swing, syllable rate (Hz),
# spectral tilt (larger = darker) and breath-noise share. Distinct enough for a tiny CNN to learn,
# and voice-like enough that the speech detector (Silero VAD) hears speech in every style (fear is
# slower and lower, disgust less breathy, sad brighter than before the detector came in).
EMOTION_STYLE = {
    "angry":   dict(f0=210.0, swing=0.25, rate=6.0, tilt=0.6, breath=0.05),
    "disgust": dict(f0=130.0, swing=0.08, rate=3.0, tilt=1.4, breath=0.12),
    "fear":    dict(f0=250.0, swing=0.25, rate=6.0, tilt=1.0, breath=0.10),
    "happy":   dict(f0=250.0, swing=0.30, rate=5.0, tilt=0.8, breath=0.02),
    "neutral": dict(f0=150.0, swing=0.05, rate=4.0, tilt=1.2, breath=0.02),
    "sad":     dict(f0=125.0, swing=0.10, rate=2.5, tilt=1.7, breath=0.06),
}
# (F1, F2, F3) in Hz of six vowels (a, i, u, e, o, ae): the formants that make the harmonics a voice.
VOWEL_FORMANTS = ((730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480),
                  (570, 840, 2410), (660, 1720, 2410))


def tone(frequency: float, seconds: float, sample_rate: int = 16_000, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def noise(seconds: float, sample_rate: int = 16_000, amplitude: float = 0.1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (amplitude * rng.standard_normal(int(round(seconds * sample_rate)))).astype(np.float32)


def _resonator(wave: np.ndarray, frequency: float, bandwidth: float, sample_rate: int) -> np.ndarray:
    from scipy.signal import lfilter

    radius = np.exp(-np.pi * bandwidth / sample_rate)
    angle = 2 * np.pi * frequency / sample_rate
    return lfilter([1 - radius], [1, -2 * radius * np.cos(angle), radius**2], wave)


def speech_like(seconds: float = 2.0, sample_rate: int = 16_000, f0: float = 150.0, swing: float = 0.1,
                rate: float = 4.0, tilt: float = 1.0, breath: float = 0.05, seed: int = 0,
                amplitude: float = 0.5, n_harmonics: int = 30) -> np.ndarray:
    """A voice-like signal: harmonics on a moving pitch contour, shaped by vowel formants that
    change about six times a second, in syllables of uneven length and loudness.

    Plain harmonics under a regular envelope (no formants) are not speech to the speech detector,
    and a too regular signal stops being speech to it after a few seconds; this is speech (every
    style of :data:`EMOTION_STYLE` gives at least ~0.4 s of detected speech in 1.2 s, and the
    10 s mix of four styles in ``test_training`` is speech throughout).
    """
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    # Syllables of 0.6-1.4 times 1/rate, each with its own pitch accent and loudness.
    lengths: list[float] = []
    while sum(lengths) < seconds + 1.0:
        lengths.append(rng.uniform(0.6, 1.4) / rate)
    edges = np.cumsum([0.0, *lengths]) - rng.uniform(0, lengths[0])
    syllable = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, len(lengths) - 1)
    within = (t - edges[syllable]) / np.asarray(lengths)[syllable]  # 0..1 through each syllable
    accent = rng.uniform(-1, 1, len(lengths))
    # Pitch contour: slow drift with a per-utterance random phase, plus each syllable's accent.
    contour = f0 * (1.0 + swing * (0.5 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 2 * np.pi))
                                   + 0.25 * accent[syllable] * np.sin(np.pi * within)))
    phase = 2 * np.pi * np.cumsum(contour) / sample_rate
    source = np.zeros(n)
    for k in range(1, n_harmonics + 1):
        keep = (k * contour) < sample_rate / 2 - 200  # no aliasing
        source += keep * np.sin(k * phase) / k ** (0.6 * tilt)  # the formants add their own tilt
    # Breath (aspiration) goes through the vocal tract too: the same formants shape it.
    source = source / max(np.max(np.abs(source)), 1e-9) + breath * rng.standard_normal(n)
    # Vowels: one of six per ~1/6 s, crossfaded over 30 ms.
    vowel_index = np.floor(max(rate, 6.0) * t + rng.uniform(0, 1)).astype(int)
    vowels = rng.integers(0, len(VOWEL_FORMANTS), vowel_index.max() + 1 if n else 1)
    fade = np.ones(max(1, int(0.03 * sample_rate))) / max(1, int(0.03 * sample_rate))
    wave = np.zeros(n)
    for v, (f1, f2, f3) in enumerate(VOWEL_FORMANTS):
        share = np.convolve((vowels[vowel_index] == v).astype(float), fade, mode="same")
        if share.any():
            filtered = _resonator(_resonator(_resonator(source, f1, 80, sample_rate), f2, 100, sample_rate),
                                  f3, 150, sample_rate)
            wave += share * filtered
    wave /= max(np.max(np.abs(wave)), 1e-9)
    # Loudness: a raised sine per syllable over a low floor (voices rarely stop dead).
    loudness = rng.uniform(0.5, 1.0, len(lengths))
    envelope = 0.15 + 0.85 * loudness[syllable] * np.sin(np.pi * within) ** 1.5
    # Half as much breath again, unshaped: the hiss above the formants that the log-mel tests expect.
    wave = wave * envelope + 0.5 * breath * envelope * rng.standard_normal(n)
    wave *= amplitude / max(np.max(np.abs(wave)), 1e-9)
    return wave.astype(np.float32)


def emotional_speech(emotion: str, seconds: float = 2.0, sample_rate: int = 16_000, seed: int = 0,
                     speaker_shift: float = 1.0) -> np.ndarray:
    style = dict(EMOTION_STYLE[emotion])
    style["f0"] *= speaker_shift
    return speech_like(seconds, sample_rate, seed=seed, **style)


def with_silence(wave: np.ndarray, lead: float, trail: float, sample_rate: int = 16_000) -> np.ndarray:
    return np.concatenate([np.zeros(int(lead * sample_rate), np.float32), wave,
                           np.zeros(int(trail * sample_rate), np.float32)])


# ---------------------------------------------------------------------------------------------- writing

SOUNDFILE_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".ogg": ("OGG", "VORBIS")}
PYAV_FORMATS = {".m4a": ("mp4", "aac"), ".webm": ("webm", "libopus"), ".mp3": ("mp3", "libmp3lame"),
                ".opus": ("ogg", "libopus"), ".oga": ("ogg", "libopus")}  # Ogg Opus, as phones send voice notes


def encode(wave: np.ndarray, sample_rate: int, suffix: str) -> bytes:
    """Encode a mono ``[n]`` or multichannel ``[n, channels]`` float wave as ``suffix`` (".wav", ".m4a", ...)."""
    wave = np.asarray(wave, dtype=np.float32)
    if suffix in SOUNDFILE_FORMATS:
        container, subtype = SOUNDFILE_FORMATS[suffix]
        buffer = io.BytesIO()
        soundfile.write(buffer, wave, sample_rate, format=container, subtype=subtype)
        return buffer.getvalue()
    if suffix in PYAV_FORMATS:
        return _encode_pyav(wave, sample_rate, *PYAV_FORMATS[suffix])
    raise ValueError(f"no encoder for {suffix}")


def _encode_pyav(wave: np.ndarray, sample_rate: int, container_format: str, codec: str) -> bytes:
    from ser_core.data.channel import encode

    return encode(wave, sample_rate, container_format, codec)


def write_audio(path: Path, wave: np.ndarray, sample_rate: int = 16_000) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode(wave, sample_rate, path.suffix.lower()))
    return path


# ------------------------------------------------------------------------------------------ corpus names

def ravdess_name(emotion: str, actor: int, intensity: int = 1, statement: int = 1, repetition: int = 1,
                 modality: str = "03", channel: str = "01", suffix: str = ".wav") -> str:
    code = RAVDESS_CODES.get(emotion, emotion)
    return f"{modality}-{channel}-{code}-{intensity:02d}-{statement:02d}-{repetition:02d}-{actor:02d}{suffix}"


def crema_name(actor: int, emotion: str, sentence: str = "DFA", level: str = "XX", suffix: str = ".wav") -> str:
    return f"{actor}_{sentence}_{CREMA_CODES.get(emotion, emotion)}_{level}{suffix}"


def make_ravdess(root: Path, actors, emotions=SIX_EMOTIONS, clips_per_emotion: int = 2, seconds: float = 1.0,
                 suffix: str = ".wav", sample_rate: int = 16_000) -> list[Path]:
    """``root/Actor_NN/03-01-EE-II-SS-RR-NN.wav`` files of emotion-dependent synthetic speech."""
    paths = []
    for actor in actors:
        shift = 0.85 if actor % 2 else 1.15  # male (odd) actors a little lower
        for emotion in emotions:
            for index in range(clips_per_emotion):
                statement, repetition = index % 2 + 1, index // 2 + 1
                name = ravdess_name(emotion, actor, statement=statement, repetition=repetition, suffix=suffix)
                style = emotion if emotion in EMOTION_STYLE else "neutral"
                seed = actor * 1000 + list(RAVDESS_CODES).index(emotion) * 10 + index
                wave = emotional_speech(style, seconds, sample_rate, seed=seed, speaker_shift=shift)
                paths.append(write_audio(Path(root) / f"Actor_{actor:02d}" / name, wave, sample_rate))
    return paths


def make_crema(root: Path, actors, emotions=SIX_EMOTIONS, seconds: float = 1.0, suffix: str = ".wav",
               sample_rate: int = 16_000) -> list[Path]:
    """``root/AudioWAV/1001_DFA_ANG_XX.wav`` files."""
    paths = []
    for actor in actors:
        for emotion in emotions:
            wave = emotional_speech(emotion, seconds, sample_rate, seed=actor + len(paths))
            paths.append(write_audio(Path(root) / "AudioWAV" / crema_name(actor, emotion), wave, sample_rate))
    return paths


def dominant_frequency(wave: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(wave.size)))
    return float(np.argmax(spectrum) * sample_rate / wave.size)


# TESS, nEMO and TurEV-DB, with their release names (speakers, emotion spellings and codes).
TESS_WORDS = {"angry": "angry", "disgust": "disgust", "fear": "fear", "happy": "happy", "neutral": "neutral",
              "sad": "sad", "surprised": "ps"}
NEMO_WORDS = {"angry": "anger", "fear": "fear", "happy": "happiness", "neutral": "neutral", "sad": "sadness",
              "surprised": "surprised"}
TUREV_FOLDERS = {"angry": ("Angry", "kz"), "calm": ("Calm", "sk"), "happy": ("Happy", "mt"), "sad": ("Sad", "hl")}


def make_tess(root: Path, speakers=("OAF", "YAF"), emotions=SIX_EMOTIONS, words=("back", "bar"),
              seconds: float = 0.1) -> list[Path]:
    """``root/OAF_angry/OAF_back_angry.wav``; pleasant surprise as ``YAF_pleasant_surprised/YAF_back_ps.wav``."""
    paths = []
    for speaker in speakers:
        for emotion in emotions:
            word = TESS_WORDS[emotion]
            folder = f"{speaker}_pleasant_surprised" if emotion == "surprised" else f"{speaker}_{emotion}"
            for name in words:
                paths.append(write_audio(Path(root) / folder / f"{speaker}_{name}_{word}.wav", tone(200, seconds)))
    return paths


def make_nemo(root: Path, speakers=None, emotions=("angry", "fear", "happy", "neutral", "sad"),
              clips_per_emotion: int = 2, seconds: float = 0.1, table: bool = True) -> list[Path]:
    """``root/samples/SB0_anger_0.wav`` and, with ``table``, ``root/data.tsv`` listing every file."""
    speakers = speakers or {"SB0": "male", "EB0": "female"}
    paths, rows = [], ["file_id\temotion\traw_text\tnormalized_text\tspeaker_id\tgender\tage"]
    for speaker, gender in speakers.items():
        for emotion in emotions:
            for index in range(clips_per_emotion):
                name = f"{speaker}_{NEMO_WORDS[emotion]}_{index}.wav"
                paths.append(write_audio(Path(root) / "samples" / name, tone(200, seconds)))
                rows.append(f"{name}\t{NEMO_WORDS[emotion]}\tZdanie.\tzdanie\t{speaker}\t{gender}\t30")
    if table:
        (Path(root) / "data.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return paths


def make_turev(root: Path, speakers=("1157", "1234"), emotions=("angry", "calm", "happy", "sad"),
               words=("acik", "algi"), seconds: float = 0.1) -> list[Path]:
    """``root/Angry/1157_kz_acik.wav`` (codes kz angry, sk calm, mt happy, hl sad)."""
    paths = []
    for speaker in speakers:
        for emotion in emotions:
            folder, code = TUREV_FOLDERS[emotion]
            for word in words:
                paths.append(write_audio(Path(root) / folder / f"{speaker}_{code}_{word}.wav", tone(200, seconds)))
    return paths


ASED_FOLDERS = {"neutral": ("01Neutral", "n1"), "fear": ("02Fearful", "f2"), "happy": ("03Happy", "h3"),
                "sad": ("04Sad", "s4"), "angry": ("05Angry", "a5")}
BANGLASER_CODES = {"happy": "01", "sad": "02", "angry": "03", "surprised": "04", "neutral": "05", "disgust": "06",
                   "fear": "07"}


def make_ased(root: Path, speakers=("01", "02"), emotions=tuple(ASED_FOLDERS), sentences=("01", "03"),
              gender: str = "01", suffix: str = ".opus", seconds: float = 0.1, speech: bool = False) -> list[Path]:
    """``root/05Angry/a5-03-01-02-50.opus``: emotion letter+number, sentence, repetition, gender, speaker
    (a tone, or with ``speech`` the synthetic speech of each emotion)."""
    paths = []
    for speaker in speakers:
        for emotion in emotions:
            folder, code = ASED_FOLDERS[emotion]
            for sentence in sentences:
                name = f"{code}-{sentence}-01-{gender}-{speaker}{suffix}"
                wave = emotional_speech(emotion, seconds, seed=len(paths)) if speech else tone(200, seconds)
                paths.append(write_audio(Path(root) / folder / name, wave))
    return paths


def make_casia(root: Path, speakers=("liuchanhg", "wangzhe"),
               emotions=("angry", "fear", "happy", "neutral", "sad", "surprise"), texts=(201, 202),
               suffix: str = ".opus", seconds: float = 0.1) -> list[Path]:
    """``root/liuchanhg/angry/201.opus``."""
    return [write_audio(Path(root) / speaker / emotion / f"{text}{suffix}", tone(200, seconds))
            for speaker in speakers for emotion in emotions for text in texts]


def make_banglaser(root: Path, actors=(35, 36), emotions=("disgust", "fear"), statements=(1, 2),
                   suffix: str = ".opus", seconds: float = 0.1) -> list[Path]:
    """``root/Actor - 35/03-01-06-01-01-01-35.opus`` (BanglaSER's codes: 06 disgust, 07 fear)."""
    return [write_audio(Path(root) / f"Actor - {actor}" /
                        f"03-01-{BANGLASER_CODES[emotion]}-01-{statement:02d}-01-{actor}{suffix}", tone(200, seconds))
            for actor in actors for emotion in emotions for statement in statements]
