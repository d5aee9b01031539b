"""The shipped Whisper model's head read straight from its ``.keras`` file: no TensorFlow to load.

The head is one Dense layer (a logistic regression, ``training.embedding_model.logistic_as_keras``).
Keras would need TensorFlow for it: 3.2-3.4 s and 700 MiB before the first answer on this 2-core
machine (``python -m benchmarks.load``), for a matrix product. A ``.keras`` file is a zip of
``config.json`` (the architecture, as data) and ``model.weights.h5`` (the arrays), so this module
reads both with the standard library and h5py: nothing in the file is executed, as with Keras's
``safe_mode``. Any other architecture (the log-mel CNNs, the layer-mix head) is not a linear head,
and :func:`read_linear_head` returns None for Keras to load it.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["LinearHead", "read_linear_head"]


@dataclass(frozen=True)
class LinearHead:
    """``inputs @ kernel + bias``: what Keras's ``Input -> Dense(linear)`` model computes."""

    kernel: np.ndarray  # (d, n_outputs)
    bias: np.ndarray  # (n_outputs,)

    @property
    def input_shape(self) -> tuple[None, int]:
        """As a Keras model reports it: ``(None, d)``."""
        return None, int(self.kernel.shape[0])

    @property
    def output_shape(self) -> tuple[None, int]:
        return None, int(self.kernel.shape[1])

    def predict_on_batch(self, inputs: np.ndarray) -> np.ndarray:
        """The logits of a batch ``[n, d]``, as Keras's ``predict_on_batch`` returns them (float32)."""
        inputs = np.asarray(inputs, np.float32)
        if inputs.ndim != 2 or inputs.shape[1] != self.kernel.shape[0]:
            raise ValueError(f"expected inputs of shape [n, {self.kernel.shape[0]}], got {list(inputs.shape)}")
        return inputs @ self.kernel + self.bias


def _dense_width(config: dict[str, Any]) -> tuple[int, int] | None:
    """``(d, units)`` when the architecture is exactly ``Input(d) -> Dense(units, linear, bias)``."""
    if config.get("class_name") != "Functional":
        return None
    layers = (config.get("config") or {}).get("layers") or []
    if [layer.get("class_name") for layer in layers] != ["InputLayer", "Dense"]:
        return None
    # With only an input and a dense layer, the dense layer can only read that input.
    shape = (layers[0].get("config") or {}).get("batch_shape")
    settings = layers[1].get("config") or {}
    if not (isinstance(shape, list) and len(shape) == 2 and isinstance(shape[1], int)
            and settings.get("activation") == "linear" and settings.get("use_bias") is True
            and isinstance(settings.get("units"), int) and not settings.get("quantization_config")):
        return None
    return shape[1], settings["units"]


def read_linear_head(path: str | Path) -> LinearHead | None:
    """The head in a ``.keras`` file if it is one linear layer, else None (for Keras to load).

    Raises
    ------
    zipfile.BadZipFile, OSError, KeyError, ValueError
        The file is damaged: not a zip, or a linear head whose weights are missing or mis-shaped.
    """
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        width = _dense_width(config) if isinstance(config, dict) else None
        if width is None:
            return None
        weights_file = io.BytesIO(archive.read("model.weights.h5"))
    import h5py

    d, units = width
    with h5py.File(weights_file, "r") as weights:
        # Keras 3 stores a layer's variables under layers/<layer type>/vars/<i>; the input has none.
        found = [(weights[f"layers/{name}/vars/0"][...], weights[f"layers/{name}/vars/1"][...])
                 for name in weights["layers"] if f"layers/{name}/vars/1" in weights]
    if len(found) != 1:
        raise ValueError(f"{path}: expected the weights of one dense layer, found {len(found)}")
    kernel, bias = found[0]
    if kernel.shape != (d, units) or bias.shape != (units,):
        raise ValueError(f"{path}: dense weights of shapes {kernel.shape} and {bias.shape}, "
                         f"expected {(d, units)} and {(units,)}")
    return LinearHead(kernel.astype(np.float32), bias.astype(np.float32))
