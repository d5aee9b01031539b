"""A trained top of the Whisper encoder and its frame-level head, applied with numpy (no TensorFlow).

``train.py``'s Keras model (``ser_core.training.whisper_keras``) learns, on the frames of the frozen
encoder's lower blocks: the top K blocks (K = 0, 1 or 2; full fine-tuning or low-rank adapters on
their projections), a softmax weighting of the layers it reads, attentive statistics pooling over
the frames and a linear output. Only what it learnt is exported, into one ``.npz`` read with
``allow_pickle=False`` (a few hundred KB to a few MB, never the whole encoder); the pinned encoder
weights supply the rest, so this module re-reads them for the tuned blocks.

Input: the numpy encoder's hidden states of each speech segment (``WhisperEncoder.forward``'s
``hidden_states``, ``(n_layers + 1, frames, width)``), as ``inference.embedding`` computes them.
Each tuned block runs per segment (as the encoder does); the pooling spans every frame of every
segment.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ser_core.inference.params import EMOTIONS, EmbeddingParams

__all__ = ["FORMAT", "PROJECTIONS", "TunedHead", "block_forward", "layer_norm", "pinned_block_weights",
           "pool_attentive", "read_tuned_file", "softmax"]

FORMAT = "ser-whisper-tuned/1"
# The four projections of a block, as the Keras layers and the exported arrays name them.
PROJECTIONS = ("qkv", "out", "fc1", "fc2")
LAYER_NORM_EPS = 1e-5
_BLOCK_ARRAYS = ("ln1_g", "ln1_b", "qkv_w", "qkv_b", "out_w", "out_b", "ln2_g", "ln2_b", "fc1_w", "fc1_b",
                 "fc2_w", "fc2_b")


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = np.mean(centred * centred, axis=-1, keepdims=True)
    return centred / np.sqrt(var + LAYER_NORM_EPS) * gamma + beta


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return (0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))).astype(np.float32)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def pinned_block_weights(blocks: Sequence[int], params: EmbeddingParams = EmbeddingParams(),
                         model_dir: str | Path | None = None) -> tuple[int, list[dict[str, np.ndarray]]]:
    """The pinned encoder's weights of transformer blocks ``blocks`` (1-based, as the layer numbers).

    Returns
    -------
    n_heads : int
    weights : list of dict
        Per block, float32 arrays named as in :data:`_BLOCK_ARRAYS`; kernels ``(in, out)``, the
        query part of ``qkv`` unscaled (``block_forward`` scales it).
    """
    from ser_core.inference.whisper_encoder import read_ct2_variables
    from ser_core.inference.whisper_weights import resolve_weights

    weights = resolve_weights(params.model, model_dir=model_dir, allow_download=False,
                              expected_sha256=params.weights_sha256)
    _, variables = read_ct2_variables(weights.files, prefix="encoder/")

    def get(name: str) -> np.ndarray:
        value = variables[f"encoder/{name}"]
        scale = variables.get(f"encoder/{name.rsplit('/', 1)[0]}/weight_scale")
        if value.dtype.kind == "i" and scale is not None:
            return value.astype(np.float32) / np.asarray(scale, np.float32).reshape(-1, 1)
        return np.asarray(value, np.float32)

    out = []
    for block in blocks:
        p = f"layer_{block - 1}"
        out.append({
            "ln1_g": get(f"{p}/self_attention/layer_norm/gamma"), "ln1_b": get(f"{p}/self_attention/layer_norm/beta"),
            "qkv_w": get(f"{p}/self_attention/linear_0/weight").T.copy(),
            "qkv_b": get(f"{p}/self_attention/linear_0/bias"),
            "out_w": get(f"{p}/self_attention/linear_1/weight").T.copy(),
            "out_b": get(f"{p}/self_attention/linear_1/bias"),
            "ln2_g": get(f"{p}/ffn/layer_norm/gamma"), "ln2_b": get(f"{p}/ffn/layer_norm/beta"),
            "fc1_w": get(f"{p}/ffn/linear_0/weight").T.copy(), "fc1_b": get(f"{p}/ffn/linear_0/bias"),
            "fc2_w": get(f"{p}/ffn/linear_1/weight").T.copy(), "fc2_b": get(f"{p}/ffn/linear_1/bias"),
        })
    return int(variables["encoder/num_heads"]), out


def block_forward(x: np.ndarray, w: dict[str, np.ndarray], n_heads: int) -> np.ndarray:
    """One Whisper encoder block (pre-norm attention, then pre-norm MLP) on ``(frames, width)``."""
    t, d = x.shape
    dh = d // n_heads
    qkv = layer_norm(x, w["ln1_g"], w["ln1_b"]) @ w["qkv_w"] + w["qkv_b"]
    q, k, v = qkv.reshape(t, 3, n_heads, dh).transpose(1, 2, 0, 3)
    scores = softmax((q / np.sqrt(dh)) @ k.transpose(0, 2, 1))
    attn = (scores @ v).transpose(1, 0, 2).reshape(t, d)
    x = x + attn @ w["out_w"] + w["out_b"]
    y = _gelu(layer_norm(x, w["ln2_g"], w["ln2_b"]) @ w["fc1_w"] + w["fc1_b"])
    return (x + y @ w["fc2_w"] + w["fc2_b"]).astype(np.float32)


def pool_attentive(frames: np.ndarray, w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, b2: np.ndarray,
                   with_std: bool = True) -> np.ndarray:
    """Attentive statistics pooling: frame weights ``softmax(tanh(h W1 + b1) W2 + b2)``; weighted mean and std."""
    scores = (np.tanh(frames @ w1 + b1) @ w2 + b2)[:, 0]
    alpha = softmax(scores)[:, None]
    mean = (alpha * frames).sum(axis=0)
    if not with_std:
        return mean.astype(np.float32)
    var = (alpha * np.square(frames)).sum(axis=0) - np.square(mean)
    return np.concatenate([mean, np.sqrt(np.maximum(var, 0.0) + 1e-6)]).astype(np.float32)


def read_tuned_file(path: str | Path, sha256: str | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """The config and arrays of an exported tuned head, checked against ``sha256`` when given.

    Raises
    ------
    ValueError
        The file's hash differs from ``sha256``, or it is not a tuned-head file of this format.
    """
    data = Path(path).read_bytes()
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError(f"{path}: SHA-256 {hashlib.sha256(data).hexdigest()} differs from the pinned {sha256}")
    import io

    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    config = json.loads(str(arrays.pop("config")))
    if config.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} file (format {config.get('format')!r})")
    return config, arrays


@dataclass
class TunedHead:
    """The exported model: tuned blocks (pinned weights + what was learnt), layer mix, pooling, output.

    Build with :meth:`from_file`; score with :meth:`logits` on the encoder's hidden states.
    """

    config: dict
    arrays: dict[str, np.ndarray]
    blocks: list[dict[str, np.ndarray]]
    n_heads: int

    @classmethod
    def from_file(cls, path: str | Path, sha256: str | None = None, *, model_dir: str | Path | None = None,
                  base_blocks: tuple[int, list[dict[str, np.ndarray]]] | None = None) -> "TunedHead":
        """Read ``path`` and merge its learnt weights into the pinned encoder's tuned blocks.

        ``base_blocks`` (``pinned_block_weights``' answer) skips re-reading the encoder weights.
        """
        config, arrays = read_tuned_file(path, sha256)
        tuned = tuple(config["tuned_blocks"])
        n_heads, base = base_blocks or (pinned_block_weights(tuned, EmbeddingParams.from_dict(config["front_end"]),
                                                             model_dir) if tuned else (8, []))
        blocks = []
        for block, weights in zip(tuned, base):
            merged = dict(weights)
            for name in _BLOCK_ARRAYS:
                key = f"block{block}/{name}"
                if key in arrays:  # a tuned norm or bias
                    merged[name] = arrays[key].astype(np.float32)
            for projection in PROJECTIONS:
                q = f"block{block}/{projection}_delta_q"
                if q in arrays:  # fully fine-tuned: the change from the pinned kernel, int8 per column
                    merged[f"{projection}_w"] = merged[f"{projection}_w"] + (
                        arrays[q].astype(np.float32) * arrays[f"block{block}/{projection}_delta_scale"])
                a, b = f"block{block}/{projection}_lora_a", f"block{block}/{projection}_lora_b"
                if a in arrays:
                    merged[f"{projection}_w"] = merged[f"{projection}_w"] + float(config["lora_scale"]) * (
                        arrays[a].astype(np.float32) @ arrays[b].astype(np.float32))
            blocks.append(merged)
        return cls(config=config, arrays=arrays, blocks=blocks, n_heads=n_heads)

    @property
    def emotions(self) -> tuple[str, ...]:
        return tuple(self.config.get("emotions", EMOTIONS))

    def layer_frames(self, hidden_states: np.ndarray) -> np.ndarray:
        """``(frames, n_read, width)``: the layers the head reads, tuned blocks applied, for one segment."""
        read = tuple(self.config["read_layers"])
        base = int(self.config["base_layer"])
        x = np.asarray(hidden_states[base], np.float32)
        outputs = {layer: np.asarray(hidden_states[layer], np.float32) for layer in read if layer <= base}
        for block, weights in zip(self.config["tuned_blocks"], self.blocks):
            x = block_forward(x, weights, self.n_heads)
            outputs[block] = x
        return np.stack([outputs[layer] for layer in read], axis=1)

    def mixed_frames(self, segments: Sequence[np.ndarray]) -> np.ndarray:
        """``(frames, width)``: every segment's frames, tuned, standardised and mixed over the layers.

        Pool any span of them with :meth:`pooled_logits` (the whole clip, or a timeline window).
        """
        frames = np.concatenate([self.layer_frames(hidden) for hidden in segments])
        a = self.arrays
        normalised = (frames - a["layer_mean"]) / a["layer_std"]
        return np.einsum("tld,l->td", normalised, softmax(a["layer_logits"].astype(np.float64)).astype(np.float32))

    def logits(self, segments: Sequence[np.ndarray]) -> np.ndarray:
        """Six logits for one recording from the hidden states of each of its encoder segments."""
        return self.pooled_logits(self.mixed_frames(segments))

    def pooled_logits(self, mixed: np.ndarray) -> np.ndarray:
        """Six logits from ``mixed_frames`` rows (at least one frame)."""
        a = self.arrays
        pooled = pool_attentive(mixed, a["pool_w1"], a["pool_b1"], a["pool_w2"], a["pool_b2"],
                                self.config["recipe"].get("statistics", "mean_std") == "mean_std")
        pooled = pooled * a["pooled_scale"] + a["pooled_shift"]
        return (pooled @ a["out_w"] + a["out_b"]).astype(np.float32)
