"""Training the tuned Whisper model: the CPU route from cached frames, the GPU route end to end from audio.

- :func:`fit_tuned` (CPU route): frozen frames of layers 1-4 from ``data.frame_cache``; the top
  ``recipe.top_blocks`` blocks (adapters, or full fine-tuning after the head has warmed up), the
  layer weights, the pooling and the output learn; random crops of ``max_frames`` frames, class- and
  corpus-balanced loss (``embedding_protocols.sample_weights``).
- :func:`fit_end_to_end` (GPU route): the waveforms through a laptop-browser channel
  (``data.channel.Channel.browser()``: noise, room, gain, band limits, Opus at 12-32 kbit/s), the
  front end's speech and level steps, Whisper log-mel, then the Keras encoder with its lower blocks
  frozen; mixed precision when a GPU is present.

Both return a :class:`TunedModel` whose :meth:`TunedModel.export` writes the numpy-served file.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import keras
import numpy as np

from ser_core.evaluation.embedding_protocols import sample_weights
from ser_core.inference.params import EmbeddingParams
from ser_core.training.whisper_keras import TunedRecipe, build_end_to_end, build_tuned_model, export_tuned

__all__ = ["CACHED_LAYERS", "ClipFrames", "TunedModel", "fit_end_to_end", "fit_tuned", "frame_statistics"]

log = logging.getLogger(__name__)

# The layers the frame cache holds (``data.frame_cache.cached_frames``' default) and their order.
CACHED_LAYERS = (1, 2, 3, 4)
_EVAL_MAX_FRAMES = 1500  # 30 s: longer clips are scored on their first 30 s


@dataclass
class ClipFrames:
    """Clips' cached frames ``(frames, len(CACHED_LAYERS), width)`` and what the loss balances."""

    frames: list[np.ndarray]
    labels: np.ndarray
    corpus: np.ndarray
    speaker: np.ndarray

    def subset(self, mask: np.ndarray) -> "ClipFrames":
        rows = np.flatnonzero(mask) if np.asarray(mask).dtype == bool else np.asarray(mask)
        return ClipFrames([self.frames[i] for i in rows], self.labels[rows], self.corpus[rows], self.speaker[rows])

    def speaker_moves(self, mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per clip, ``(scale, shift)`` ``(n, layers, width)`` that move its speaker's frame statistics onto
        ``mean``/``std`` (all cached layers): ``frames * scale + shift``."""
        scale = np.empty((len(self), *mean.shape), np.float32)
        shift = np.empty_like(scale)
        for who in np.unique(self.speaker):
            rows = np.flatnonzero(self.speaker == who)
            own_mean, own_std = frame_statistics([self.frames[r] for r in rows], range(mean.shape[0]))
            scale[rows] = std / own_std
            shift[rows] = mean - own_mean * std / own_std
        return scale, shift

    def __len__(self) -> int:
        return len(self.labels)


def frame_statistics(frames: Sequence[np.ndarray], columns: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per-layer channel mean and std over every frame of ``frames`` (columns = positions in the cache)."""
    total = total_sq = None
    count = 0
    for clip in frames:
        x = np.asarray(clip[:, list(columns)], np.float64)
        total = x.sum(axis=0) if total is None else total + x.sum(axis=0)
        total_sq = np.square(x).sum(axis=0) if total_sq is None else total_sq + np.square(x).sum(axis=0)
        count += len(x)
    mean = total / count
    return mean.astype(np.float32), np.sqrt(np.maximum(total_sq / count - mean**2, 0.0) + 1e-6).astype(np.float32)


def _columns(layers: Sequence[int]) -> list[int]:
    missing = [layer for layer in layers if layer not in CACHED_LAYERS]
    if missing:
        raise ValueError(f"layers {missing} are not in the frame cache (it holds {CACHED_LAYERS})")
    return [CACHED_LAYERS.index(layer) for layer in layers]


def _padded(clips: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    longest = max(len(clip) for clip in clips)
    out = np.zeros((len(clips), longest, *clips[0].shape[1:]), np.float32)
    mask = np.zeros((len(clips), longest), np.float32)
    for i, clip in enumerate(clips):
        out[i, : len(clip)] = clip
        mask[i, : len(clip)] = 1.0
    return out, mask


class _FrameBatches(keras.utils.PyDataset):
    """Shuffled batches of random ``max_frames`` crops, padded to the batch's longest, with weights."""

    def __init__(self, data: ClipFrames, columns: list[int], recipe: TunedRecipe, weights: np.ndarray,
                 seed: int, moves: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        super().__init__()
        self.data, self.columns, self.recipe, self.weights, self.moves = data, columns, recipe, weights, moves
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(data))

    def __len__(self) -> int:
        return math.ceil(len(self.data) / self.recipe.batch_size)

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.data))

    def __getitem__(self, index: int):
        rows = self.order[index * self.recipe.batch_size:(index + 1) * self.recipe.batch_size]
        crops = []
        for row in rows:
            clip = self.data.frames[row]
            start = int(self.rng.integers(0, len(clip) - self.recipe.max_frames + 1)) if len(clip) > self.recipe.max_frames else 0
            crop = np.asarray(clip[start:start + self.recipe.max_frames], np.float32)
            if self.moves is not None:
                crop = crop * self.moves[0][row] + self.moves[1][row]
            crops.append(crop[:, self.columns])
        frames, mask = _padded(crops)
        return {"frames": frames, "mask": mask}, self.data.labels[rows], self.weights[rows].astype(np.float32)


