"""End-to-end: a real ``streamlit run`` driven by headless Chromium through Playwright.

Chromium's fake microphone plays a generated wav, so recording (``st.audio_input``) and live
streaming (streamlit-webrtc over localhost, no ICE servers) are exercised for real. Screenshots of
every page go to ``screenshots/`` (gitignored) for inspection.

Skips cleanly without Playwright or ``/usr/bin/chromium``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterator

import pytest

from ser_core.inference.artifacts import TRAIN_COMMAND

from app_helpers import REPO_ROOT, real_or_synthetic_wav, streamlit_server

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO_ROOT / "screenshots"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
EMOTION_RE = r"(angry|disgust|fear|happy|neutral|sad)"
ADJECTIVE_RE = r"(angry|disgusted|fearful|happy|neutral|sad)"
# The answer, the alert's last line (after its icon's name): "Angry", "Angry or disgusted", or
# "Can't tell: angry, disgusted or fearful"
# (Playwright matches the alert's text content, where the icon's name runs into the answer.)
ANSWER_RE = re.compile(rf"(Can.t tell: .*|{ADJECTIVE_RE}( or {ADJECTIVE_RE})?)\s*$", re.IGNORECASE)

playwright_sync = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed"),
    pytest.mark.browser,
    pytest.mark.slow,
]


@pytest.fixture(scope="module")
def microphone_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the fake microphone plays: 8 s of speech at 48 kHz (looped by Chromium)."""
    path = tmp_path_factory.mktemp("mic") / "speech.wav"
    path.write_bytes(real_or_synthetic_wav(seconds=8.0, sample_rate=48_000))
    return path


@pytest.fixture(scope="module")
def server(model_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    with streamlit_server(model_artifacts, log_path=log) as url:
        yield url


@pytest.fixture(scope="module")
def browser(microphone_wav: Path):
    with playwright_sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=LAUNCH_ARGS + ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                                f"--use-file-for-fake-audio-capture={microphone_wav}"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1400, "height": 2200},
                                  permissions=["microphone"])
    page = context.new_page()
    messages: list[str] = []
    page.on("console", lambda message: messages.append(f"{message.type}: {message.text}"))
    yield page
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{request.node.name}_final.png"), full_page=True)
    context.close()


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def wait_for_app(page) -> None:
    page.wait_for_selector("[data-testid='stSidebar']", timeout=60_000)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=90_000
    )


def no_exceptions(page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0, "a traceback is on the page"


def the_answer(page):
    """The alert that holds the answer (one emotion, two, or "Can't tell: ...")."""
    return page.locator("[data-testid='stAlertContainer']").filter(has_text=ANSWER_RE)


def assert_plain_answer(page, coverage: str = "9 in 10") -> str:
    """The answer is on the page with its one line on what the coverage means; nothing says "uncertain"."""
    answer = the_answer(page).first.locator("[data-testid='stMarkdownContainer']").first.inner_text().strip()
    assert ANSWER_RE.fullmatch(answer), answer
    page.get_by_text(f"What “{coverage}” means").first.wait_for()
    main = page.locator("[data-testid='stMain']").inner_text()
    assert "Uncertain" not in main and "threshold" not in main, main
    return answer


def adaptation_switch(page, label: str):
    return page.get_by_role("switch", name=label)


def test_upload_clip_shows_result(page, server: str, tmp_path: Path) -> None:
    clip = tmp_path / "clip.wav"
    clip.write_bytes(real_or_synthetic_wav(seconds=7.0))
    page.goto(f"{server}/")
    wait_for_app(page)
    page.get_by_role("tab", name=re.compile("Upload")).click()
    # one upload limit, stated once: the uploader's own (server.maxUploadSize); the caption names the length only
    page.get_by_text(re.compile(r"25(\.0)?\s?MB per file")).wait_for()
    assert "MB" not in page.get_by_text(re.compile("^Accepted:")).inner_text()
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(clip))
    the_answer(page).first.wait_for(timeout=90_000)
    answer = assert_plain_answer(page)
    page.get_by_text("Emotion over time").wait_for(timeout=30_000)  # 7 s: one band per stretch of speech
    page.locator("[data-testid='stVegaLiteChart']").nth(1).wait_for()  # the bars, then the bands
    page.get_by_text("What the model hears").wait_for()
    # the switch is greyed and off while nothing is adapted
    switch = adaptation_switch(page, "Use adaptation")
    assert switch.is_disabled() and not switch.is_checked()
    sidebar = page.locator("[data-testid='stSidebar']").inner_text()
    assert "names one of six emotions" in sidebar and "held the true emotion" in sidebar
    assert "Accuracy on a new recording setup" not in sidebar
    page.locator("[data-testid='stImage'] img, [data-testid='stImage']").first.wait_for()
    page.get_by_text("Download result (JSON)").wait_for()
    no_exceptions(page)
    shot(page, "analyse_upload")

    with page.expect_download() as download_info:
        page.get_by_text("Download result (JSON)").click()
    result = json.loads(Path(download_info.value.path()).read_text())
    assert result["label"] in ("angry", "disgust", "fear", "happy", "neutral", "sad", "uncertain")
    assert abs(sum(result["probabilities"].values()) - 1) < 1e-3
    assert len(result["windows"]) > 1
    assert result["emotions"] and result["coverage"] == 0.9
    from ser_core.app.words import answer_text

    assert answer_text(result["emotions"]) == answer  # the page says what the result holds

    # the coverage setting in the sidebar: 8 in 10 gives an answer no longer than 9 in 10's
    page.locator("[data-testid='stSidebar']").get_by_text("8 in 10").click()
    page.get_by_text("What “8 in 10” means").first.wait_for(timeout=30_000)
    wait_for_app(page)
    shorter = assert_plain_answer(page, "8 in 10")
    assert shorter.count(",") + shorter.count(" or ") <= answer.count(",") + answer.count(" or ")
    shot(page, "analyse_upload_8_in_10")


