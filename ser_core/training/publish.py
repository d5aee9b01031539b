"""Putting a finished run's model where the app serves it, keeping the one it replaces.

A run writes its model and reports into ``<run-dir>/artifacts/`` first. Only when it has
finished and been scored does :func:`publish` copy them into the served folder (a hidden staging
folder beside it, so an interruption during the copy leaves nothing half-written), move the
served files into ``previous/`` and rename the new ones into place: renames within one folder,
the last step, taking microseconds. ``python train.py --restore-previous`` (:func:`restore_previous`)
swaps ``previous/`` and the served files back.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ser_core.inference import artifacts

__all__ = ["MODEL_FILES", "PREVIOUS_DIR", "REPORT_FILES", "SERVED_FILES", "publish", "restore_previous"]

MODEL_FILES = (artifacts.MODEL_FILE, artifacts.CONFIG_FILE, artifacts.METRICS_FILE, artifacts.HISTORY_FILE,
               artifacts.SPLIT_FILE)
# A model's own reports, served with it when its run wrote them; a model without one removes the last
# model's (it would describe another model), which moves to previous/ with that model.
REPORT_FILES = ("loco_whisper.json",)
SERVED_FILES = MODEL_FILES + REPORT_FILES
PREVIOUS_DIR = "previous"


def publish(run_artifacts: Path, served: Path) -> None:
    """Serve the model files of ``run_artifacts`` from ``served``, keeping the replaced ones in
    ``served/previous/``.

    Parameters
    ----------
    run_artifacts : Path
        A finished run's ``<run-dir>/artifacts`` with every file of ``MODEL_FILES`` (and those of
        ``REPORT_FILES`` it wrote).
    served : Path
        The folder the app reads (``artifacts/``); created when missing.
    """
    missing = [name for name in MODEL_FILES if not (run_artifacts / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{run_artifacts} lacks {', '.join(missing)}: the run did not finish")
    served.mkdir(parents=True, exist_ok=True)
    incoming = _fresh(served / f".incoming-{os.getpid()}")
    for name in SERVED_FILES:
        if (run_artifacts / name).is_file():
            shutil.copy2(run_artifacts / name, incoming / name)
    _swap(served, incoming)


def restore_previous(served: Path) -> bool:
    """Serve the model in ``served/previous/`` again; the one it replaces becomes the previous one.

    Returns False (and changes nothing) when there is no previous model."""
    previous = served / PREVIOUS_DIR
    if not (previous / artifacts.MODEL_FILE).is_file():
        return False
    incoming = _fresh(served / f".incoming-{os.getpid()}")
    for name in SERVED_FILES:
        if (previous / name).is_file():
            shutil.copy2(previous / name, incoming / name)
    _swap(served, incoming)
    return True


def _fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def _swap(served: Path, incoming: Path) -> None:
    """Move the served files into a new ``previous/`` and ``incoming``'s files into their place."""
    outgoing = _fresh(served / f".outgoing-{os.getpid()}")
    for name in SERVED_FILES:
        if (served / name).is_file():
            shutil.copy2(served / name, outgoing / name)
    # From here on only renames: the served files change together, in microseconds.
    for name in SERVED_FILES:
        if (incoming / name).is_file():
            os.replace(incoming / name, served / name)
        else:
            (served / name).unlink(missing_ok=True)
    if any(outgoing.iterdir()):
        shutil.rmtree(served / PREVIOUS_DIR, ignore_errors=True)
        os.replace(outgoing, served / PREVIOUS_DIR)
    else:
        outgoing.rmdir()
    incoming.rmdir()
