"""Shared fixtures: synthetic corpora and one tiny trained model per session.

``tiny_artifacts`` trains the real pipeline (``train.main``) for two epochs on generated speech-like
audio and yields the artifacts folder; tests for the CLIs and the predictor reuse it.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
for path in (str(REPO_ROOT), str(TESTS_DIR)):
    if path not in sys.path:
        sys.path.insert(0, path)

import audio_factory  # noqa: E402
from app_helpers import committed_model_present, write_fake_artifacts  # noqa: E402

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL_RAVDESS = REAL_DATA / "ravdess"

# The tiny corpus: 6 actors (3 male, 3 female) x 6 emotions x 2 clips of 1.2 s synthetic speech.
TINY_ACTORS = (1, 2, 3, 4, 5, 6)
TINY_CLIPS_PER_EMOTION = 2


@dataclass(frozen=True)
class TrainedRun:
    """What ``tiny_artifacts`` built: the folders passed to ``train.main`` and its exit code."""

    artifacts: Path
    run_dir: Path
    cache_dir: Path
    data_dir: Path
    exit_code: int


def run_train(argv: list[str]) -> int:
    """``train.main(argv)`` as the command line runs it: train.py's own logging set-up takes effect
    (pytest's capture handlers are set aside meanwhile, then restored). Without ``--front-end`` it
    trains the log-mel CNN (the tiny synthetic runs); the Whisper path needs the encoder weights."""
    import train

    if "--front-end" not in argv:
        argv = ["--front-end", "log_mel", *argv]
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers.clear()
    try:
        return train.main(argv)
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


@pytest.fixture(scope="session")
def tiny_ravdess(tmp_path_factory) -> Path:
    """A RAVDESS-shaped folder of emotion-dependent synthetic speech (72 wav files)."""
    root = tmp_path_factory.mktemp("tiny_ravdess")
    audio_factory.make_ravdess(root, TINY_ACTORS, clips_per_emotion=TINY_CLIPS_PER_EMOTION, seconds=1.2)
    return root


@pytest.fixture(scope="session")
def tiny_run(tiny_ravdess, tmp_path_factory) -> TrainedRun:
    base = tmp_path_factory.mktemp("tiny_run")
    out, run_dir, cache = base / "artifacts", base / "run", base / "cache"
    code = run_train(["--ravdess-dir", str(tiny_ravdess), "--epochs", "2", "--artifacts", str(out),
                      "--run-dir", str(run_dir), "--cache-dir", str(cache), "--fresh", "--verbose", "0"])
    return TrainedRun(out, run_dir, cache, tiny_ravdess, code)


@pytest.fixture(scope="session")
def tiny_artifacts(tiny_run) -> Path:
    """Artifacts folder (model.keras, config.json, metrics.json, history.json, split.csv) of a tiny
    model trained once per session on synthetic data."""
    from ser_core.inference.artifacts import served_model_dir

    served = served_model_dir(tiny_run.artifacts)  # artifacts/current: the published model's own directory
    if tiny_run.exit_code != 0 or not (served / "model.keras").is_file():
        pytest.fail(f"tiny training run failed (exit code {tiny_run.exit_code})")
    return served


@pytest.fixture(scope="session")
def tiny_predictor(tiny_artifacts):
    from ser_core.inference.predictor import Predictor

    return Predictor.from_artifacts(tiny_artifacts)


@pytest.fixture(scope="session")
def real_ravdess() -> Path:
    if not REAL_RAVDESS.is_dir() or not any(REAL_RAVDESS.glob("Actor_*")):
        pytest.skip(f"real RAVDESS clips not found at {REAL_RAVDESS}")
    return REAL_RAVDESS


@pytest.fixture(scope="session")
def real_corpus():
    """``real_corpus("tess")``: the folder ``../shared/data/tess``, or a skip when it is absent."""
    def folder(name: str) -> Path:
        path = REAL_DATA / name
        if not path.is_dir() or not any(path.iterdir()):
            pytest.skip(f"real {name} clips not found at {path}")
        return path

    return folder


# The app tests' artifact folders (helpers in app_helpers).
@pytest.fixture(scope="session")
def model_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed artifacts when they hold a model, else a generated folder with an untrained one."""
    if committed_model_present():
        from ser_core.inference.artifacts import ARTIFACTS_DIR

        return ARTIFACTS_DIR
    return write_fake_artifacts(tmp_path_factory.mktemp("fake_artifacts"))


@pytest.fixture(scope="session")
def fake_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated reports without a model (evaluation pages only)."""
    return write_fake_artifacts(tmp_path_factory.mktemp("reports_only"), with_model=False)


@pytest.fixture
def empty_artifacts(tmp_path: Path) -> Path:
    directory = tmp_path / "no_artifacts"
    directory.mkdir()
    return directory