def test_bad_upload_shows_error(page, server: str, tmp_path: Path) -> None:
    bad = tmp_path / "notes.wav"
    bad.write_bytes(b"this is not audio at all" * 10)
    page.goto(f"{server}/")
    wait_for_app(page)
    page.get_by_role("tab", name=re.compile("Upload")).click()
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(bad))
    page.locator("[data-testid='stAlertContainer']").filter(
        has_text=re.compile("could not be decoded")).wait_for(timeout=60_000)
    no_exceptions(page)
    shot(page, "analyse_bad_upload")


def test_record_with_fake_microphone(page, server: str) -> None:
    page.goto(f"{server}/")
    wait_for_app(page)
    recorder = page.locator("[data-testid='stAudioInput']")
    recorder.get_by_role("button", name=re.compile("record", re.IGNORECASE)).click()
    page.wait_for_timeout(3500)
    recorder.get_by_role("button", name=re.compile("stop", re.IGNORECASE)).click()
    the_answer(page).first.wait_for(timeout=90_000)
    assert_plain_answer(page)
    assert page.get_by_text("Emotion over time").count() == 0  # a 3.5 s recording: no timeline over a moment
    page.get_by_text("What the model hears").wait_for()
    page.get_by_text("Download result (CSV)").wait_for(timeout=30_000)
    wait_for_app(page)
    no_exceptions(page)
    shot(page, "analyse_record")


def test_live_streams_fake_microphone(page, server: str) -> None:
    page.goto(f"{server}/live")
    wait_for_app(page)
    frame = page.frame_locator("iframe[title*='streamlit_webrtc'], iframe").first
    start = frame.get_by_role("button", name=re.compile("start", re.IGNORECASE))
    start.wait_for(timeout=60_000)
    # the controls sit in one row; the switch is greyed and off while nothing is adapted; no jargon
    switch = adaptation_switch(page, "Use adaptation")
    learn = page.get_by_text("Learn my voice while I talk")
    link = page.locator("[data-testid='stMain']").get_by_role("link", name=re.compile("Adapt to my voice"))
    rows = [box["y"] + box["height"] / 2 for box in (switch.bounding_box(), learn.bounding_box(),
                                                     link.bounding_box())]
    assert max(rows) - min(rows) < 20, rows
    assert switch.is_disabled() and not switch.is_checked()
    assert "ICE servers" not in page.locator("[data-testid='stMain']").inner_text()
    shot(page, "live_before_start")
    start.click()
    page.get_by_text(re.compile(r"Receiving audio: 48 kHz")).wait_for(timeout=60_000)
    the_answer(page).first.wait_for(timeout=60_000)
    assert_plain_answer(page)
    page.get_by_text("Recent emotion").wait_for(timeout=30_000)  # the timeline has 2+ answers
    page.wait_for_timeout(2500)
    no_exceptions(page)
    shot(page, "live_streaming")
    frame.get_by_role("button", name=re.compile("stop", re.IGNORECASE)).click()
    page.wait_for_timeout(1500)
    no_exceptions(page)


