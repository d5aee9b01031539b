"""Many people at once: headless-browser sessions against one Streamlit server on this machine.

    python -m benchmarks.load_sessions [--sessions 8] [--artifacts DIR] [--timeout 240]

Starts ``streamlit run streamlit_app.py`` on a free localhost port and one headless Chromium
(``/usr/bin/chromium``) whose fake microphone plays a real RAVDESS clip (or generated speech when
``../shared/data/ravdess`` is absent). Then, all at the same time:

- ``--sessions`` Analyse sessions, each uploading the clip (as wav) and then recording 3 s from
  the microphone, waiting for the verdict each time;
- one Live session streaming the microphone over WebRTC until it shows a verdict.

It prints the time each session waited for each answer, the server's memory (resident set size)
before the first session, after the model was loaded and at the end, and every traceback or
error line of the server log. Nothing leaves localhost; every wait has a time limit, and the exit
code is 1 when a session went unanswered or the server logged an error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile

REPO_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
RAVDESS = REPO_ROOT.parent / "shared" / "data" / "ravdess"
CLIP = "Actor_01/03-01-05-02-01-01-01.flac"  # angry, "Dogs are sitting by the door"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
VERDICT = re.compile(r"((angry|disgust|fear|happy|neutral|sad).*confidence|Uncertain)", re.IGNORECASE)
RECORD_SECONDS = 3.0


@dataclass
class SessionResult:
    """What one browser session saw: seconds to each answer, or the reason it had none."""

    name: str
    seconds: dict[str, float] = field(default_factory=dict)
    failure: str | None = None


# ---------------------------------------------------------------- audio and the server


def write_clips(folder: Path) -> tuple[Path, Path]:
    """The clip to upload (16 kHz wav) and the microphone's (48 kHz wav, looped by Chromium)."""
    source = RAVDESS / CLIP
    if source.is_file():
        wave, rate = soundfile.read(source, dtype="float32", always_2d=True)
        wave = wave.mean(axis=1)
    else:  # a voiced, syllable-paced tone: enough to be classified, no data needed
        rate = 16_000
        t = np.arange(3 * rate) / rate
        phase = 2 * np.pi * np.cumsum(150 + 30 * np.sin(2 * np.pi * 0.8 * t)) / rate
        wave = (0.3 * sum(np.sin(k * phase) / k for k in range(1, 15))
                * np.clip(np.sin(4 * np.pi * t), 0, None)).astype(np.float32)
    from ser_core.inference.audio import resample

    upload, microphone = folder / "clip.wav", folder / "microphone.wav"
    soundfile.write(upload, resample(wave, rate, 16_000), 16_000, subtype="PCM_16")
    soundfile.write(microphone, resample(wave, rate, 48_000), 48_000, subtype="PCM_16")
    return upload, microphone


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process in MB, from /proc."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", float("nan")), values.get("VmHWM", float("nan"))


@contextlib.contextmanager
def streamlit_server(artifacts: Path | None, log_path: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """``streamlit run streamlit_app.py`` on 127.0.0.1; yields (base URL, process)."""
    port = free_port()
    env = dict(os.environ)
    if artifacts is not None:
        env["SER_ARTIFACTS_DIR"] = str(artifacts)
    env.pop("SER_ICE_SERVERS", None)  # no ICE servers: nothing is contacted outside this machine
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "streamlit_app.py"),
             "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"streamlit exited with {process.returncode}; see {log_path}")
                with contextlib.suppress(OSError):
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                        if response.status == 200:
                            break
                if time.monotonic() > deadline:
                    raise RuntimeError("streamlit did not come up within 90 s")
                time.sleep(0.3)
            yield url, process
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


# ---------------------------------------------------------------- browser sessions


async def wait_for_app(page, timeout_ms: float) -> None:
    await page.wait_for_selector("[data-testid='stSidebar']", timeout=timeout_ms)
    await page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout_ms)


