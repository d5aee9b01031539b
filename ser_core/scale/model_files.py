"""The served model as bytes: shipped to every worker so that all of them answer with the driver's model."""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ser_core.inference import artifacts

__all__ = ["ModelFiles"]


@dataclass(frozen=True)
class ModelFiles:
    """``model.keras`` and ``config.json`` read once on the driver.

    ``model_hash`` (the first 16 hex digits of the SHA-256 of both files) goes into every output
    row, so results of different models are never mixed up.
    """

    model: bytes
    config: bytes

    @classmethod
    def read(cls, directory: str | Path | None = None) -> "ModelFiles":
        """Raises :class:`~ser_core.inference.artifacts.ModelNotFoundError` when a file is missing."""
        directory = Path(directory or artifacts.artifacts_dir())
        files = [directory / artifacts.MODEL_FILE, directory / artifacts.CONFIG_FILE]
        for path in files:
            if not path.is_file():
                raise artifacts.ModelNotFoundError(
                    f"No trained model in {directory} ({path.name} is missing). Train one with: "
                    f"{artifacts.TRAIN_COMMAND}", path)
        return cls(files[0].read_bytes(), files[1].read_bytes())

    @property
    def model_hash(self) -> str:
        digest = hashlib.sha256()
        for part in (self.model, self.config):
            digest.update(hashlib.sha256(part).digest())
        return digest.hexdigest()[:16]

    def load(self):
        """The :class:`~ser_core.inference.predictor.Predictor` of these files (written to a temporary folder first)."""
        from ser_core.inference.predictor import Predictor

        with tempfile.TemporaryDirectory(prefix="ser-model-") as folder:
            (Path(folder) / artifacts.MODEL_FILE).write_bytes(self.model)
            (Path(folder) / artifacts.CONFIG_FILE).write_bytes(self.config)
            return Predictor.from_artifacts(folder)