def whisper_model(artifacts: Path) -> bool:
    return json.loads((artifacts / "config.json").read_text()).get("kind") == "whisper_embedding_head"


# (page, heading, the last text drawn, figures): for the CNN, then for the Whisper model (no figures:
# leave-one-corpus-out tables, and no epochs to draw)
EVALUATION_PAGES = {
    False: [("test_results", "Test results", "Data split", 3),
            ("training_curves", "Training curves", "marked by a dotted line", 1)],
    True: [("test_results", "Test results", "Earlier models", 0),
           ("training_curves", "Training curves", "that is expected", 0)],
}


@pytest.mark.parametrize("index", [0, 1], ids=["test_results", "training_curves"])
def test_evaluation_pages(page, server: str, model_artifacts: Path, index: int) -> None:
    path, heading, last, images = EVALUATION_PAGES[whisper_model(model_artifacts)][index]
    page.goto(f"{server}/{path}")
    wait_for_app(page)
    page.get_by_role("heading", name=heading).wait_for()
    page.get_by_text(last).first.wait_for(timeout=30_000)
    if images:
        page.locator("[data-testid='stImage'] img").nth(images - 1).wait_for(timeout=30_000)
    else:
        page.get_by_text(re.compile("Whisper|On a recording setup it never heard")).first.wait_for()
    no_exceptions(page)
    shot(page, path)


def test_adapt_to_my_voice_then_analyse_and_live(page, server: str, model_artifacts: Path, tmp_path: Path) -> None:
    """Two clips of ordinary speech on the Adapt page, an adapted result on Analyse, and the Live page
    learning from the stream (the Whisper model only)."""
    if not whisper_model(model_artifacts):
        pytest.skip("only the Whisper model adapts")
    clips = []
    for index, seconds in enumerate((25.0, 24.0)):  # two recordings (the same bytes would count once)
        clips.append(tmp_path / f"me_{index}.wav")
        clips[-1].write_bytes(real_or_synthetic_wav(seconds=seconds))
    page.goto(f"{server}/adapt")
    wait_for_app(page)
    page.get_by_text("Nothing is stored on disk").wait_for()
    # one sentence first, the rest behind an expander; the switch not on while "In use: no"
    page.get_by_text(re.compile("^Give the model 15–30 seconds of your ordinary speech")).wait_for()
    assert not page.get_by_text("Every microphone and room colours a voice").is_visible()
    switch = adaptation_switch(page, "Use the adaptation for my results")
    assert switch.is_disabled() and not switch.is_checked()
    in_use = page.locator("[data-testid='stMetric']").filter(has_text="In use")
    assert in_use.locator("[data-testid='stMetricValue']").inner_text().strip() == "no"
    shot(page, "adapt_empty")
    page.get_by_text("Why adapt, and how much speech it needs").click()
    page.get_by_text("Every microphone and room colours a voice").wait_for()
    page.get_by_role("tab", name=re.compile("Upload")).click()
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files([str(c) for c in clips])
    page.get_by_text(re.compile("Adapted to your voice: .* from 2 recordings")).wait_for(timeout=90_000)
    wait_for_app(page)
    # each clip's answer before adapting, in the same words as Analyse
    heard = page.locator("[data-testid='stAlertContainer']").filter(has_text="Before adapting, it sounds:")
    assert heard.count() == 2
    for text in heard.all_inner_texts():
        assert ANSWER_RE.search(text.split("it sounds:")[1].strip().rstrip(".")), text
    assert in_use.locator("[data-testid='stMetricValue']").inner_text().strip() == "yes"
    assert switch.is_enabled() and switch.is_checked()
    no_exceptions(page)
    shot(page, "adapt_two_clips")

    page.get_by_role("link", name=re.compile("Analyse a clip with it")).click()
    wait_for_app(page)
    page.get_by_role("tab", name=re.compile("Upload")).click()
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(clips[0]))
    page.get_by_text(re.compile(r"Adapted to your voice \(2 recordings")).wait_for(timeout=90_000)
    assert_plain_answer(page)
    switch = adaptation_switch(page, "Use adaptation")
    assert switch.is_enabled() and switch.is_checked()
    page.get_by_text("What the model hears").wait_for()
    wait_for_app(page)
    no_exceptions(page)
    shot(page, "analyse_adapted")

    page.get_by_role("link", name=re.compile(r"Live$")).first.click()
    wait_for_app(page)
    page.get_by_text("Learn my voice while I talk").click()
    wait_for_app(page)
    frame = page.frame_locator("iframe").first
    start = frame.get_by_role("button", name=re.compile("start", re.IGNORECASE))
    start.wait_for(timeout=60_000)
    start.click()
    page.get_by_text(re.compile("this window was added to the adaptation")).first.wait_for(timeout=90_000)
    assert_plain_answer(page)
    page.get_by_text(re.compile("from [3-9] recordings")).first.wait_for(timeout=30_000)  # the line follows
    no_exceptions(page)
    shot(page, "live_learning")
    frame.get_by_role("button", name=re.compile("stop", re.IGNORECASE)).click()
    page.wait_for_timeout(1500)
    no_exceptions(page)


