"""Generated sounds that are not speech, for ``benchmarks/non_speech.py`` (and its exploration).

Every signal is made from a seed with numpy; nothing is read from disk except the speech that is
played backwards (clips of ``../shared/data``, given by the caller).
"""

from __future__ import annotations

import numpy as np

SR = 16_000


def _level(wave: np.ndarray, rms_dbfs: float) -> np.ndarray:
    wave = wave - wave.mean()
    rms = float(np.sqrt(np.mean(np.square(wave)))) + 1e-12
    return (wave * 10 ** (rms_dbfs / 20) / rms).astype(np.float32)


def _harmonics(f0: np.ndarray, n: int = 8, decay: float = 0.7) -> np.ndarray:
    phase = 2 * np.pi * np.cumsum(f0) / SR
    return sum(decay ** k * np.sin((k + 1) * phase) for k in range(n) if (k + 1) * f0.max() < SR / 2 - 200)


def _pluck(frequency: float, seconds: float, rng: np.random.Generator, brightness: float = 0.5) -> np.ndarray:
    """A plucked string (Karplus-Strong): a noise burst in a delay line with a damped average."""
    n = int(seconds * SR)
    period = max(2, int(round(SR / frequency)))
    line = rng.uniform(-1, 1, period)
    out = np.empty(n)
    for i in range(n):
        j = i % period
        out[i] = line[j]
        line[j] = 0.996 * (brightness * line[j] + (1 - brightness) * line[j - 1])
    return out


def tones(seconds: float) -> dict[str, np.ndarray]:
    t = np.arange(int(seconds * SR)) / SR
    out = {}
    for frequency in (80, 100, 130, 160, 200, 220, 240, 255, 300, 400, 500, 700, 1000):
        out[f"tone {frequency} Hz"] = (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)
    out["tone 220 Hz quiet (-40 dBFS)"] = _level(np.sin(2 * np.pi * 220 * t), -40)
    out["tone 220 Hz clipped"] = np.clip(4 * np.sin(2 * np.pi * 220 * t), -1, 1).astype(np.float32)
    out["tone 230 Hz, 1 s"] = (0.5 * np.sin(2 * np.pi * 230 * t[:SR])).astype(np.float32)
    vibrato = 200 * (1 + 0.02 * np.sin(2 * np.pi * 5.5 * t))
    out["tone 200 Hz with vibrato"] = _level(np.sin(2 * np.pi * np.cumsum(vibrato) / SR), -18)
    out["harmonic 220 Hz + vibrato"] = _level(_harmonics(220 * (1 + 0.03 * np.sin(2 * np.pi * 5.5 * t))), -18)
    out["harmonic 150 Hz, steady"] = _level(_harmonics(np.full(t.size, 150.0), 12, 0.8), -18)
    return out


def sweeps(seconds: float) -> dict[str, np.ndarray]:
    t = np.arange(int(seconds * SR)) / SR
    out = {}
    for low, high, shape in ((200, 2000, "linear"), (2000, 200, "linear"), (100, 1000, "log"), (80, 400, "linear"),
                             (300, 3000, "log")):
        if shape == "linear":
            f = low + (high - low) * t / seconds
        else:
            f = low * (high / low) ** (t / seconds)
        out[f"sweep {low}->{high} Hz ({shape})"] = (0.5 * np.sin(2 * np.pi * np.cumsum(f) / SR)).astype(np.float32)
    f = 200 + 100 * np.sin(2 * np.pi * 1.5 * t)  # a siren
    out["siren 100-300 Hz, 1.5/s"] = (0.5 * np.sin(2 * np.pi * np.cumsum(f) / SR)).astype(np.float32)
    out["harmonic sweep 150->400 Hz"] = _level(_harmonics(150 + 250 * t / seconds), -18)
    return out


def chords(seconds: float) -> dict[str, np.ndarray]:
    n = int(seconds * SR)
    t = np.arange(n) / SR
    out = {}
    for name, notes in (("A major", (220.0, 277.18, 329.63)), ("C minor", (261.63, 311.13, 392.0)),
                        ("low E power", (82.41, 123.47, 164.81))):
        out[f"chord {name} (pure)"] = _level(sum(np.sin(2 * np.pi * f * t) for f in notes), -18)
        out[f"chord {name} (harmonics)"] = _level(sum(_harmonics(np.full(n, f), 6, 0.6) for f in notes), -18)
    progression = np.zeros(n)
    for index, notes in enumerate(((220.0, 277.18, 329.63), (293.66, 369.99, 440.0), (329.63, 415.3, 493.88),
                                   (220.0, 277.18, 329.63))):
        a, b = index * n // 4, (index + 1) * n // 4
        progression[a:b] = sum(_harmonics(np.full(b - a, f), 6, 0.6) for f in notes) * np.exp(-np.arange(b - a) / SR)
    out["chord progression (1 chord/s, decaying)"] = _level(progression, -18)
    return out


