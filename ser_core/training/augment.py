"""On-the-fly augmentation of log-mel batches, inside the tf.data pipeline.

The features are dB relative to each window's maximum, so they convert back to mel power exactly
(down to the -top_db floor). Noise, reverberation and band-limiting are applied there, in the
power domain, where they add and multiply as they do in the air; the result is mapped back to dB
exactly as :func:`ser_core.inference.features.log_mel` does. Time shift, speed/pitch-like warping,
SpecAugment masks and mixup act on the dB image.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from ser_core.inference.features import mel_frequencies
from ser_core.inference.params import FeatureParams


@dataclass(frozen=True)
class AugmentConfig:
    shift_fraction: float = 0.15  # random circular time shift, fraction of the window
    warp: float = 0.12  # time stretch and mel-axis warp factors drawn from [1 - warp, 1 + warp]
    vtlp: float = 0.0  # vocal-tract-length warp: each example's frequencies scaled by [1 - vtlp, 1 + vtlp]
    tempo: float = 0.0  # speaking-rate change: each example's time axis scaled by [1 - tempo, 1 + tempo]
    noise_probability: float = 0.6
    snr_db: tuple[float, float] = (0.0, 30.0)
    reverb_probability: float = 0.4
    rt60_s: tuple[float, float] = (0.15, 0.9)
    band_limit_probability: float = 0.3
    freq_masks: int = 2
    freq_mask_bins: int = 8
    time_masks: int = 2
    time_mask_frames: int = 25
    mixup_probability: float = 0.5
    mixup_alpha: float = 0.4


PRESETS: dict[str, AugmentConfig | None] = {
    "strong": AugmentConfig(),
    "light": AugmentConfig(
        warp=0.08, noise_probability=0.3, snr_db=(5.0, 30.0), reverb_probability=0.2,
        band_limit_probability=0.2, freq_masks=1, time_masks=1, mixup_probability=0.3,
    ),
    "acoustic": AugmentConfig(
        shift_fraction=0.1, warp=0.0, noise_probability=0.5, reverb_probability=0.2,
        band_limit_probability=0.15, freq_masks=1, time_masks=1, time_mask_frames=20,
        mixup_probability=0.0,
    ),
    # acoustic + per-example vocal-tract-length perturbation, for more "speakers" than the 16 we have.
    "acoustic_vtlp": AugmentConfig(
        shift_fraction=0.1, warp=0.0, vtlp=0.1, noise_probability=0.5, reverb_probability=0.2,
        band_limit_probability=0.15, freq_masks=1, time_masks=1, time_mask_frames=20,
        mixup_probability=0.0,
    ),
    # acoustic_vtlp + mixup of pairs of examples (and their labels)
    "acoustic_vtlp_mixup": AugmentConfig(
        shift_fraction=0.1, warp=0.0, vtlp=0.1, noise_probability=0.5, reverb_probability=0.2,
        band_limit_probability=0.15, freq_masks=1, time_masks=1, time_mask_frames=20,
        mixup_probability=0.5, mixup_alpha=0.4,
    ),
    # acoustic_vtlp + a per-example speaking-rate change (time axis stretched or squeezed by up to 15 %)
    "acoustic_vtlp_tempo": AugmentConfig(
        shift_fraction=0.1, warp=0.0, vtlp=0.1, tempo=0.15, noise_probability=0.5, reverb_probability=0.2,
        band_limit_probability=0.15, freq_masks=1, time_masks=1, time_mask_frames=20,
        mixup_probability=0.0,
    ),
    "none": None,
}


def _uniform(batch: tf.Tensor, low: float, high: float) -> tf.Tensor:
    return tf.random.uniform([batch], low, high)


def _chosen(batch: tf.Tensor, probability: float) -> tf.Tensor:
    return tf.cast(tf.random.uniform([batch]) < probability, tf.float32)


def _expand(values: tf.Tensor) -> tf.Tensor:
    return values[:, None, None]


def time_shift(x: tf.Tensor, max_fraction: float) -> tf.Tensor:
    """Circularly shift each example by its own random number of frames."""
    batch, frames = tf.shape(x)[0], tf.shape(x)[2]
    limit = tf.cast(tf.cast(frames, tf.float32) * max_fraction, tf.int32)
    shifts = tf.random.uniform([batch, 1], -limit, limit + 1, dtype=tf.int32)
    index = tf.math.floormod(tf.range(frames)[None, :] - shifts, frames)
    return tf.gather(x, index, axis=2, batch_dims=1)


def warp(x: tf.Tensor, amount: float, floor: float) -> tf.Tensor:
    """Stretch time and mel axes by random factors (one per batch), like speed and pitch changes."""
    mels, frames = x.shape[1], x.shape[2]
    time_factor, mel_factor = tf.unstack(tf.random.uniform([2], 1.0 - amount, 1.0 + amount))
    new_frames = tf.cast(tf.round(frames * time_factor), tf.int32)
    new_mels = tf.cast(tf.round(mels * mel_factor), tf.int32)
    resized = tf.image.resize(x[..., None] - floor, [new_mels, new_frames])[..., 0] + floor
    resized = tf.image.resize_with_crop_or_pad(resized[..., None] - floor, mels, frames)[..., 0] + floor
    return tf.ensure_shape(resized, [None, mels, frames])


def vocal_tract_warp(x: tf.Tensor, mel_hz: tf.Tensor, factor: tf.Tensor, floor: float) -> tf.Tensor:
    """Scale each example's frequency axis by its own ``factor`` [batch] (VTLP).

    Band m of the output reads the input at frequency ``mel_hz[m] / factor``, interpolated between the
    neighbouring bands, so a factor above 1 moves formants and pitch harmonics up, like a shorter
    vocal tract. Frequencies outside the input's bands read the floor.
    """
    batch, mels = tf.shape(x)[0], mel_hz.shape[0]
    source_hz = mel_hz[None, :] / factor[:, None]  # [batch, mels]
    upper = tf.searchsorted(tf.broadcast_to(mel_hz[None, :], [batch, mels]), source_hz)  # first band >= source
    lower = tf.maximum(upper - 1, 0)
    upper_clamped = tf.minimum(upper, mels - 1)
    low_hz, high_hz = tf.gather(mel_hz, lower), tf.gather(mel_hz, upper_clamped)
    fraction = tf.where(high_hz > low_hz, (source_hz - low_hz) / tf.maximum(high_hz - low_hz, 1e-6), 0.0)
    warped = ((1.0 - fraction)[..., None] * tf.gather(x, lower, axis=1, batch_dims=1)
              + fraction[..., None] * tf.gather(x, upper_clamped, axis=1, batch_dims=1))
    inside = (source_hz >= mel_hz[0]) & (source_hz <= mel_hz[-1])
    return tf.where(inside[..., None], warped, floor)


def change_tempo(x: tf.Tensor, rate: tf.Tensor, floor: float) -> tf.Tensor:
    """Play each example ``rate`` [batch] times faster about the window's centre, pitch unchanged.

    Output frame t reads the input at ``centre + (t - centre) * rate``, interpolated between the two
    nearest frames; a rate above 1 squeezes the speech (faster talking) and pads with the floor.
    """
    frames = x.shape[2]
    centre = (frames - 1) / 2.0
    source = centre + (tf.range(frames, dtype=tf.float32)[None, :] - centre) * rate[:, None]  # [batch, frames]
    lower = tf.clip_by_value(tf.floor(source), 0.0, frames - 1.0)
    fraction = tf.clip_by_value(source - lower, 0.0, 1.0)[:, None, :]
    lower = tf.cast(lower, tf.int32)
    upper = tf.minimum(lower + 1, frames - 1)
    stretched = ((1.0 - fraction) * tf.gather(x, lower, axis=2, batch_dims=1)
                 + fraction * tf.gather(x, upper, axis=2, batch_dims=1))
    inside = (source >= 0.0) & (source <= frames - 1.0)
    return tf.where(inside[:, None, :], stretched, floor)


def reverberate(power: tf.Tensor, hop_seconds: float, rt60_range: tuple[float, float],
                chosen: tf.Tensor) -> tf.Tensor:
    """Add an exponentially decaying tail per mel band (late reverberation in the power domain)."""
    batch, frames = tf.shape(power)[0], power.shape[2]
    rt60 = _uniform(batch, *rt60_range)
    tail_gain = _uniform(batch, 0.05, 0.6) * chosen
    decay_per_frame = tf.pow(10.0, -6.0 * hop_seconds / rt60)
    lags = tf.cast(tf.range(frames), tf.float32)[None, :]
    kernel = tf.pow(decay_per_frame[:, None], lags) * tail_gain[:, None]
    kernel = tf.concat([tf.ones([batch, 1]), kernel[:, 1:]], axis=1)
    size = 2 * frames
    spectrum = tf.signal.rfft(power, [size]) * tf.signal.rfft(kernel, [size])[:, None, :]
    reverberant = tf.nn.relu(tf.signal.irfft(spectrum, [size])[:, :, :frames])
    return tf.where(_expand(chosen) > 0, reverberant, power)  # untouched examples stay bit-exact


def add_noise(power: tf.Tensor, mel_hz: tf.Tensor, snr_range: tuple[float, float],
              chosen: tf.Tensor) -> tf.Tensor:
    """Add coloured, fluctuating noise at a random SNR (measured over the window's frames)."""
    batch, frames = tf.shape(power)[0], power.shape[2]
    slope = _uniform(batch, -0.5, 2.0)  # 0 = white, 1 = pink, 2 = brown
    shape = tf.pow(mel_hz[None, :] / 1000.0, -slope[:, None])  # [batch, mels]
    fluctuation = tf.exp(tf.random.normal([batch, mel_hz.shape[0], frames], stddev=0.4))
    noise = shape[:, :, None] * fluctuation
    snr = _uniform(batch, *snr_range)
    signal_power = tf.reduce_mean(power, axis=[1, 2])
    scale = signal_power / (tf.reduce_mean(noise, axis=[1, 2]) * tf.pow(10.0, snr / 10.0))
    return power + _expand(scale * chosen) * noise


def band_limit(power: tf.Tensor, mel_hz: tf.Tensor, chosen: tf.Tensor) -> tf.Tensor:
    """Attenuate below a random low cut and above a random high cut, as phones and codecs do."""
    batch = tf.shape(power)[0]
    low = _uniform(batch, 50.0, 400.0)
    high = _uniform(batch, 3_000.0, 8_000.0)
    outside = tf.cast((mel_hz[None, :] < low[:, None]) | (mel_hz[None, :] > high[:, None]), tf.float32)
    gain = 1.0 - outside * chosen[:, None] * (1.0 - 1e-4)
    return power * gain[:, :, None]


def to_db(power: tf.Tensor, top_db: float) -> tf.Tensor:
    """The same mapping as features.log_mel: dB re the window maximum, floored at -top_db."""
    db = 10.0 * tf.math.log(tf.maximum(power, 1e-10)) / tf.math.log(10.0)
    db -= tf.reduce_max(db, axis=[1, 2], keepdims=True)
    return tf.maximum(db, -top_db)


def mask(x: tf.Tensor, axis: int, count: int, max_width: int) -> tf.Tensor:
    """SpecAugment: ``count`` random bands of up to ``max_width`` along ``axis`` set to the mean."""
    batch, size = tf.shape(x)[0], x.shape[axis]
    positions = tf.range(size)[None, :]
    keep = tf.ones([batch, size])
    for _ in range(count):
        width = tf.random.uniform([batch, 1], 0, max_width + 1, dtype=tf.int32)
        start = tf.random.uniform([batch, 1], 0, size, dtype=tf.int32)
        keep *= 1.0 - tf.cast((positions >= start) & (positions < start + width), tf.float32)
    keep = keep[:, :, None] if axis == 1 else keep[:, None, :]
    mean = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
    return x * keep + mean * (1.0 - keep)


def mixup(x: tf.Tensor, y: tf.Tensor, alpha: float, probability: float) -> tuple[tf.Tensor, tf.Tensor]:
    batch = tf.shape(x)[0]
    first = tf.random.gamma([batch], alpha)
    second = tf.random.gamma([batch], alpha)
    weight = tf.maximum(first / (first + second), 1.0 - first / (first + second))
    weight = tf.where(tf.random.uniform([batch]) < probability, weight, tf.ones([batch]))
    order = tf.random.shuffle(tf.range(batch))
    x = _expand(weight) * x + _expand(1.0 - weight) * tf.gather(x, order)
    y = weight[:, None] * y + (1.0 - weight[:, None]) * tf.gather(y, order)
    return x, y


def make_augmenter(params: FeatureParams, config: AugmentConfig = AugmentConfig()):
    """A tf.data map function ``(x [batch, mels, frames], y one-hot) -> augmented (x, y)``."""
    mel_hz = tf.constant(mel_frequencies(params), tf.float32)
    hop_seconds = params.hop_length / params.sample_rate
    floor = -params.top_db

    def augment(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        batch = tf.shape(x)[0]
        x = time_shift(x, config.shift_fraction)
        if config.warp > 0:
            x = warp(x, config.warp, floor)
        if config.vtlp > 0:
            x = vocal_tract_warp(x, mel_hz, _uniform(batch, 1.0 - config.vtlp, 1.0 + config.vtlp), floor)
        if config.tempo > 0:
            x = change_tempo(x, _uniform(batch, 1.0 - config.tempo, 1.0 + config.tempo), floor)
        power = tf.pow(10.0, x / 10.0) * tf.cast(x > floor, tf.float32)
        power = reverberate(power, hop_seconds, config.rt60_s, _chosen(batch, config.reverb_probability))
        power = add_noise(power, mel_hz, config.snr_db, _chosen(batch, config.noise_probability))
        power = band_limit(power, mel_hz, _chosen(batch, config.band_limit_probability))
        x = to_db(power, params.top_db)
        x = mask(x, 1, config.freq_masks, config.freq_mask_bins)
        x = mask(x, 2, config.time_masks, config.time_mask_frames)
        if config.mixup_probability > 0:
            x, y = mixup(x, y, config.mixup_alpha, config.mixup_probability)
        return x, y

    return augment