async def analyse_session(browser, url: str, index: int, clip: Path, timeout_s: float) -> SessionResult:
    """Open Analyse, upload the clip and wait for its verdict; then record 3 s and wait again."""
    result = SessionResult(f"analyse {index + 1}")
    context = await browser.new_context(viewport={"width": 1280, "height": 1400}, permissions=["microphone"])
    page = await context.new_page()
    timeout_ms = timeout_s * 1000
    try:
        started = time.perf_counter()
        await page.goto(f"{url}/", timeout=timeout_ms)
        upload = page.get_by_role("tab", name=re.compile("Upload"))
        await upload.wait_for(timeout=timeout_ms)  # the tabs come after the model is loaded
        result.seconds["page"] = time.perf_counter() - started

        await upload.click()
        started = time.perf_counter()
        await page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(clip))
        upload_tab = page.get_by_role("tabpanel")
        await upload_tab.locator("[data-testid='stAlertContainer']").filter(
            has_text=VERDICT).first.wait_for(timeout=timeout_ms)
        result.seconds["upload"] = time.perf_counter() - started

        await page.get_by_role("tab", name=re.compile("Record")).click()
        recorder = page.locator("[data-testid='stAudioInput']")
        await recorder.get_by_role("button", name=re.compile("record", re.IGNORECASE)).click()
        await page.wait_for_timeout(RECORD_SECONDS * 1000)
        started = time.perf_counter()
        await recorder.get_by_role("button", name=re.compile("stop", re.IGNORECASE)).click()
        await page.get_by_role("tabpanel").locator("[data-testid='stAlertContainer']").filter(
            has_text=VERDICT).first.wait_for(timeout=timeout_ms)
        result.seconds["recording"] = time.perf_counter() - started
        if await page.locator("[data-testid='stException']").count():
            result.failure = "a traceback on the page"
    except Exception as error:  # a timeout or a closed page: this session went unanswered
        result.failure = f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"
        result.failure += await what_the_page_says(page)
    finally:
        await context.close()
    return result


async def what_the_page_says(page) -> str:
    """The alerts and tracebacks on a page that did not answer, to tell why."""
    try:
        texts = await page.locator("[data-testid='stException'], [data-testid='stAlertContainer'], "
                                   "[data-testid='stFileChip']").all_inner_texts()
    except Exception:
        return ""
    return "; on the page: " + " | ".join(t.replace("\n", " ")[:200] for t in texts) if texts else ""


async def live_session(browser, url: str, timeout_s: float) -> SessionResult:
    """Open Live, press START and wait for the first verdict on the streamed microphone."""
    result = SessionResult("live")
    context = await browser.new_context(viewport={"width": 1280, "height": 1400}, permissions=["microphone"])
    page = await context.new_page()
    timeout_ms = timeout_s * 1000
    try:
        started = time.perf_counter()
        await page.goto(f"{url}/live", timeout=timeout_ms)
        await wait_for_app(page, timeout_ms)
        result.seconds["page"] = time.perf_counter() - started
        frame = page.frame_locator("iframe").first
        start = frame.get_by_role("button", name=re.compile("start", re.IGNORECASE))
        await start.wait_for(timeout=timeout_ms)
        started = time.perf_counter()
        await start.click()
        await page.get_by_text(re.compile(r"Receiving audio")).wait_for(timeout=timeout_ms)
        result.seconds["audio arriving"] = time.perf_counter() - started
        await page.locator("[data-testid='stAlertContainer']").filter(
            has_text=VERDICT).first.wait_for(timeout=timeout_ms)
        result.seconds["first verdict"] = time.perf_counter() - started
        await page.wait_for_timeout(5000)  # keep streaming while the others work
        if await page.locator("[data-testid='stException']").count():
            result.failure = "a traceback on the page"
        await frame.get_by_role("button", name=re.compile("stop", re.IGNORECASE)).click()
    except Exception as error:
        result.failure = f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"
    finally:
        await context.close()
    return result