def melodies(seconds: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = int(seconds * SR)
    scale = np.array([196.0, 220.0, 246.9, 261.6, 293.7, 329.6, 349.2, 392.0, 440.0, 493.9, 523.3])
    out = {}
    for notes_per_second, brightness in ((2, 0.5), (4, 0.5), (6, 0.3), (3, 0.7)):
        length = 1.0 / notes_per_second
        wave = np.concatenate([_pluck(float(f), length, rng, brightness)
                               for f in rng.choice(scale, int(np.ceil(seconds * notes_per_second)))])[:n]
        out[f"plucked melody ({notes_per_second} notes/s)"] = _level(wave, -20)
    t = np.arange(n) / SR
    f0 = np.repeat(rng.choice(scale, int(seconds / 0.25) + 1), int(0.25 * SR))[:n]
    envelope = np.tile(np.minimum(1, np.arange(int(0.25 * SR)) / 400) * np.exp(-np.arange(int(0.25 * SR)) / 2500),
                       int(seconds / 0.25) + 1)[:n]
    out["synth melody (4 notes/s)"] = _level(_harmonics(f0 * (1 + 0.01 * np.sin(2 * np.pi * 6 * t))) * envelope, -20)
    legato = np.repeat(rng.choice(scale, int(seconds / 0.4) + 1), int(0.4 * SR))[:n]
    out["legato melody (flute-like)"] = _level(_harmonics(legato, 4, 0.3) + 0.01 * rng.standard_normal(n), -20)
    return out


def music_like(seconds: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = int(seconds * SR)
    scale = np.array([196.0, 220.0, 246.9, 261.6, 293.7, 329.6, 349.2, 392.0, 440.0])
    beat = np.zeros(n)
    for k in range(int(seconds * 4)):
        i = int(k * 0.25 * SR)
        length = min(n - i, 4000)
        tt = np.arange(length) / SR
        if k % 2 == 0:
            beat[i : i + length] += np.sin(2 * np.pi * 60 * tt * (1 + 2 * np.exp(-tt * 40))) * np.exp(-tt * 25)
        burst = min(length, 800)
        beat[i : i + burst] += 0.3 * rng.standard_normal(burst) * np.exp(-np.arange(burst) / 150)
    melody = np.concatenate([_pluck(float(f), 0.25, rng) for f in rng.choice(scale, int(seconds * 4) + 1)])[:n]
    t = np.arange(n) / SR
    pad = sum(_harmonics(np.full(n, f), 6, 0.6) for f in (110.0, 164.81, 220.0)) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))
    bass = _harmonics(np.repeat(rng.choice([55.0, 73.4, 82.4, 98.0], int(seconds) + 1), SR)[:n], 4, 0.5)
    out = {
        "music: melody + chord + beat": _level(_level(melody, -20) + _level(pad, -26) + _level(beat, -22), -18),
        "music: beat + bass": _level(_level(beat, -20) + _level(bass, -22), -18),
        "music: pad chords + plucked melody": _level(_level(melody, -20) + _level(pad, -22), -18),
    }
    # An arpeggiated synth with a filter opening and closing: a moving spectrum, like vowels.
    arp = np.repeat(rng.choice(scale, int(seconds * 8) + 1), SR // 8)[:n]
    from scipy.signal import lfilter

    raw = _harmonics(arp, 20, 0.85)
    cutoff = 600 + 500 * np.sin(2 * np.pi * 0.7 * t)
    blocks = [lfilter([1 - np.exp(-2 * np.pi * c / SR)], [1, -np.exp(-2 * np.pi * c / SR)], raw[i : i + 800])
              for i, c in zip(range(0, n, 800), cutoff[::800])]
    out["music: arpeggio through a moving filter"] = _level(np.concatenate(blocks)[:n], -18)
    return out


def generated(seconds: float = 4.0, seed: int = 20261206) -> dict[str, tuple[str, np.ndarray]]:
    """``{name: (family, wave)}`` of every generated non-speech signal (16 kHz mono float32)."""
    rng = np.random.default_rng(seed)
    out: dict[str, tuple[str, np.ndarray]] = {}
    for family, signals in (("tone", tones(seconds)), ("sweep", sweeps(seconds)), ("chord", chords(seconds)),
                            ("melody", melodies(seconds, rng)), ("music-like", music_like(seconds, rng))):
        for name, wave in signals.items():
            out[name] = (family, np.asarray(wave, np.float32))
    return out
