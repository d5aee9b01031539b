"""The command-line options that name training data: ``--data NAME[=DIR] ...`` and its aliases.

    python train.py --data ravdess=../shared/data/ravdess tess=../shared/data/tess nemo=DIR turev=DIR
    python train.py --data ravdess crema        # no folder: download with kagglehub
    python train.py --ravdess-dir DIR --crema-dir DIR   # the older spelling, still accepted

``train.py`` calls :func:`add_corpus_arguments` on its parser and :func:`clips_from_arguments` on
the parsed arguments; with no data option at all, every corpus with a local copy in ``../shared/data``
is read (``registry.default_sources``), and :data:`registry.DEFAULT_CORPORA` are downloaded when there is none.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ser_core.data.corpora import Clip, DataUnavailableError, ScanReport
from ser_core.data.labels import CALM_CHOICES
from ser_core.data.registry import CORPORA, DEFAULT_CORPORA, LOCAL_DATA, default_sources, gather_corpora

__all__ = ["add_corpus_arguments", "clips_from_arguments", "corpus_sources", "parse_data_spec"]


def parse_data_spec(text: str) -> tuple[str, Path | None]:
    """One ``--data`` value: ``"tess=DIR"`` -> ``("tess", Path(DIR))``, ``"tess"`` -> ``("tess", None)``.

    Parameters
    ----------
    text : str
        ``NAME`` or ``NAME=DIR``, NAME a key of :data:`registry.CORPORA` in any case.

    Returns
    -------
    (name, folder)
        The folder is None when only the name is given (download it).

    Raises
    ------
    argparse.ArgumentTypeError
        An unknown name, an empty folder after ``=``, or a folder that does not exist.

    Examples
    --------
    >>> parse_data_spec("TESS")
    ('tess', None)
    """
    name, equals, folder = text.partition("=")
    name = name.strip().lower()
    if name not in CORPORA:
        raise argparse.ArgumentTypeError(
            f"unknown corpus {name!r}{f' in {text!r}' if equals else ''}: write NAME or NAME=DIR with NAME one of "
            f"{', '.join(CORPORA)}, e.g. tess=../shared/data/tess")
    if not equals:
        return name, None
    if not folder.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: give a folder after '=', e.g. {name}=../shared/data/{name}")
    path = Path(folder.strip()).expanduser()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r}: {path} is not a directory")
    return name, path


def add_corpus_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--data``, ``--ravdess-dir``, ``--crema-dir`` and ``--calm-as`` to ``parser``."""
    group = parser.add_argument_group("data")
    group.add_argument(
        "--data", nargs="+", action="extend", type=parse_data_spec, metavar="NAME[=DIR]",
        help=f"corpora to train on, NAME one of {', '.join(CORPORA)}; NAME=DIR reads a local copy, a bare "
             f"NAME downloads it with kagglehub (default: every corpus found in {LOCAL_DATA}, "
             f"else {' '.join(DEFAULT_CORPORA)}, downloaded)")
    group.add_argument("--ravdess-dir", help="same as --data ravdess=DIR (Actor_NN/03-01-...)")
    group.add_argument("--crema-dir", help="same as --data crema=DIR (AudioWAV/1001_DFA_ANG_XX.wav)")
    group.add_argument("--calm-as", choices=CALM_CHOICES, default="drop",
                       help="TurEV-DB's Calm clips: count them as neutral, or drop them (default; calm is "
                            "not neutral, and nobody has measured which helps). RAVDESS calm is never neutral")


def corpus_sources(args: argparse.Namespace) -> dict[str, Path | None]:
    """Corpus name -> folder (None: download) from ``--data`` and the two aliases, in the order given.

    Raises
    ------
    DataUnavailableError
        A corpus named twice.
    """
    given: list[tuple[str, Path | None]] = list(getattr(args, "data", None) or [])
    for name in ("ravdess", "crema"):
        folder = getattr(args, f"{name}_dir", None)
        if folder is not None:
            given.append((name, Path(folder)))
    sources: dict[str, Path | None] = {}
    for name, folder in given:
        if name in sources:
            raise DataUnavailableError(f"{name} is given twice (--data and --{name}-dir, or twice in --data): "
                                       "give each corpus once")
        sources[name] = folder
    return sources


def clips_from_arguments(args: argparse.Namespace) -> tuple[list[Clip], list[ScanReport]]:
    """The clips the parsed options name: :func:`registry.gather_corpora` of :func:`corpus_sources`.

    Uses ``args.auxiliary_emotions`` when the parser has it. With no data option, every corpus with a
    local copy (:func:`registry.default_sources`), else downloads :data:`registry.DEFAULT_CORPORA`.

    Raises
    ------
    DataUnavailableError
        With a message that says what to pass instead (``--data NAME=DIR``).
    """
    sources = corpus_sources(args) or default_sources()
    return gather_corpora(sources, auxiliary=getattr(args, "auxiliary_emotions", False),
                          calm_as=getattr(args, "calm_as", "drop"))
