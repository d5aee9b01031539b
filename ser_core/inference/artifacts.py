"""Where the trained model and its reports live, and how they are written: atomically, as JSON and .keras only."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_DIR = REPO_ROOT / "artifacts"

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.json"
SPLIT_FILE = "split.csv"

TRAIN_COMMAND = "python train.py --ravdess-dir ../shared/data/ravdess"


class ModelNotFoundError(FileNotFoundError):
    """No usable model in the artifacts folder; the message says how to train one."""


def artifacts_dir() -> Path:
    """The artifacts folder: ``$SER_ARTIFACTS_DIR`` when set, else ``artifacts/`` in the repository."""
    override = os.environ.get("SER_ARTIFACTS_DIR")
    return Path(override) if override else ARTIFACTS_DIR


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


def save_model(model, path: Path) -> None:
    _replace_atomically(Path(path), lambda temporary: model.save(temporary))


def read_json_artifact(name: str, directory: Path | None = None) -> dict[str, Any] | None:
    """A JSON report from the artifacts folder, or None when it is absent or unreadable."""
    path = Path(directory or artifacts_dir()) / name
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def load_model(path: Path):
    """Load a ``.keras`` model without running any code stored in it (safe mode, no Lambda layers)."""
    import keras

    return keras.saving.load_model(path, compile=False, safe_mode=True)