def test_pages_without_model(browser, empty_artifacts: Path, tmp_path: Path) -> None:
    with streamlit_server(empty_artifacts, log_path=tmp_path / "streamlit.log") as url:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        try:
            # A deep link first: a fresh server must still run the entry point (navigation, sidebar).
            for path in ("live", "", "test_results", "training_curves"):
                page.goto(f"{url}/{path}")
                wait_for_app(page)
                page.get_by_text("No model available").first.wait_for(timeout=30_000)
                page.get_by_text("No trained model yet").wait_for()  # the sidebar ran
                page.get_by_text(TRAIN_COMMAND).first.wait_for()
                no_exceptions(page)
                shot(page, f"no_model_{path or 'analyse'}")
        finally:
            context.close()


NAV_RECORDER = """
window.__navSeen = [];
new MutationObserver(() => {
  document.querySelectorAll("[data-testid='stSidebarNav'] a, [data-testid='stSidebarNavLink'], "
                            + "[data-testid='stSidebar'] [data-testid='stPageLink-NavLink']")
    .forEach(link => { const text = link.textContent.trim();
                       if (text && !window.__navSeen.includes(text)) window.__navSeen.push(text); });
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


def test_fresh_server_shows_only_the_apps_own_menu(browser, model_artifacts: Path, tmp_path: Path) -> None:
    """Streamlit's first run on a fresh server sends its default menu of ``pages/`` (lowercase file
    names) before the entry point's own; whether the browser paints it depends on timing, so the
    test reads the menus the server sends as well as the ones the page shows."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from streamlit.proto.Navigation_pb2 import Navigation

    menus_sent: list[tuple[int, list[str]]] = []

    def record_menu(payload: bytes | str) -> None:
        if isinstance(payload, (bytes, bytearray)):
            message = ForwardMsg.FromString(bytes(payload))
            if message.WhichOneof("type") == "navigation":
                menus_sent.append((message.navigation.position,
                                   [page.page_name for page in message.navigation.app_pages]))

    with streamlit_server(model_artifacts, log_path=tmp_path / "streamlit.log") as url:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.add_init_script(NAV_RECORDER)
        page.on("websocket", lambda socket: socket.on("framereceived", record_menu))
        try:
            page.goto(f"{url}/")
            wait_for_app(page)
            page.get_by_text("Training curves").first.wait_for(timeout=30_000)
            seen = page.evaluate("window.__navSeen")
            shot(page, "fresh_server_menu")
        finally:
            context.close()
    titles = ("Analyse", "Live", "Adapt to my voice", "Test results", "Training curves")  # each after its icon's name
    assert [text for text in seen if not text.endswith(titles)] == [], seen
    assert len(seen) == len(titles), seen
    shown = [(position, names) for position, names in menus_sent if position != Navigation.Position.HIDDEN]
    assert menus_sent and shown == [], menus_sent


