"""Checks for train.py's command-line numbers, run by the argument parser before any work starts.

Each factory returns an ``argparse`` type: it converts the text, and refuses a value out of range
(or not finite) with a message naming the value, which argparse prints after the option's name:
``argument --epochs: 0 is not a whole number of at least 1``.
"""

from __future__ import annotations

import argparse
import math
from typing import Callable

from ser_core.training.recipes import MemberRecipe

__all__ = ["check_folds", "cv_option", "member_spec", "number", "whole_number"]


def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type accepting integers of at least ``minimum``."""
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"{text} is not a whole number of at least {minimum}")
        return value

    return convert


def cv_option(text: str) -> int | str:
    """``--cv``: "corpus" (leave one corpus out) or a whole number of folds, at least 2."""
    return "corpus" if text == "corpus" else whole_number(2)(text)


def number(*, above: float | None = None, low: float | None = None, high: float | None = None,
           hint: str = "") -> Callable[[str], float]:
    """An argparse type accepting finite numbers, greater than ``above`` and within [``low``, ``high``]
    where given; ``hint`` is added to the refusal."""
    bounds = [f"above {above:g}" if above is not None else "", f"at least {low:g}" if low is not None else "",
              f"at most {high:g}" if high is not None else ""]
    wanted = " and ".join(b for b in bounds if b) or "finite"

    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if (not math.isfinite(value) or (above is not None and value <= above)
                or (low is not None and value < low) or (high is not None and value > high)):
            raise argparse.ArgumentTypeError(f"{text} is not a finite number {wanted}{hint}")
        return value

    return convert


def member_spec(text: str) -> MemberRecipe:
    """An argparse type for ``--members``: a checked ``MemberRecipe``."""
    try:
        return MemberRecipe.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def check_folds(parser: argparse.ArgumentParser, cv: int | None, folds: list[int] | None) -> None:
    """``--folds`` only with ``--cv``, and each a fold of it (0-based); otherwise ``parser.error``."""
    if folds is None:
        return
    if cv is None:
        parser.error("argument --folds: chooses folds of a cross-validation; give --cv K too")
    for fold in folds:
        if not 0 <= fold < cv:
            parser.error(f"argument --folds: {fold} is not a fold of --cv {cv} (0 to {cv - 1})")
