"""Putting a finished run's model where the app serves it, in one atomic step, keeping the one it replaces.

The served folder (``artifacts/``) holds each model in a directory of its own, and two links::

    artifacts/current  -> models/<id>/   the served model: model.keras, config.json and the reports
    artifacts/previous -> models/<id>/   the model it replaced (``train.py --restore-previous``)
    artifacts/models/<id>/               model.keras, config.json, metrics.json, history.json,
                                         split.csv, loco_whisper.json (whisper): written together

A run writes its files into ``<run-dir>/artifacts/`` first. :func:`publish` copies them into a
hidden ``models/.incoming-*`` directory, renames it to ``models/<id>`` and then swaps the
``current`` link with one ``rename(2)``: a reader resolves ``current`` once (the inference
package's ``served_model_dir``) and so sees the old model or the new one, never a mix. The
reports a model's pages show live in its directory: they come and go with it.

A fresh clone has no ``current`` link: its committed files at the top of ``artifacts/`` are the
served model. The first publish copies them into ``models/`` (they become ``previous``). After
every switch the served model's files are copied to the top of ``artifacts/`` too, so that git
sees the served model where it always was (commit those to ship it) and older tools find it; the
readers of this package never read them while ``current`` is there.

Every step before the swap leaves the served model as it was; the steps after it (``previous``,
the copies at the top, pruning) are redone from a journal (``.publish.json``) by :func:`recover`, which every run calls at
its start, under the lock (:func:`artifacts_lock`) that keeps two runs off one folder.
"""

from __future__ import annotations

import datetime as dt
import filecmp
import json
import os
import secrets
import shutil
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ser_core.evaluation.loco_report import LOCO_FILE
from ser_core.inference import artifacts

__all__ = ["CURRENT_LINK", "LOCK_FILE", "MODEL_FILES", "MODELS_DIR", "PREVIOUS_DIR", "SERVED_FILES", "ArtifactsBusy",
           "ArtifactsNotWritable", "artifacts_lock", "check_writable", "deferred_interrupt", "publish", "recover",
           "quality_shortfall", "restore_previous"]

SERVED_FILES = (artifacts.MODEL_FILE, artifacts.CONFIG_FILE, artifacts.METRICS_FILE, artifacts.HISTORY_FILE,
                artifacts.SPLIT_FILE)  # every run writes these
MODEL_FILES = (*SERVED_FILES, LOCO_FILE)  # what belongs to one model (the Whisper run adds its LOCO report)
CURRENT_LINK = artifacts.CURRENT_LINK
PREVIOUS_DIR = "previous"
MODELS_DIR = "models"
LOCK_FILE = ".train.lock"
JOURNAL_FILE = ".publish.json"
STAGING_PREFIXES = (".incoming-", ".outgoing-", ".link-")
MIN_FREE_BYTES = 50 * 1024 * 1024  # room checked before a run: a model and its reports are 1-10 MB
# The quality gate: a new model whose held-out UAR is more than this below the served model's is not
# served without --force. Ten points is 3-5 times what chance moves a figure (one run of a recipe moves
# 2 points, a speaker partition 3, docs/experiments.md rows 18, 33, 45) and a fraction of what a broken
# run loses (issue 23: 105 clips, leave-one-corpus-out UAR 0.28 against the shipped 0.51).
FAR_BELOW = 0.10
LOCO_PROTOCOL = "leave one corpus out"
SPEAKERS_PROTOCOL = "held-out speakers"


# ------------------------------------------------------------------------------------------ the lock


class ArtifactsBusy(RuntimeError):
    """Another run holds the served folder's lock; ``holder`` is what it wrote (pid, start, command)."""

    def __init__(self, folder: Path, holder: dict) -> None:
        self.folder, self.holder = folder, holder
        who = (f"pid {holder.get('pid', '?')}, started {holder.get('started', '?')}: {holder.get('command', '?')}"
               if holder else "it has not said who it is yet")
        super().__init__(f"another train.py run is using {folder} ({who}). Wait for it to finish (or stop it), "
                         f"then run this again; nothing was changed")