@pytest.mark.parametrize("name, size_mb, reason", [
    ("song.aiff", 0, "could not be decoded"),
    ("voice", 0, "could not be decoded"),
], ids=["aiff-not-audio", "no-extension-not-audio"])
def test_rejected_upload_reason_is_on_the_page(page, server: str, tmp_path: Path, name: str, size_mb: int,
                                               reason: str) -> None:
    """Streamlit's own checks would only turn the file chip red, with the reason on hover."""
    path = tmp_path / name
    path.write_bytes(b"RIFF" + b"\x00" * (size_mb * 2**20) if size_mb else b"plain text, not audio " * 40)
    page.goto(f"{server}/")
    wait_for_app(page)
    page.get_by_role("tab", name=re.compile("Upload")).click()
    page.get_by_text(re.compile(r"Accepted: wav, flac, mp3, ogg, opus, oga, m4a or webm.*up to 60 s")).wait_for()
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(path))
    page.locator("[data-testid='stAlertContainer']").filter(has_text=reason).wait_for(timeout=60_000)
    wait_for_app(page)
    assert page.locator("[data-testid='stAudio']").count() == 0, "a player for a file that is not audio"
    no_exceptions(page)
    shot(page, f"rejected_{name.replace('.', '_')}")


def test_damaged_model_is_named_once(browser, model_artifacts: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "config.json").write_text((model_artifacts / "config.json").read_text())
    whole = (model_artifacts / "model.keras").read_bytes()  # the Whisper head is 63 kB: cut it in half
    (damaged / "model.keras").write_bytes(whole[: min(100_000, len(whole) // 2)])
    with streamlit_server(damaged, log_path=tmp_path / "streamlit.log") as url:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        try:
            page.goto(f"{url}/")
            wait_for_app(page)
            page.get_by_text("Unreadable model").wait_for(timeout=60_000)
            page.locator("[data-testid='stMain'] [data-testid='stCode']").first.wait_for()
            page.get_by_text("the model the last training replaced").wait_for()
            main = page.locator("[data-testid='stMain']").inner_text()
            code = page.locator("[data-testid='stMain'] [data-testid='stCode']").all_inner_texts()
            assert main.count("--restore-previous") == 1, main  # said once, under the command to copy
            assert [c.strip() for c in code].count(TRAIN_COMMAND) == 1, code
            assert "File not found" not in main  # Keras's words, behind "Technical details"
            no_exceptions(page)
            shot(page, "damaged_model")
        finally:
            context.close()


def test_file_over_the_door_shows_streamlits_reason(page, server: str, tmp_path: Path) -> None:
    """Over server.maxUploadSize (25 MB, the one limit the uploader states) the browser refuses the file
    before the app sees it; the reason, normally on hover only, is shown beside the file."""
    huge = tmp_path / "huge.wav"
    with open(huge, "wb") as handle:  # sparse: the browser refuses it by size without reading it
        handle.truncate(30 * 10**6)
    page.goto(f"{server}/")
    wait_for_app(page)
    page.get_by_role("tab", name=re.compile("Upload")).click()
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(huge))
    reason = page.locator("[data-testid='stFileChip'] [role='alert']")
    reason.wait_for(timeout=30_000)
    assert "25" in reason.inner_text() and reason.bounding_box()["width"] > 100
    shot(page, "rejected_over_the_door")


def test_the_same_clip_twice_is_counted_once_and_said_so(page, server: str, tmp_path: Path) -> None:
    """Two uploads with the same audio: the second is named on the page, not silently ignored."""
    first, second = tmp_path / "me_a.wav", tmp_path / "me_b.wav"
    first.write_bytes(real_or_synthetic_wav(seconds=3.0, sample_rate=16_000))
    second.write_bytes(first.read_bytes())
    page.goto(f"{server}/adapt")
    wait_for_app(page)
    page.get_by_role("tab", name=re.compile("Upload")).click()
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files([str(first), str(second)])
    page.get_by_text(re.compile(r"me_b\.wav is the same audio as a clip you already gave")).wait_for(timeout=60_000)
    page.get_by_text(re.compile(r"Added me_a\.wav")).wait_for()
    assert page.locator("[data-testid='stMain'] [data-testid='stMetricValue']").first.inner_text().strip() == "1"
    no_exceptions(page)
