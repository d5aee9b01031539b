"""The Whisper-base encoder in Keras 3, with a trainable top and a frame-level head.

Two models share the same layers and the pinned weights (``inference.whisper_weights`` through
``inference.tuned_head.pinned_block_weights``):

- :func:`build_encoder`: log-mel in, every layer's frames out; the numpy encoder
  (``inference.whisper_encoder``) computes the same to float tolerance (``tests/test_whisper_keras.py``).
  End to end from audio (the GPU route, :func:`build_end_to_end`), its lower blocks frozen.
- :func:`build_tuned_model`: the frozen lower blocks' frames (``data.frame_cache``) in, so a CPU
  trains only the top K blocks (K = 0: the frame-level head alone).

On top of the layers it reads, every model has: fixed per-layer standardisation, a learned softmax
weighting of the layers, dropout, attentive statistics pooling over the frames (padding masked) and
a linear output of six logits. :func:`export_tuned` writes what was learnt (never the whole encoder)
as the pickle-free ``.npz`` that ``inference.tuned_head.TunedHead`` applies with numpy.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import ops

from ser_core.inference.params import EMOTIONS, EmbeddingParams
from ser_core.inference.tuned_head import FORMAT, PROJECTIONS, pinned_block_weights

__all__ = ["AttentiveStatsPool", "LayerMix", "TunedRecipe", "WhisperBlock", "build_encoder", "build_end_to_end",
           "build_tuned_model", "export_tuned", "load_block_weights"]

_NEG = -1e9


@dataclass(frozen=True)
class TunedRecipe:
    """What the tuned model reads and learns.

    ``read_layers``: encoder layers the head reads (0 = stem, 1..6 = blocks); the top ``top_blocks``
    of them are trained (K = 0: a frame-level head on the frozen encoder), either fully
    (``adapter="full"``) or through rank-``lora_rank`` adapters on each block's four projections.
    """

    read_layers: tuple[int, ...] = (1, 2, 3, 4)
    top_blocks: int = 0
    adapter: str = "lora"  # "lora" or "full"
    lora_rank: int = 8
    attention_hidden: int = 128
    dropout: float = 0.3
    epochs: int = 12
    batch_size: int = 32
    learning_rate: float = 1e-3
    block_learning_rate: float = 1e-4  # a fully fine-tuned block moves slower than the fresh head
    max_frames: int = 200  # training crop (4 s at 50 frames/s)
    weighting: str = "corpus_class"
    # "speaker": each training speaker's frames moved onto the training set's statistics (per layer and
    # channel), as the ridge recipe standardises each training speaker; "global": the frames as they are.
    train_norm: str = "speaker"
    statistics: str = "mean_std"  # what the attentive pooling returns: "mean_std" or "mean"
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.top_blocks <= 2:
            raise ValueError(f"top_blocks must be 0, 1 or 2, got {self.top_blocks}")
        if self.adapter not in ("lora", "full"):
            raise ValueError(f"adapter must be 'lora' or 'full', got {self.adapter!r}")
        if self.train_norm not in ("speaker", "global"):
            raise ValueError(f"train_norm must be 'speaker' or 'global', got {self.train_norm!r}")
        if self.statistics not in ("mean_std", "mean"):
            raise ValueError(f"statistics must be 'mean_std' or 'mean', got {self.statistics!r}")
        if self.top_blocks and self.base_layer < 1:
            raise ValueError("the tuned blocks need a frozen block below them")

    @property
    def top_layer(self) -> int:
        return max(self.read_layers)

    @property
    def base_layer(self) -> int:
        """The frozen layer the first tuned block reads (the top layer itself when K = 0)."""
        return self.top_layer - self.top_blocks

    @property
    def tuned_blocks(self) -> tuple[int, ...]:
        return tuple(range(self.base_layer + 1, self.top_layer + 1))

    @property
    def input_layers(self) -> tuple[int, ...]:
        """The frozen layers the model takes in, in order: those it reads below the tuned blocks, and their input."""
        return tuple(sorted({layer for layer in self.read_layers if layer <= self.base_layer} | {self.base_layer}))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "read_layers": list(self.read_layers)}


class WhisperBlock(keras.layers.Layer):
    """One Whisper encoder block; ``frame_mask`` (batch, frames) keeps padded frames out of the attention."""

    def __init__(self, width: int = 512, n_heads: int = 8, **kwargs) -> None:
        super().__init__(**kwargs)
        self.width, self.n_heads = width, n_heads
        self.ln1 = keras.layers.LayerNormalization(epsilon=1e-5, name="ln1")
        self.qkv = keras.layers.Dense(3 * width, name="qkv")
        self.out = keras.layers.Dense(width, name="out")
        self.ln2 = keras.layers.LayerNormalization(epsilon=1e-5, name="ln2")
        self.fc1 = keras.layers.Dense(4 * width, name="fc1")
        self.fc2 = keras.layers.Dense(width, name="fc2")

    def build(self, input_shape) -> None:
        for layer, size in ((self.ln1, self.width), (self.qkv, self.width), (self.out, self.width),
                            (self.ln2, self.width), (self.fc1, self.width), (self.fc2, 4 * self.width)):
            layer.build((None, None, size))
        self.built = True

    def call(self, x, frame_mask=None):
        batch, frames = ops.shape(x)[0], ops.shape(x)[1]
        dh = self.width // self.n_heads
        qkv = ops.reshape(self.qkv(self.ln1(x)), (batch, frames, 3, self.n_heads, dh))
        q, k, v = (ops.transpose(qkv[:, :, i], (0, 2, 1, 3)) for i in range(3))
        scores = ops.cast(ops.einsum("bhqd,bhkd->bhqk", q, k), "float32") / float(np.sqrt(dh))
        if frame_mask is not None:
            scores = scores + (1.0 - ops.cast(frame_mask, "float32"))[:, None, None, :] * _NEG
        weights = ops.cast(ops.softmax(scores, axis=-1), x.dtype)
        attended = ops.reshape(ops.transpose(ops.einsum("bhqk,bhkd->bhqd", weights, v), (0, 2, 1, 3)),
                               (batch, frames, self.width))
        x = x + self.out(attended)
        return x + self.fc2(ops.gelu(self.fc1(self.ln2(x)), approximate=False))

    def set_pinned(self, w: dict[str, np.ndarray]) -> None:
        """Load one block of ``pinned_block_weights``."""
        self.ln1.set_weights([w["ln1_g"], w["ln1_b"]])
        self.ln2.set_weights([w["ln2_g"], w["ln2_b"]])
        for name in PROJECTIONS:
            getattr(self, name).set_weights([w[f"{name}_w"], w[f"{name}_b"]])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "width": self.width, "n_heads": self.n_heads}


class Standardise(keras.layers.Layer):
    """Fixed per-layer channel standardisation ``(x - mean) / std`` of ``(batch, frames, layers, width)``."""

    def __init__(self, n_layers: int, width: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.mean = self.add_weight(shape=(n_layers, width), initializer="zeros", trainable=False, name="mean")
        self.std = self.add_weight(shape=(n_layers, width), initializer="ones", trainable=False, name="std")

    def call(self, x):
        return (x - ops.cast(self.mean, x.dtype)) / ops.cast(self.std, x.dtype)


class LayerMix(keras.layers.Layer):
    """Softmax-weighted sum over the layer axis of ``(batch, frames, layers, width)``."""

    def __init__(self, n_layers: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.logits = self.add_weight(shape=(n_layers,), initializer="zeros", name="logits")

    def call(self, x):
        weights = ops.cast(ops.softmax(self.logits), x.dtype)
        return ops.einsum("btld,l->btd", x, weights)


class AttentiveStatsPool(keras.layers.Layer):
    """Attention-weighted mean and standard deviation over the frames (padding masked): ``(batch, 2 * width)``
    (``(batch, width)``: the mean alone, without ``with_std``)."""

    def __init__(self, hidden: int = 128, with_std: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.hidden, self.with_std = hidden, with_std
        self.score_hidden = keras.layers.Dense(hidden, activation="tanh", name="w1")
        self.score = keras.layers.Dense(1, name="w2")

    def build(self, input_shape) -> None:
        self.score_hidden.build(input_shape)
        self.score.build((None, None, self.hidden))
        self.built = True

    def call(self, x, frame_mask):
        x = ops.cast(x, "float32")
        scores = self.score(self.score_hidden(x))[..., 0]
        scores = scores + (1.0 - ops.cast(frame_mask, "float32")) * _NEG
        alpha = ops.softmax(scores, axis=-1)[..., None]
        mean = ops.sum(alpha * x, axis=1)
        if not self.with_std:
            return mean
        var = ops.sum(alpha * ops.square(x), axis=1) - ops.square(mean)
        return ops.concatenate([mean, ops.sqrt(ops.maximum(var, 0.0) + 1e-6)], axis=-1)


def load_block_weights(blocks: tuple[int, ...], params: EmbeddingParams = EmbeddingParams()):
    """``(n_heads, [block weights])`` of the pinned encoder (``inference.tuned_head.pinned_block_weights``)."""
    return pinned_block_weights(blocks, params)


def _head(stacked, mask, recipe: TunedRecipe, width: int, n_classes: int):
    """Standardise, mix the layers, dropout, attentive statistics pooling, dropout, logits."""
    x = Standardise(len(recipe.read_layers), width, name="standardise")(stacked)
    x = LayerMix(len(recipe.read_layers), name="layer_mix")(x)
    x = keras.layers.Dropout(recipe.dropout, noise_shape=None, name="frame_dropout")(x)
    pooled = AttentiveStatsPool(recipe.attention_hidden, recipe.statistics == "mean_std", name="pool")(x, frame_mask=mask)
    # Clip-level differences are small next to the frames' spread: standardise the pooled statistics
    # (as the ridge's inputs are), an affine map at inference.
    pooled = keras.layers.BatchNormalization(name="pooled_norm")(pooled)
    pooled = keras.layers.Dropout(recipe.dropout, name="pooled_dropout")(pooled)
    return keras.layers.Dense(n_classes, name="logits", dtype="float32")(pooled)


def _tuned_blocks(recipe: TunedRecipe, n_heads: int, weights: list[dict[str, np.ndarray]], width: int):
    blocks = []
    for number, pinned in zip(recipe.tuned_blocks, weights):
        block = WhisperBlock(width, n_heads, name=f"block{number}")
        block.build((None, None, width))
        block.set_pinned(pinned)
        if recipe.adapter == "lora":
            for name in PROJECTIONS:
                getattr(block, name).enable_lora(recipe.lora_rank)
            block.ln1.trainable = block.ln2.trainable = False
        blocks.append(block)
    return blocks


def build_tuned_model(recipe: TunedRecipe, *, width: int = 512, n_heads: int | None = None,
                      block_weights: list[dict[str, np.ndarray]] | None = None,
                      params: EmbeddingParams = EmbeddingParams()) -> keras.Model:
    """The CPU route's model: frozen frames of ``recipe.input_layers`` in, six logits out.

    Inputs ``frames`` (batch, frames, len(input_layers), width) and ``mask`` (batch, frames), 1 for a
    real frame. The tuned blocks start from the pinned weights (read unless ``block_weights`` given).
    """
    if recipe.tuned_blocks and block_weights is None:
        n_heads, block_weights = load_block_weights(recipe.tuned_blocks, params)
    frames = keras.Input((None, len(recipe.input_layers), width), name="frames")
    mask = keras.Input((None,), name="mask")
    layers = {layer: frames[:, :, i] for i, layer in enumerate(recipe.input_layers)}
    x = layers[recipe.base_layer]
    for number, block in zip(recipe.tuned_blocks, _tuned_blocks(recipe, n_heads or 8, block_weights or [], width)):
        x = block(x, frame_mask=mask)
        layers[number] = x
    stacked = ops.stack([layers[layer] for layer in recipe.read_layers], axis=2)
    return keras.Model({"frames": frames, "mask": mask}, _head(stacked, mask, recipe, width, len(EMOTIONS)),
                       name="whisper_tuned")


def _stem_weights(params: EmbeddingParams):
    from ser_core.inference.whisper_encoder import read_ct2_variables
    from ser_core.inference.whisper_weights import resolve_weights

    weights = resolve_weights(params.model, allow_download=False, expected_sha256=params.weights_sha256)
    _, variables = read_ct2_variables(weights.files, prefix="encoder/")
    get = lambda name: np.asarray(variables[f"encoder/{name}"], np.float32)  # noqa: E731
    positions = (get("position_encodings/encodings") if "encoder/position_encodings/encodings" in variables
                 else None)
    return get("conv1/weight"), get("conv1/bias"), get("conv2/weight"), get("conv2/bias"), positions


class _Positions(keras.layers.Layer):
    def __init__(self, table: np.ndarray, **kwargs) -> None:
        super().__init__(**kwargs)
        self.table = self.add_weight(shape=table.shape, initializer="zeros", trainable=False, name="table")
        self.table.assign(table)

    def call(self, x):
        return x + ops.cast(self.table[: ops.shape(x)[1]], x.dtype)


def build_encoder(up_to_layer: int = 6, *, params: EmbeddingParams = EmbeddingParams(), trainable_from: int | None = None,
                  adapter: str = "full", lora_rank: int = 8) -> keras.Model:
    """The encoder itself: log-mel ``mel`` (batch, mel frames, 80) and ``mel_mask`` in; ``hidden``
    (batch, frames, up_to_layer + 1, width) and ``mask`` (batch, frames) out.

    Padded mel frames must be zeros (the numpy encoder pads with zeros too); the stem's output is
    masked before the strided convolution, so a padded batch gives each clip's unpadded answer.
    Blocks from ``trainable_from`` on are trainable (fully or through adapters); the rest are frozen.
    """
    conv1_w, conv1_b, conv2_w, conv2_b, positions = _stem_weights(params)
    width, n_mels, _ = conv1_w.shape
    if positions is None:  # Whisper's sinusoidal table, for conversions that leave it out
        inv = np.exp(-np.log(10_000.0) / (width // 2 - 1) * np.arange(width // 2))
        scaled = np.arange(1500)[:, None] * inv[None, :]
        positions = np.concatenate([np.sin(scaled), np.cos(scaled)], axis=1).astype(np.float32)
    n_heads, blocks = load_block_weights(tuple(range(1, up_to_layer + 1)), params)
    mel = keras.Input((None, n_mels), name="mel")
    mel_mask = keras.Input((None,), name="mel_mask")
    conv1 = keras.layers.Conv1D(width, 3, padding="same", name="conv1", trainable=False)
    conv2 = keras.layers.Conv1D(width, 3, strides=2, padding="valid", name="conv2", trainable=False)
    x = ops.gelu(conv1(mel), approximate=False) * ops.cast(mel_mask, mel.dtype)[..., None]
    x = ops.gelu(conv2(keras.layers.ZeroPadding1D(1)(x)), approximate=False)
    conv1.set_weights([conv1_w.transpose(2, 1, 0), conv1_b])
    conv2.set_weights([conv2_w.transpose(2, 1, 0), conv2_b])
    x = _Positions(positions, name="positions")(x)
    mask = mel_mask[:, ::2]
    hidden = [x]
    for number, pinned in zip(range(1, up_to_layer + 1), blocks):
        block = WhisperBlock(width, n_heads, name=f"block{number}")
        block.build((None, None, width))
        block.set_pinned(pinned)
        if trainable_from is None or number < trainable_from:
            block.trainable = False
        elif adapter == "lora":
            for name in PROJECTIONS:
                getattr(block, name).enable_lora(lora_rank)
            block.ln1.trainable = block.ln2.trainable = False
        x = block(x, frame_mask=mask)
        hidden.append(x)
    return keras.Model({"mel": mel, "mel_mask": mel_mask}, {"hidden": ops.stack(hidden, axis=2), "mask": mask},
                       name="whisper_encoder")


def build_end_to_end(recipe: TunedRecipe, params: EmbeddingParams = EmbeddingParams()) -> keras.Model:
    """The GPU route's model: log-mel in, six logits out, blocks below the tuned ones frozen."""
    encoder = build_encoder(recipe.top_layer, params=params,
                            trainable_from=recipe.tuned_blocks[0] if recipe.tuned_blocks else None,
                            adapter=recipe.adapter, lora_rank=recipe.lora_rank)
    out = encoder(encoder.inputs)
    stacked = ops.take(out["hidden"], np.array(recipe.read_layers), axis=2)
    logits = _head(stacked, out["mask"], recipe, stacked.shape[-1], len(EMOTIONS))
    return keras.Model(encoder.inputs, logits, name="whisper_tuned_e2e")


