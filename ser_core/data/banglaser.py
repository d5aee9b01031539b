"""BanglaSER and its extension (BanglaSER-Ext: disgust and fear only), Bangla speech by 15+ actors.

Layout ``Actor - NN/03-01-EE-II-SS-RR-NN.wav``: RAVDESS's seven fields (modality, channel, emotion,
intensity, statement, repetition, actor) with BanglaSER's own emotion codes, which differ from
RAVDESS's: 01 happy, 02 sad, 03 angry, 04 surprised, 05 neutral, 06 disgust, 07 fear. The speaker is
the name's last field (one release file of actor 40 sits in actor 41's folder). Because the names
look like RAVDESS's, a BanglaSER file is told apart by its ``Actor - NN`` folder.

Recorded on smartphones, headsets, laptops and microphones in several towns. The extension holds only
two emotions: a trap for per-speaker statistics and for "this kind of room means fear".
"""

from __future__ import annotations

import re
from pathlib import Path

from ser_core.data.corpora import Clip, ScanReport, audio_files, drop_duplicates
from ser_core.data.labels import clips_from_names

__all__ = ["BANGLASER_EMOTIONS", "in_banglaser_folder", "parse_banglaser_name", "scan_banglaser"]

BANGLASER_EMOTIONS = {"01": "happy", "02": "sad", "03": "angry", "04": "surprised", "05": "neutral",
                      "06": "disgust", "07": "fear"}
_ACTOR_FOLDER = re.compile(r"actor\s*-\s*\d+", re.IGNORECASE)


def in_banglaser_folder(path: str | Path) -> bool:
    """Whether a file sits in a folder named like BanglaSER's ``Actor - NN``."""
    return bool(_ACTOR_FOLDER.fullmatch(Path(path).parent.name.strip()))


def parse_banglaser_name(name: str | Path) -> tuple[str, str] | None:
    """``03-01-07-02-05-01-40.wav`` -> ``("40", "fear")``; None when not a BanglaSER name.

    Returns
    -------
    (speaker, emotion) or None
        The actor number as written and the canonical emotion word (``"surprised"`` for 04).

    Examples
    --------
    >>> parse_banglaser_name("Actor - 41/03-01-06-01-04-01-40.opus")
    ('40', 'disgust')
    """
    parts = Path(name).stem.split("-")
    if len(parts) != 7 or not all(len(part) == 2 and part.isdigit() for part in parts):
        return None
    emotion = BANGLASER_EMOTIONS.get(parts[2])
    return (parts[6], emotion) if emotion else None


def scan_banglaser(root: str | Path, *, auxiliary: bool = False,
                   calm_as: str = "drop") -> tuple[list[Clip], ScanReport]:
    """Clips of the six emotions from a BanglaSER (or BanglaSER-Ext) folder.

    Parameters
    ----------
    root : str or Path
        The folder holding the ``Actor - NN/`` folders; read at every depth.
    auxiliary : bool
        Keep "surprised" as an auxiliary emotion instead of skipping it.
    calm_as : str
        Accepted for the common loader signature; BanglaSER has no calm clips.

    Returns
    -------
    clips : list of Clip
        Sorted by path; speakers ``"banglaser_<actor>"`` from the names, e.g. ``"banglaser_40"``.
    report : ScanReport
    """
    report = ScanReport("banglaser")
    paths = drop_duplicates(audio_files(Path(root)), report)
    return clips_from_names(paths, "banglaser", parse_banglaser_name, report, auxiliary=auxiliary,
                            calm_as=calm_as), report
