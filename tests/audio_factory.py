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
# spectral tilt (larger = darker) and breath-noise share. Distinct enough for a tiny CNN to learn.
EMOTION_STYLE = {
    "angry":   dict(f0=210.0, swing=0.25, rate=6.0, tilt=0.6, breath=0.05),
    "disgust": dict(f0=120.0, swing=0.05, rate=2.5, tilt=1.4, breath=0.30),
    "fear":    dict(f0=300.0, swing=0.35, rate=8.0, tilt=1.0, breath=0.15),
    "happy":   dict(f0=250.0, swing=0.30, rate=5.0, tilt=0.8, breath=0.02),
    "neutral": dict(f0=150.0, swing=0.05, rate=4.0, tilt=1.2, breath=0.02),
    "sad":     dict(f0=110.0, swing=0.10, rate=2.0, tilt=2.0, breath=0.10),
}


def tone(frequency: float, seconds: float, sample_rate: int = 16_000, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def noise(seconds: float, sample_rate: int = 16_000, amplitude: float = 0.1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (amplitude * rng.standard_normal(int(round(seconds * sample_rate)))).astype(np.float32)


def speech_like(seconds: float = 2.0, sample_rate: int = 16_000, f0: float = 150.0, swing: float = 0.1,
                rate: float = 4.0, tilt: float = 1.0, breath: float = 0.05, seed: int = 0,
                amplitude: float = 0.5, n_harmonics: int = 30) -> np.ndarray:
    """A harmonic series on a moving pitch contour under a syllable-like amplitude envelope."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    # Pitch contour: slow drift plus a per-utterance random phase, so no two clips are identical.
    contour = f0 * (1.0 + swing * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 2 * np.pi))
                    + 0.02 * rng.standard_normal() )
    phase = 2 * np.pi * np.cumsum(contour) / sample_rate
    wave = np.zeros(n)
    for k in range(1, n_harmonics + 1):
        keep = (k * contour) < sample_rate / 2 - 200  # no aliasing
        wave += keep * np.sin(k * phase) / k**tilt
    # Syllables: raised-cosine bursts at ~rate per second, with short pauses.
    envelope = np.clip(np.sin(np.pi * rate * t + rng.uniform(0, np.pi)), 0, None) ** 1.5
    wave = wave * envelope + breath * envelope * rng.standard_normal(n)
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
PYAV_FORMATS = {".m4a": ("mp4", "aac"), ".webm": ("webm", "libopus"), ".mp3": ("mp3", "libmp3lame")}


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
    import av

    channels = 1 if wave.ndim == 1 else wave.shape[1]
    layout = "mono" if channels == 1 else "stereo"
    rate = 48_000 if "opus" in codec else sample_rate
    planar = wave.reshape(-1, channels).T.copy()  # [channels, n]
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = layout
        resampler = av.AudioResampler(format=stream.format.name, layout=layout, rate=rate)
        frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout=layout)
        frame.sample_rate = sample_rate
        frame.pts = None
        for chunk in resampler.resample(frame) + resampler.resample(None):
            chunk.pts = None
            for packet in stream.encode(chunk):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


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