@dataclass
class TunedModel:
    """A trained tuned model and how to feed it."""

    model: keras.Model
    recipe: TunedRecipe
    params: EmbeddingParams
    statistics: tuple[np.ndarray, np.ndarray]  # the training frames' mean and std, every cached layer
    seconds: float = 0.0

    def predict_logits(self, data: ClipFrames, batch_size: int = 16, *, adapted: bool = False) -> np.ndarray:
        """Six logits per clip, each clip whole (up to 30 s), batched by length.

        ``adapted``: each corpus's frames first moved onto the training statistics with its own
        (unlabelled) frame statistics, as the ridge's adapted protocol standardises a new room.
        """
        columns = _columns(self.recipe.input_layers)
        moves = None
        if adapted:
            moves = ClipFrames(data.frames, data.labels, data.corpus, data.corpus).speaker_moves(*self.statistics)
        order = np.argsort([len(clip) for clip in data.frames])
        out = np.zeros((len(data), 6), np.float32)
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            clips = [np.asarray(data.frames[r][:_EVAL_MAX_FRAMES], np.float32) for r in rows]
            if moves is not None:
                clips = [clip * moves[0][r] + moves[1][r] for clip, r in zip(clips, rows)]
            frames, mask = _padded([clip[:, columns] for clip in clips])
            out[rows] = np.asarray(self.model({"frames": frames, "mask": mask}, training=False))
        return out

    def export(self, path: str | Path) -> str:
        """The numpy-served ``.npz`` (``inference.tuned_head``); returns its SHA-256."""
        return export_tuned(self.model, self.recipe, path, params=self.params)


def _compile(model: keras.Model, learning_rate: float, steps: int) -> None:
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(steps, 1), alpha=0.05)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=1e-2, clipnorm=1.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), weighted_metrics=[])


def _tuned_blocks_of(model: keras.Model, recipe: TunedRecipe) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if layer.name in {f"block{n}" for n in recipe.tuned_blocks}]


