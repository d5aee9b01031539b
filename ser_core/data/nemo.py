"""nEMO: emotional speech in Polish (9 speakers; anger, fear, happiness, neutral, sadness, surprised).

Layout ``samples/SPK_emotion_N.wav`` beside ``data.tsv`` (tab-separated: file_id, emotion,
raw_text, normalized_text, speaker_id, gender, age). The table is read first, for the speakers'
genders; a file it does not list, or a copy without it, is read from its name. nEMO has no
disgust; "surprised" is skipped, or kept as an auxiliary emotion.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ser_core.data.corpora import Clip, ScanReport, audio_files, drop_duplicates
from ser_core.data.labels import canonical_emotion, kept_label
from ser_core.inference.params import EMOTIONS

__all__ = ["parse_nemo_name", "read_nemo_table", "scan_nemo"]


def parse_nemo_name(name: str | Path) -> tuple[str, str] | None:
    """``SB0_anger_12.wav`` -> ``("SB0", "angry")``; None when not an nEMO name.

    Returns
    -------
    (speaker, emotion) or None
        The speaker code as written and the canonical emotion word (one of the six, or
        ``"surprised"``).

    Examples
    --------
    >>> parse_nemo_name("samples/EB0_happiness_7.flac")
    ('EB0', 'happy')
    """
    parts = Path(name).stem.split("_")
    if len(parts) != 3 or not parts[0].isalnum() or not parts[2].isdigit():
        return None
    emotion = canonical_emotion(parts[1])
    return (parts[0], emotion) if emotion else None


def read_nemo_table(root: str | Path) -> dict[str, dict[str, str]]:
    """Rows of every ``data.tsv`` below ``root``, keyed by the lower-case file stem.

    Returns
    -------
    dict
        ``{"eb0_neutral_13": {"file_id": ..., "emotion": ..., "speaker_id": ..., "gender": ...}}``;
        empty when there is no table.
    """
    rows: dict[str, dict[str, str]] = {}
    for table in sorted(Path(root).rglob("data.tsv")):
        with open(table, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                if row.get("file_id"):
                    rows[Path(row["file_id"]).stem.lower()] = row
    return rows


def scan_nemo(root: str | Path, *, auxiliary: bool = False, calm_as: str = "drop") -> tuple[list[Clip], ScanReport]:
    """Clips of the six emotions (five: nEMO has no disgust) from an nEMO folder.

    Parameters
    ----------
    root : str or Path
        The folder holding ``samples/`` and ``data.tsv``; read at every depth.
    auxiliary : bool
        Keep "surprised" as an auxiliary emotion instead of skipping it.
    calm_as : str
        Accepted for the common loader signature; nEMO has no calm clips.

    Returns
    -------
    clips : list of Clip
        Sorted by path; speakers ``"nemo_<speaker_id>"``, e.g. ``"nemo_SB0"``, with the table's gender.
    report : ScanReport
    """
    report = ScanReport("nemo")
    table = read_nemo_table(root)
    clips = []
    for path in drop_duplicates(audio_files(Path(root)), report):
        row = table.get(path.stem.lower())
        parsed = parse_nemo_name(path)
        if row is not None and canonical_emotion(row.get("emotion") or "") and row.get("speaker_id"):
            speaker, canonical = row["speaker_id"].strip(), canonical_emotion(row["emotion"])
        elif parsed is not None:
            speaker, canonical = parsed
        else:
            report.unparsed.append(str(path))
            continue
        emotion = kept_label(canonical, auxiliary=auxiliary, calm_as=calm_as)
        if emotion is None:
            report.other_emotions += 1
            continue
        gender = (row or {}).get("gender", "").strip().lower()
        clips.append(Clip(str(path), "nemo", f"nemo_{speaker}", gender if gender in ("male", "female") else None,
                          emotion))
    report.auxiliary = sum(clip.emotion not in EMOTIONS for clip in clips)
    report.kept = len(clips) - report.auxiliary
    return sorted(clips, key=lambda clip: clip.path), report
