"""Where the trained model and its reports live, and how they are written: atomically, as JSON and .keras only."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ser_core.inference.linear_head import read_linear_head
from ser_core.inference.whisper_encoder import PRECISIONS
from ser_core.inference.model_record import record_problem

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_DIR = REPO_ROOT / "artifacts"

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.json"
SPLIT_FILE = "split.csv"
CURRENT_LINK = "current"  # artifacts/current -> models/<id>: the served model (ser_core.training.publish)

# With no --data, train.py reads every corpus in ../shared/data, or downloads them from Kaggle when there is none
TRAIN_COMMAND = ".venv/bin/python train.py"
RESTORE_OPTION = "--restore-previous"  # train.py serves the model the last run replaced again
WHISPER_KIND = "whisper_embedding_head"  # config.json "kind" of the Whisper embedding model


class ModelNotFoundError(FileNotFoundError):
    """No usable model in the artifacts folder; the message says what to do.

    ``kind`` is ``"missing"`` (no model there: train one) or ``"damaged"`` (see
    :class:`ModelDamagedError`); ``path`` is the file at fault.
    """

    kind = "missing"

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


class ModelDamagedError(ModelNotFoundError):
    """The model files exist but cannot be read (truncated, corrupt, not a Keras model, wrong
    config). A subclass of :class:`ModelNotFoundError`, so code that handles "no usable model"
    still catches it; check ``kind == "damaged"`` (or this class) to say which."""

    kind = "damaged"


def artifacts_dir() -> Path:
    """The artifacts folder: ``$SER_ARTIFACTS_DIR`` when set, else ``artifacts/`` in the repository."""
    override = os.environ.get("SER_ARTIFACTS_DIR")
    return Path(override) if override else ARTIFACTS_DIR


def served_model_dir(folder: Path | str | None = None) -> Path:
    """The directory that holds the served model's files, resolved once.

    ``folder/current`` (a link a training run swaps in one step) when it is there, else ``folder``
    itself (a fresh clone's committed layout). Read every file of one model from the directory this
    returns: a training run that publishes meanwhile then cannot hand a reader a mix of two models.
    """
    folder = Path(folder or artifacts_dir())
    link = folder / CURRENT_LINK
    if link.is_symlink():
        target = Path(os.path.realpath(link))
        if target.is_dir():
            return target
    return folder


def _replace_atomically(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes it owner-only; artifacts are for everyone to read
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_json(path: Path, data: Any, indent: int | None = 2) -> None:
    def write(temporary: str) -> None:
        with open(temporary, "w") as handle:
            json.dump(data, handle, indent=indent, separators=None if indent else (",", ":"))
            handle.write("\n")

    _replace_atomically(Path(path), write)


def write_text(path: Path, text: str) -> None:
    _replace_atomically(Path(path), lambda temporary: Path(temporary).write_text(text))


def save_array(path: Path, array: np.ndarray) -> None:
    """An ``.npy`` file written whole or not at all (no pickle), as the feature caches need when
    several processes fill them."""
    _replace_atomically(Path(path), lambda temporary: np.save(temporary, array, allow_pickle=False))


def save_model(model, path: Path) -> None:
    _replace_atomically(Path(path), lambda temporary: model.save(temporary))


def read_json_artifact(name: str, directory: Path | None = None) -> dict[str, Any] | None:
    """A JSON report of the served model (``directory``: its folder), or None when it is absent or unreadable."""
    path = served_model_dir(directory) / name
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _damaged(path: Path, what: str) -> ModelDamagedError:
    return ModelDamagedError(
        f"The model file {path} exists but {what}, so it cannot be used. It may be damaged (for "
        f"example a copy or download that stopped early). Train a new one with: {TRAIN_COMMAND} (add "
        f"{RESTORE_OPTION} to serve the model the last training replaced instead)",
        path,
    )


def load_model_and_config(directory: Path):
    """The model and its config from ``directory``, telling a missing model from a damaged one.

    Returns
    -------
    (keras.Model, dict)

    Raises
    ------
    ModelNotFoundError
        Neither ``model.keras`` nor ``config.json`` is there, or one of them is missing.
    ModelDamagedError
        A file is there but unreadable: truncated or corrupt model, config that is not JSON or
        lacks ``emotions`` and the front end (``feature_params``, or a Whisper model's ``front_end``,
        ``recipe`` and ``standardisation``).
    """
    directory = served_model_dir(directory)
    model_path, config_path = directory / MODEL_FILE, directory / CONFIG_FILE
    for path in (model_path, config_path):
        if not path.is_file():
            raise ModelNotFoundError(
                f"No trained model in {directory} ({path.name} is missing). "
                f"Train one with: {TRAIN_COMMAND}", path)
    try:
        # A one-layer head (the shipped Whisper model) is read without TensorFlow; the rest by Keras.
        model = read_linear_head(model_path) or load_model(model_path)
    except Exception as error:  # Keras says "File not found" for a truncated zip: never repeat it
        raise _damaged(model_path, "could not be loaded as a Keras model") from error
    try:
        with open(config_path) as handle:
            config = json.load(handle)
    except (OSError, ValueError) as error:
        raise _damaged(config_path, "is not readable JSON") from error
    if isinstance(config, dict) and config.get("kind") == WHISPER_KIND:
        needed = {"front_end", "recipe", "standardisation", "emotions"}
    else:
        needed = {"feature_params", "emotions"}
    if not isinstance(config, dict) or not needed <= config.keys():
        raise _damaged(config_path, f"lacks the model's settings ({', '.join(sorted(needed))})")
    serving = (config.get("serving") or {}).get("encoder_precision")
    if serving is not None and serving not in PRECISIONS:
        raise _damaged(config_path, f"has serving.encoder_precision {serving!r}, not one of {', '.join(PRECISIONS)}")
    problem = record_problem(config, model)
    if problem:
        raise _damaged(config_path, f"holds a value the model cannot use: {problem}")
    return model, config


def load_whisper_encoder(config: dict[str, Any]):
    """The Whisper encoder a Whisper model's config names, loaded once per process (SHA-256 checked):
    stopping after the highest of its ``recipe.layers``, its blocks in int8 or float32 as
    ``whisper_front.serving_precision`` reads the config.

    Raises
    ------
    ModelNotFoundError
        The encoder weights are not on this machine, or are not the pinned ones.
    """
    from ser_core.inference.params import EmbeddingParams
    from ser_core.inference.whisper_front import model_encoder
    from ser_core.inference.whisper_weights import WhisperWeightsError

    front_end = EmbeddingParams.from_dict(config["front_end"])
    try:
        return model_encoder(config)
    except (WhisperWeightsError, ValueError, OSError) as error:
        raise ModelNotFoundError(
            f"The model needs the Whisper {front_end.model} encoder weights, which are not usable here: {error}"
        ) from error


def load_model(path: Path):
    """Load a ``.keras`` model without running any code stored in it (safe mode, no Lambda layers)."""
    from ser_core import import_tensorflow_quietly

    import_tensorflow_quietly()
    import keras

    return keras.saving.load_model(path, compile=False, safe_mode=True)
