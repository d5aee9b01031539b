"""Peak memory of decoding a "memory bomb": a small WebM holding a long stretch of constant audio
(FLAC inside, which compresses it to almost nothing) with the Duration element of its header
blanked out, so no length is known before decoding.

Run: ``python -m benchmarks.decode_memory [--seconds 6000] [--old-checkout DIR]``

Prints, for ``load_audio(file, 16000, max_seconds=60)`` (the app's upload path) and for
``load_audio(file, 16000, max_seconds=600)`` (``predict --adapt``), the answer and the peak resident
memory of a fresh Python process (``resource.getrusage``), minus that of the same process after
imports. With ``--old-checkout`` (a copy of an older tree, e.g. ``git archive main | tar -x -C DIR``)
the same is measured with that tree's ``ser_core`` too.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import resource, sys, time
sys.path.insert(0, sys.argv[1])
from ser_core.inference.audio import AudioError, load_audio
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
try:
    wave = load_audio(sys.argv[2], 16000, max_seconds=float(sys.argv[3]))
    answer = f"decoded {wave.size / 16000:.0f} s"
except AudioError as error:
    answer = f"refused: {error}"
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"{(peak - base) / 1024:.0f}\\t{time.perf_counter() - started:.1f}\\t{answer}")
"""


def constant_webm(path: Path, seconds: float, rate: int = 16_000) -> Path:
    """A WebM (Matroska) of ``seconds`` of a constant level in FLAC, its Duration element blanked."""
    import av

    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream("flac", rate=rate)
        stream.layout = "mono"
        block = np.full((1, rate * 10), 1000, np.int16)
        for index in range(int(seconds // 10)):
            frame = av.AudioFrame.from_ndarray(block, format="s16", layout="mono")
            frame.sample_rate = rate
            frame.pts = index * rate * 10
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    data = bytearray(path.read_bytes())
    at = data.find(b"\x44\x89\x88")  # Duration, an 8-byte float
    if at >= 0:
        data[at : at + 11] = b"\xec\x89" + bytes(9)  # the same 11 bytes as an EBML Void element
    path.write_bytes(bytes(data))
    return path


def measure(tree: Path, path: Path, max_seconds: float) -> str:
    out = subprocess.run([sys.executable, "-c", PROBE, str(tree), str(path), str(max_seconds)],
                         capture_output=True, text=True, timeout=900)
    return out.stdout.strip() or out.stderr.strip()[-300:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=6000.0)
    parser.add_argument("--old-checkout", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        path = constant_webm(Path(folder) / "bomb.webm", args.seconds)
        print(f"{path.name}: {path.stat().st_size / 1e6:.2f} MB holding {args.seconds:.0f} s, no Duration "
              f"(built in {time.perf_counter() - started:.0f} s)\n")
        print("| code | limit | peak memory over imports (MB) | seconds | answer |")
        print("|---|---|---|---|---|")
        trees = [("this tree", ROOT)] + ([("old tree", args.old_checkout)] if args.old_checkout else [])
        for label, tree in trees:
            for limit in (60.0, 600.0):
                memory, seconds, answer = (measure(tree, path, limit).split("\t") + ["", ""])[:3]
                print(f"| {label} | {limit:.0f} s | {memory} | {seconds} | {answer[:110]} |")


if __name__ == "__main__":
    main()