def fit_tuned(data: ClipFrames, recipe: TunedRecipe, *, params: EmbeddingParams = EmbeddingParams(),
              verbose: int = 0) -> TunedModel:
    """Train on cached frames (the CPU route).

    Full fine-tuning first trains the head with the blocks frozen (half the epochs), then everything
    at ``block_learning_rate``; adapters start at zero and train with the head from the start.
    """
    import time

    start = time.perf_counter()
    keras.utils.set_random_seed(recipe.seed)
    model = build_tuned_model(recipe, params=params)
    mean, std = frame_statistics(data.frames, range(len(CACHED_LAYERS)))
    read = _columns(recipe.read_layers)
    model.get_layer("standardise").set_weights([mean[read], std[read]])
    moves = data.speaker_moves(mean, std) if recipe.train_norm == "speaker" else None
    weights = sample_weights(data.labels, data.corpus, recipe.weighting)
    batches = _FrameBatches(data, _columns(recipe.input_layers), recipe, weights, recipe.seed, moves)
    blocks = _tuned_blocks_of(model, recipe)
    if recipe.adapter == "full" and blocks:
        warm = max(1, recipe.epochs // 2)
        for block in blocks:
            block.trainable = False
        _compile(model, recipe.learning_rate, warm * len(batches))
        model.fit(batches, epochs=warm, verbose=verbose)
        for block in blocks:
            block.trainable = True
        _compile(model, recipe.block_learning_rate, (recipe.epochs - warm) * len(batches))
        model.fit(batches, epochs=recipe.epochs - warm, verbose=verbose)
    else:
        _compile(model, recipe.learning_rate, recipe.epochs * len(batches))
        model.fit(batches, epochs=recipe.epochs, verbose=verbose)
    return TunedModel(model, recipe, params, (mean, std), time.perf_counter() - start)


class _AudioBatches(keras.utils.PyDataset):
    """Batches of log-mel from waveforms: channel augmentation, the front end's speech and level steps, crops."""

    def __init__(self, waves: Sequence[np.ndarray], labels: np.ndarray, weights: np.ndarray, recipe: TunedRecipe,
                 params: EmbeddingParams, augment, seed: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.waves, self.labels, self.weights = waves, labels, weights
        self.recipe, self.params, self.augment = recipe, params, augment
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(waves))

    def __len__(self) -> int:
        return math.ceil(len(self.waves) / self.recipe.batch_size)

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.waves))

    def __getitem__(self, index: int):
        from ser_core.data.frame_cache import speech_segments
        from ser_core.inference.whisper_encoder import log_mel_spectrogram

        rows = self.order[index * self.recipe.batch_size:(index + 1) * self.recipe.batch_size]
        mels = []
        for row in rows:
            wave = self.waves[row]
            if self.augment is not None:
                wave = self.augment(wave, self.rng)
            segment = speech_segments(wave, self.params)[0]
            limit = 2 * self.recipe.max_frames * 160
            if len(segment) > limit:
                begin = int(self.rng.integers(0, len(segment) - limit + 1))
                segment = segment[begin:begin + limit]
            mels.append(log_mel_spectrogram(segment, self.params.sample_rate).T)
        mel, mask = _padded(mels)
        return {"mel": mel, "mel_mask": mask}, self.labels[rows], self.weights[rows].astype(np.float32)


def fit_end_to_end(waves: Sequence[np.ndarray], labels: np.ndarray, corpus: np.ndarray, recipe: TunedRecipe, *,
                   params: EmbeddingParams = EmbeddingParams(), augment=None, steps_per_epoch: int | None = None,
                   verbose: int = 0) -> keras.Model:
    """Train from audio (the GPU route): frozen lower blocks, tuned top, mixed precision on a GPU.

    ``augment`` is a seeded waveform transform (``data.channel.Channel.browser()`` by default;
    pass False for none). Frame standardisation is fitted on the first batches' frozen frames.
    """
    import tensorflow as tf

    from ser_core.data.channel import Channel

    if tf.config.list_physical_devices("GPU"):
        keras.mixed_precision.set_global_policy("mixed_float16")
    keras.utils.set_random_seed(recipe.seed)
    augment = Channel.browser() if augment is None else (augment or None)
    model = build_end_to_end(recipe, params)
    weights = sample_weights(labels, corpus, recipe.weighting)
    batches = _AudioBatches(waves, labels, weights, recipe, params, augment, recipe.seed)
    # Standardisation from a few clean batches through the frozen encoder.
    encoder = model.get_layer("whisper_encoder")
    sums = squares = None
    count = 0
    for index in range(min(len(batches), 4)):
        inputs, _, _ = batches[index]
        out = encoder(inputs, training=False)
        hidden = np.asarray(out["hidden"], np.float64)[:, :, list(recipe.read_layers)]
        mask = np.asarray(out["mask"], bool)
        rows = hidden[mask]
        sums = rows.sum(axis=0) if sums is None else sums + rows.sum(axis=0)
        squares = np.square(rows).sum(axis=0) if squares is None else squares + np.square(rows).sum(axis=0)
        count += len(rows)
    mean = sums / count
    model.get_layer("standardise").set_weights(
        [mean.astype(np.float32), np.sqrt(np.maximum(squares / count - mean**2, 0) + 1e-6).astype(np.float32)])
    steps = steps_per_epoch or len(batches)
    _compile(model, recipe.learning_rate if recipe.adapter == "lora" else recipe.block_learning_rate,
             recipe.epochs * steps)
    model.fit(batches, epochs=recipe.epochs, steps_per_epoch=steps, verbose=verbose)
    return model