class ArtifactsNotWritable(RuntimeError):
    """The served folder cannot take a new model (read-only, not a folder, or too little room)."""


@contextmanager
def artifacts_lock(folder: Path) -> Iterator[None]:
    """Hold ``folder``'s lock for the block: an ``flock`` on ``folder/.train.lock``, which the
    kernel releases when the holder dies, so a killed run never leaves it held.

    Raises
    ------
    ArtifactsBusy
        Another process holds it (the message names it).
    ArtifactsNotWritable
        The folder or its lock file cannot be created or written.
    """
    import fcntl

    folder = Path(folder)
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as error:
        raise ArtifactsNotWritable(f"the served folder {folder} is not writable ({error.strerror})") from error
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ArtifactsBusy(folder, _holder(descriptor)) from None
        holder = {"pid": os.getpid(), "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                  "command": " ".join([Path(sys.executable).name, *sys.argv])}
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, json.dumps(holder).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(descriptor, 0)
            if created and [path.name for path in folder.iterdir()] == [LOCK_FILE]:
                # A run that made the folder and put nothing in it leaves none. Unlinked while still held,
                # so a run that opened this file meanwhile finds it locked, and a later one makes a new one.
                (folder / LOCK_FILE).unlink(missing_ok=True)
                try:
                    folder.rmdir()
                except OSError:
                    pass
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


def _holder(descriptor: int) -> dict:
    try:
        return json.loads(os.pread(descriptor, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}


def check_writable(folder: Path, need_bytes: int = MIN_FREE_BYTES) -> None:
    """Raise :class:`ArtifactsNotWritable` unless a file can be written in ``folder`` and it has
    ``need_bytes`` free: checked before the work, not found out after it."""
    folder = Path(folder)
    probe = folder / f".incoming-probe-{os.getpid()}"
    try:
        probe.write_bytes(b"x")
    except OSError as error:
        raise ArtifactsNotWritable(f"cannot write in {folder} ({error.strerror})") from error
    finally:
        probe.unlink(missing_ok=True)
    free = shutil.disk_usage(folder).free
    if free < need_bytes:
        raise ArtifactsNotWritable(f"{folder} has {free / 1e6:.0f} MB free; a run needs {need_bytes / 1e6:.0f} MB "
                                   "there. Free some space first")


# ------------------------------------------------------------------------------------------ publishing


def publish(run_artifacts: Path, served: Path) -> Path:
    """Serve the model files of ``run_artifacts`` from ``served``; the replaced model becomes ``previous``.

    Parameters
    ----------
    run_artifacts : Path
        A finished run's ``<run-dir>/artifacts`` with every file of ``SERVED_FILES`` (and its
        ``loco_whisper.json`` when it wrote one).
    served : Path
        The folder the app reads (``artifacts/``); created when missing. The caller holds its lock.

    Returns
    -------
    Path
        The new model's directory (``served/models/<id>``).
    """
    run_artifacts, served = Path(run_artifacts), Path(served)
    missing = [name for name in SERVED_FILES if not (run_artifacts / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{run_artifacts} lacks {', '.join(missing)}: the run did not finish")
    served.mkdir(parents=True, exist_ok=True)
    recover(served)
    _adopt_legacy_layout(served)
    new = _stage(run_artifacts, served)
    try:
        _switch(served, new)
    except InterruptedAfterPublishing:
        raise
    except BaseException:  # failed before the swap (a full disk writing the journal, Ctrl-C): undo
        if _target(served / CURRENT_LINK) != new.resolve():
            shutil.rmtree(new, ignore_errors=True)
            (served / JOURNAL_FILE).unlink(missing_ok=True)
        raise
    return new


def restore_previous(served: Path) -> bool:
    """Serve the model in ``served/previous`` again; the one it replaces becomes the previous one.

    Returns False (and changes nothing) when there is no previous model."""
    served = Path(served)
    if not served.is_dir():
        return False
    recover(served)
    _adopt_legacy_layout(served)
    previous = _target(served / PREVIOUS_DIR)
    if previous is None or not (previous / artifacts.MODEL_FILE).is_file():
        return False
    _switch(served, previous)
    return True


def recover(served: Path) -> list[str]:
    """Finish or undo what a run that died while publishing left behind; returns what was done.

    A journal means the run died around the swap: if ``current`` already points at the new model
    the remaining steps are done, otherwise the new model is dropped (nothing was replaced).
    Staging folders (``.incoming-*``, ``.outgoing-*``, of this layout or of the older one that
    renamed files one by one) are removed, after the older layout's are used to undo a
    half-finished swap. Call it holding the lock.
    """
    served = Path(served)
    done: list[str] = []
    if not served.is_dir():
        return done
    done += _recover_file_by_file_swap(served)
    journal = _read_journal(served)
    if journal is not None:
        new = served / MODELS_DIR / journal["new"]
        if _target(served / CURRENT_LINK) == new.resolve():
            _finish(served, journal)
            done.append(f"finished publishing {new.name} (a run died after serving it)")
        else:
            if new.resolve() not in {_target(served / CURRENT_LINK), _target(served / PREVIOUS_DIR)}:
                shutil.rmtree(new, ignore_errors=True)
            (served / JOURNAL_FILE).unlink(missing_ok=True)
            done.append(f"dropped {new.name} (a run died before serving it; nothing had been replaced)")
    for folder in (served, served / MODELS_DIR):
        if not folder.is_dir():
            continue
        for leftover in folder.iterdir():
            if leftover.name.startswith(STAGING_PREFIXES):
                _remove(leftover)
                done.append(f"removed {leftover.name}")
    return done


def _stage(source: Path, served: Path) -> Path:
    """Copy a model's files into ``served/models/<id>``: a hidden folder, renamed when complete."""
    models = served / MODELS_DIR
    models.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = f"{stamp}-{os.getpid()}-{secrets.token_hex(3)}"
    incoming = models / f".incoming-{name}"
    try:
        incoming.mkdir()
        for file_name in MODEL_FILES:
            if (source / file_name).is_file():
                shutil.copy2(source / file_name, incoming / file_name)
        _fsync_folder(incoming)
        os.rename(incoming, models / name)
    except BaseException:  # a full disk, Ctrl-C: nothing is left behind and nothing was replaced
        shutil.rmtree(incoming, ignore_errors=True)
        raise
    return models / name


def _switch(served: Path, new: Path) -> None:
    """Serve ``new`` (a directory in ``served/models``): the journal, then the one atomic step,
    then ``previous`` and pruning (redone by :func:`recover` if the process dies meanwhile)."""
    current, previous = _target(served / CURRENT_LINK), _target(served / PREVIOUS_DIR)
    journal = {"new": new.name, "old_current": current.name if current else None,
               "old_previous": previous.name if previous else None}
    artifacts.write_json(served / JOURNAL_FILE, journal)
    with deferred_interrupt():  # the swap and what follows take milliseconds: let them finish
        _point(served / CURRENT_LINK, new)
        try:
            _finish(served, journal)
        except OSError as error:  # the new model is served; the journal lets the next run finish this
            print(f"warning: the new model is served, but tidying {served} failed ({error}); the next "
                  "train.py run finishes it", file=sys.stderr)


def _finish(served: Path, journal: dict) -> None:
    """After the swap: the replaced model becomes ``previous``, the older layout's top-level copy
    and every model neither current nor previous are removed, then the journal."""
    models = served / MODELS_DIR
    old_current = journal.get("old_current")
    if old_current and old_current != journal["new"] and (models / old_current).is_dir():
        _point(served / PREVIOUS_DIR, models / old_current)
    _copy_top_level(served)
    keep = {_target(served / CURRENT_LINK), _target(served / PREVIOUS_DIR)}
    for folder in models.iterdir():
        if folder.resolve() not in keep and not folder.name.startswith("."):
            _remove(folder)
    (served / JOURNAL_FILE).unlink(missing_ok=True)


def _adopt_legacy_layout(served: Path) -> None:
    """Bring the committed layout (model files at the top, ``previous/`` a real folder) into
    ``models/`` without changing what is served: a copy first, then the link, in one step."""
    previous = served / PREVIOUS_DIR
    if previous.is_dir() and not previous.is_symlink():
        models = served / MODELS_DIR
        models.mkdir(exist_ok=True)
        adopted = models / f"previous-{secrets.token_hex(3)}"
        os.rename(previous, adopted)
        _point(previous, adopted)
    if not (served / CURRENT_LINK).is_symlink() and (served / artifacts.MODEL_FILE).is_file():
        _point(served / CURRENT_LINK, _stage(served, served))


def _point(link: Path, target: Path) -> None:
    """Make ``link`` a relative symbolic link to ``target``, replacing any link or file there in one rename."""
    temporary = link.parent / f".link-{link.name}-{os.getpid()}"
    temporary.unlink(missing_ok=True)
    os.symlink(os.path.relpath(target, link.parent), temporary)
    os.replace(temporary, link)
    _fsync_folder(link.parent)


def _target(link: Path) -> Path | None:
    """Where a link points (resolved), or None when it is absent or dangling."""
    if not link.is_symlink():
        return None
    target = link.resolve()
    return target if target.is_dir() else None


def _read_journal(served: Path) -> dict | None:
    try:
        journal = json.loads((served / JOURNAL_FILE).read_text())
    except (OSError, ValueError):
        (served / JOURNAL_FILE).unlink(missing_ok=True)
        return None
    return journal if isinstance(journal, dict) and isinstance(journal.get("new"), str) else None


def _recover_file_by_file_swap(served: Path) -> list[str]:
    """Undo or finish a swap of the older layout (files renamed one by one from ``.incoming-<pid>``,
    the served ones first copied to ``.outgoing-<pid>``) that a run died in."""
    done = []
    for outgoing in sorted(served.glob(".outgoing-*")):
        incoming = served / outgoing.name.replace(".outgoing-", ".incoming-", 1)
        saved = [name for name in SERVED_FILES if (outgoing / name).is_file()]
        untouched = all((served / name).is_file() and filecmp.cmp(outgoing / name, served / name, shallow=False)
                        for name in saved)
        if not saved or untouched:
            done.append(f"removed {outgoing.name} (the served model had not been touched)")
            continue  # removed with the other staging folders
        if incoming.is_dir() and any(incoming.iterdir()):
            # Renames had begun (the copy was complete): the top level may be a mix. Serve the saved set.
            _point(served / CURRENT_LINK, _stage(outgoing, served))
            done.append(f"served the model saved in {outgoing.name} again (a run died half-way through replacing it)")
        else:
            # Every new file was in place; only the move of the old ones to previous/ was missing.
            _adopt_legacy_layout(served)
            _point(served / PREVIOUS_DIR, _stage(outgoing, served))
            done.append(f"kept the model saved in {outgoing.name} as the previous one")
    if done:
        _copy_top_level(served)
    return done


def _copy_top_level(served: Path) -> None:
    """Copy the served model's files to the top of ``artifacts/`` (the committed layout), for git and
    for whoever reads those paths; a file the model lacks is removed there. The app, ``predict`` and
    ``evaluate`` read ``current`` instead: these copies change file by file, after the switch."""
    current = _target(served / CURRENT_LINK)
    if current is None:
        return
    for name in MODEL_FILES:
        source, destination = current / name, served / name
        if not source.is_file():
            _remove(destination)
        elif not (destination.is_file() and not destination.is_symlink()
                  and filecmp.cmp(source, destination, shallow=False)):
            temporary = served / f".incoming-top-{os.getpid()}-{name}"
            try:
                shutil.copy2(source, temporary)
                os.replace(temporary, destination)
            finally:
                temporary.unlink(missing_ok=True)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def _fsync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


# ------------------------------------------------------------------------------------------ quality gate


def held_out_uar(model_dir: Path) -> tuple[str, dict[str, float]] | None:
    """A model's held-out UAR as its files record it: ``("leave one corpus out", {corpus: uar})``
    (a Whisper model's ``config.json`` ``loco``) or ``("held-out speakers", {"all": uar})`` (the
    CNN's ``metrics.json`` test, else validation, speakers); None when neither is there."""
    config = artifacts.read_json_artifact(artifacts.CONFIG_FILE, model_dir) or {}
    loco = (config.get("loco") or {}).get("uar") if isinstance(config.get("loco"), dict) else None
    if isinstance(loco, dict) and loco and all(_is_number(value) for value in loco.values()):
        return LOCO_PROTOCOL, {str(corpus): float(value) for corpus, value in loco.items()}
    metrics = artifacts.read_json_artifact(artifacts.METRICS_FILE, model_dir) or {}
    for section in ("test", "validation"):
        uar = (metrics.get(section) or {}).get("uar") if isinstance(metrics.get(section), dict) else None
        if _is_number(uar):
            return SPEAKERS_PROTOCOL, {"all": float(uar)}
    return None


def quality_shortfall(new_dir: Path, served: Path) -> str | None:
    """Why the model in ``new_dir`` should not replace the one ``served`` serves, or None.

    Compared on the same protocol (leave-one-corpus-out figures on the corpora both held out), or a
    new held-out-speaker figure against a served leave-one-corpus-out one (the easier test scoring far
    lower is worse still); never the other way round, nor when either has no figures.
    """
    served_dir = artifacts.served_model_dir(served)
    if not (served_dir / artifacts.MODEL_FILE).is_file():
        return None
    new, old = held_out_uar(new_dir), held_out_uar(served_dir)
    if new is None or old is None:
        return None
    (new_protocol, new_uar), (old_protocol, old_uar) = new, old
    if new_protocol == old_protocol == LOCO_PROTOCOL:
        corpora = sorted(set(new_uar) & set(old_uar))
        if not corpora:
            return None
        new_mean, old_mean = (sum(uar[c] for c in corpora) / len(corpora) for uar in (new_uar, old_uar))
        on = f"{LOCO_PROTOCOL}, mean over {', '.join(corpora)}"
    elif new_protocol == SPEAKERS_PROTOCOL:
        new_mean, old_mean = (sum(uar.values()) / len(uar) for uar in (new_uar, old_uar))
        on = new_protocol if old_protocol == new_protocol else f"{new_protocol}; the served model: {old_protocol}"
    else:
        return None
    if new_mean >= old_mean - FAR_BELOW:
        return None
    return (f"The new model is far worse than the one served: held-out UAR {new_mean:.2f} against {old_mean:.2f} "
            f"({on}; more than {FAR_BELOW:.2f} lower counts as far).")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


# ------------------------------------------------------------------------------------------ Ctrl-C


class InterruptedAfterPublishing(KeyboardInterrupt):
    """Ctrl-C arrived while the new model was being switched in: the switch was finished first."""


@contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold back Ctrl-C (SIGINT) for the block and raise it after, as :class:`InterruptedAfterPublishing`;
    outside the main thread (where signals cannot be handled) the block just runs."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[float] = []
    previous = signal.signal(signal.SIGINT, lambda *_: received.append(time.monotonic()))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise InterruptedAfterPublishing()