async def run_sessions(url: str, sessions: int, clip: Path, microphone: Path, timeout_s: float,
                       after_warm_up) -> tuple[SessionResult, list[SessionResult], float]:
    """One warm-up session (it loads the model), ``after_warm_up()``, then all the sessions at once;
    returns the warm-up, the sessions and the wall time of the concurrent part."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=LAUNCH_ARGS + ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                                f"--use-file-for-fake-audio-capture={microphone}"],
        )
        try:
            warm_up = await analyse_session(browser, url, -1, clip, timeout_s)
            warm_up.name = "warm-up (loads the model)"
            after_warm_up()
            started = time.perf_counter()
            results = await asyncio.wait_for(
                asyncio.gather(live_session(browser, url, timeout_s),
                               *(analyse_session(browser, url, i, clip, timeout_s) for i in range(sessions))),
                timeout=timeout_s * 3,
            )
            wall_s = time.perf_counter() - started
        finally:
            await browser.close()
    return warm_up, list(results), wall_s


# ---------------------------------------------------------------- report


# TensorFlow's start-up notice that this machine has no usable GPU: not a fault of the app.
NO_GPU_NOTICE = re.compile(r"cuInit|cuda_(platform|driver|diagnostics)")


def server_problems(log_text: str) -> list[str]:
    """Tracebacks and error lines in the server log."""
    return [line for line in log_text.splitlines()
            if ("Traceback" in line or re.search(r"\b(ERROR|CRITICAL)\b", line))
            and not NO_GPU_NOTICE.search(line)]


def print_report(warm_up: SessionResult, results: list[SessionResult], memory: dict[str, tuple[float, float]],
                 problems: list[str], wall_s: float) -> None:
    print(f"{'session':<28}{'page':>8}{'upload':>9}{'recording':>11}{'audio in':>10}{'verdict':>9}  outcome")
    for result in [warm_up, *results]:
        s = result.seconds

        def cell(key: str, width: int) -> str:
            return f"{s[key]:>{width}.1f}" if key in s else f"{'-':>{width}}"

        print(f"{result.name:<28}{cell('page', 8)}{cell('upload', 9)}{cell('recording', 11)}"
              f"{cell('audio arriving', 10)}{cell('first verdict', 9)}  {result.failure or 'answered'}")
    analyse = [r for r in results if r.name.startswith("analyse")]
    for key in ("upload", "recording"):
        times = [r.seconds[key] for r in analyse if key in r.seconds]
        if times:
            print(f"{key}: median {statistics.median(times):.1f} s, slowest {max(times):.1f} s "
                  f"({len(times)}/{len(analyse)} answered)")
    for label, (current, peak) in memory.items():
        print(f"server memory {label}: {current:.0f} MB (peak so far {peak:.0f} MB)")
    print(f"wall time of the concurrent part: {wall_s:.0f} s on {os.cpu_count()} CPU cores")
    print(f"server log: {len(problems)} traceback/error line(s)")
    for line in problems[:20]:
        print(f"  {line}")


def first_traceback(log_text: str, lines: int = 60) -> str:
    """The first traceback of the log and what follows it, to see what failed."""
    log_lines = log_text.splitlines()
    for index, line in enumerate(log_lines):
        if "Traceback" in line:
            return "\n".join(log_lines[max(0, index - 3): index + lines])
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8, help="Analyse sessions at once (1-16)")
    parser.add_argument("--artifacts", type=Path, default=None, help="artifacts folder (default: artifacts/)")
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds each step may wait (10-600)")
    parser.add_argument("--log", type=Path, default=None, help="keep the server log here")
    args = parser.parse_args(argv)
    if not 1 <= args.sessions <= 16:
        parser.error(f"--sessions must be between 1 and 16, not {args.sessions}")
    if not 10 <= args.timeout <= 600:
        parser.error(f"--timeout must be between 10 and 600 s, not {args.timeout:g}")
    if not Path(CHROMIUM).exists():
        parser.error(f"{CHROMIUM} is not installed")

    with tempfile.TemporaryDirectory(prefix="ser_load_") as folder:
        clip, microphone = write_clips(Path(folder))
        log_path = Path(folder) / "streamlit.log"
        with streamlit_server(args.artifacts, log_path) as (url, process):
            memory = {"before any session": rss_mb(process.pid)}

            def after_warm_up() -> None:
                memory["with the model loaded"] = rss_mb(process.pid)

            warm_up, results, wall_s = asyncio.run(
                run_sessions(url, args.sessions, clip, microphone, args.timeout, after_warm_up))
            time.sleep(2)
            memory["after all sessions"] = rss_mb(process.pid)
        log_text = re.sub(r"\x1b\[[0-9;]*m", "", log_path.read_text(errors="replace"))  # no colours
        if args.log:
            args.log.write_text(log_text)
    problems = server_problems(log_text)
    print_report(warm_up, results, memory, problems, wall_s)
    if problems:
        print("first traceback in the server log:")
        print(first_traceback(log_text))
    unanswered = [r for r in [warm_up, *results] if r.failure]
    return 1 if unanswered or problems else 0


if __name__ == "__main__":
    sys.exit(main())
