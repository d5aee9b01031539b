"""Check a model's record (``config.json`` and the weights beside it) once, when it is loaded.

A ``config.json`` edited by hand or damaged on disk used to fail late and badly: a traceback in the
command line, an exception box on every page, or "Angry - nan % confidence" with exit status 0.
:func:`record_problem` looks at every field the predictor reads (types, ranges, shapes, finite
values) and names the first bad one; :func:`ser_core.inference.artifacts.load_model_and_config`
then refuses the model as damaged. Optional fields are checked only when present, so a newer
config with more fields still loads.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["record_problem"]

# Transformer blocks per Whisper size (hidden states 0..n: 0 is the convolutional stem).
_WHISPER_BLOCKS = {"tiny": 4, "base": 6, "small": 12, "medium": 24, "large": 32}
_TEMPERATURES = ("temperature", "temperature_adapted", "temperature_self_trained")


def _number(value: Any) -> float | None:
    """``value`` as a finite float, or None (bools, strings and NaN are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _finite_vector(value: Any) -> np.ndarray | None:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return array if array.ndim == 1 and array.size and np.all(np.isfinite(array)) else None


def _weights_problem(model: Any) -> str | None:
    arrays = [model.kernel, model.bias] if hasattr(model, "kernel") else list(model.get_weights())
    for array in arrays:
        array = np.asarray(array)
        if np.issubdtype(array.dtype, np.number) and not np.all(np.isfinite(array)):
            return "the weights in model.keras hold non-finite numbers (NaN or infinity)"
    return None


def _whisper_problem(config: dict[str, Any], model: Any) -> str | None:
    from ser_core.inference.params import EmbeddingParams

    try:
        front_end = EmbeddingParams.from_dict(config["front_end"])
    except (TypeError, ValueError, AttributeError) as error:
        return f"front_end is not a valid front end ({error})"
    recipe = config["recipe"]
    if not isinstance(recipe, dict):
        return "recipe must be a mapping"
    layers = recipe.get("layers")
    blocks = next((n for size, n in _WHISPER_BLOCKS.items() if front_end.model.startswith(size)), None)
    if (not isinstance(layers, list) or not layers
            or not all(isinstance(layer, int) and not isinstance(layer, bool) and layer >= 0 for layer in layers)):
        return f"recipe.layers must be a list of encoder layer numbers, not {layers!r}"
    if blocks is not None and max(layers) > blocks:
        return f"recipe.layers asks for layer {max(layers)}; Whisper {front_end.model} has layers 0 to {blocks}"
    if recipe.get("statistics") not in ("mean", "mean_std"):
        return f"recipe.statistics must be 'mean' or 'mean_std', not {recipe.get('statistics')!r}"
    default = config["standardisation"].get("default") if isinstance(config["standardisation"], dict) else None
    if not isinstance(default, dict):
        return "standardisation.default is missing"
    mean, std = _finite_vector(default.get("mean")), _finite_vector(default.get("std"))
    if mean is None:
        return "standardisation.default.mean must be a list of finite numbers"
    if std is None:
        return "standardisation.default.std must be a list of finite numbers"
    if np.any(std <= 0):
        return "standardisation.default.std must be above zero everywhere (it divides)"
    width = model.input_shape[-1] if getattr(model, "input_shape", None) else None
    for field, vector in (("mean", mean), ("std", std)):
        if width is not None and vector.size != width:
            return f"standardisation.default.{field} has {vector.size} numbers; the model reads {width}"
    return None


def record_problem(config: dict[str, Any], model: Any) -> str | None:
    """What is wrong with a loaded model's record, naming the field; None when it can be served.

    Parameters
    ----------
    config : dict
        The parsed ``config.json`` (its required keys already present).
    model : LinearHead or keras.Model
        The loaded head or network.

    Examples
    --------
    >>> record_problem({"emotions": ["angry", "sad"], "temperature": "hot", "feature_params": {}}, model)
    "temperature must be a number above 0, not 'hot'"
    """
    emotions = config.get("emotions")
    if (not isinstance(emotions, list) or len(emotions) < 2 or len(set(map(str, emotions))) != len(emotions)
            or not all(isinstance(e, str) and e for e in emotions)):
        return f"emotions must be a list of two or more different names, not {emotions!r}"
    outputs = getattr(model, "output_shape", None)
    if outputs and outputs[-1] is not None and outputs[-1] != len(emotions):
        return f"emotions names {len(emotions)} emotions; the model gives {outputs[-1]} answers"
    for field in _TEMPERATURES:
        if field in config:
            value = _number(config[field])
            if value is None or value <= 0:
                return f"{field} must be a number above 0, not {config[field]!r}"
    if "threshold" in config:
        value = _number(config["threshold"])
        if value is None or not 0.0 <= value <= 1.0:
            return f"threshold must be a number from 0 to 1, not {config['threshold']!r}"
    if "front_end" in config and "recipe" in config:
        problem = _whisper_problem(config, model)
    else:
        from ser_core.inference.params import FeatureParams

        try:
            FeatureParams.from_dict(config["feature_params"])
            problem = None
        except (TypeError, ValueError, AttributeError) as error:
            problem = f"feature_params is not valid ({error})"
    return problem or _weights_problem(model)