def _find_block(model: keras.Model, number: int) -> WhisperBlock:
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, WhisperBlock) and layer.name == f"block{number}":
            return layer
    raise KeyError(f"block{number}")


def export_tuned(model: keras.Model, recipe: TunedRecipe, path: str | Path, *,
                 params: EmbeddingParams = EmbeddingParams(), extra: dict[str, Any] | None = None,
                 base_blocks: tuple[int, list[dict[str, np.ndarray]]] | None = None) -> str:
    """Write what ``model`` learnt as ``inference.tuned_head``'s pickle-free ``.npz``; returns its SHA-256.

    Adapters: only their low-rank factors (and the blocks' biases); full fine-tuning: each kernel's
    change from the pinned one in int8 (per output column), norms and biases in float32 (about
    3 MB a block). The frozen encoder's weights are never written. ``base_blocks``: the pinned
    weights of the tuned blocks, when already read.
    """
    arrays: dict[str, np.ndarray] = {}
    mean, std = model.get_layer("standardise").get_weights()
    arrays["layer_mean"], arrays["layer_std"] = mean.astype(np.float32), std.astype(np.float32)
    arrays["layer_logits"] = model.get_layer("layer_mix").get_weights()[0].astype(np.float32)
    pool = model.get_layer("pool")
    arrays["pool_w1"], arrays["pool_b1"] = (w.astype(np.float32) for w in pool.score_hidden.get_weights())
    arrays["pool_w2"], arrays["pool_b2"] = (w.astype(np.float32) for w in pool.score.get_weights())
    gamma, beta, moving_mean, moving_var = model.get_layer("pooled_norm").get_weights()
    scale = gamma / np.sqrt(moving_var + model.get_layer("pooled_norm").epsilon)
    arrays["pooled_scale"], arrays["pooled_shift"] = scale.astype(np.float32), (beta - moving_mean * scale).astype(np.float32)
    arrays["out_w"], arrays["out_b"] = (w.astype(np.float32) for w in model.get_layer("logits").get_weights())
    lora_scale = 1.0
    base: dict[int, dict[str, np.ndarray]] = {}
    if recipe.adapter == "full" and recipe.tuned_blocks:
        base = dict(zip(recipe.tuned_blocks, (base_blocks or load_block_weights(recipe.tuned_blocks, params))[1]))
    for number in recipe.tuned_blocks:
        block = _find_block(model, number)
        prefix = f"block{number}/"
        for name in PROJECTIONS:
            dense = getattr(block, name)
            arrays[prefix + f"{name}_b"] = ops.convert_to_numpy(dense.bias).astype(np.float32)
            if recipe.adapter == "lora":
                arrays[prefix + f"{name}_lora_a"] = ops.convert_to_numpy(dense.lora_kernel_a).astype(np.float32)
                arrays[prefix + f"{name}_lora_b"] = ops.convert_to_numpy(dense.lora_kernel_b).astype(np.float32)
                lora_scale = float(dense.lora_alpha) / float(dense.lora_rank)
            else:  # the change from the pinned kernel, int8 per output column (a float16 block is 6 MB)
                delta = ops.convert_to_numpy(dense.kernel).astype(np.float32) - base[number][f"{name}_w"]
                scale = np.maximum(np.abs(delta).max(axis=0), 1e-12) / 127.0
                arrays[prefix + f"{name}_delta_q"] = np.round(delta / scale).astype(np.int8)
                arrays[prefix + f"{name}_delta_scale"] = scale.astype(np.float32)
        if recipe.adapter == "full":
            for norm, (g, b) in (("ln1", block.ln1.get_weights()), ("ln2", block.ln2.get_weights())):
                arrays[prefix + f"{norm}_g"], arrays[prefix + f"{norm}_b"] = g.astype(np.float32), b.astype(np.float32)
    config = {"format": FORMAT, "kind": "whisper_tuned", "emotions": list(EMOTIONS), "recipe": recipe.to_dict(),
              "read_layers": list(recipe.read_layers), "base_layer": recipe.base_layer,
              "tuned_blocks": list(recipe.tuned_blocks), "lora_scale": lora_scale, "front_end": params.to_dict(),
              **(extra or {})}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, config=np.array(json.dumps(config)), **arrays)
    data = buffer.getvalue()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp.npz")
    temporary.write_bytes(data)
    temporary.replace(path)
    return hashlib.sha256(data).hexdigest()
