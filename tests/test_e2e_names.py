"""Issue 23, item 8, in a real browser: file names that are Markdown (a link, an image) are shown as
text on Analyse and Adapt; no link appears and the browser fetches nothing from their addresses.

Screenshots: ``screenshots/names_as_text_analyse.png`` and ``screenshots/names_as_text_adapt.png``.
"""

from __future__ import annotations

import re

import pytest

from app_helpers import real_or_synthetic_wav
from test_e2e_browser import (  # noqa: F401  (fixtures)
    browser,
    microphone_wav,
    no_exceptions,
    page,
    server,
    shot,
    wait_for_app,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TRAP = "127.0.0.1:9"
LINK_NAME = f"[Your session expired - log in again](http://{TRAP}/phish).wav"
IMAGE_NAME = f"![x](http://{TRAP}/t.png).wav"


def _upload(page, files: list[tuple[str, bytes]]) -> None:
    page.get_by_role("tab", name=re.compile("Upload")).click()
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(
        [{"name": name, "mimeType": "audio/wav", "buffer": data} for name, data in files])


def _assert_names_are_text(page, requests: list[str]) -> None:
    main = page.locator("[data-testid='stMain']")
    assert main.locator(f"a[href*='{TRAP}']").count() == 0, "a file name became a link"
    assert main.locator(f"img[src*='{TRAP}']").count() == 0, "a file name became an image"
    assert not [url for url in requests if TRAP in url], requests
    no_exceptions(page)


def test_markdown_file_names_are_shown_as_text_on_analyse(page, server: str) -> None:  # noqa: F811
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{server}/")
    wait_for_app(page)
    _upload(page, [(LINK_NAME, real_or_synthetic_wav(seconds=3.0, sample_rate=16_000))])
    page.get_by_text(re.compile(r"Your session expired - log in again\]\(http:\u200b?//127")).first.wait_for(timeout=90_000)
    _assert_names_are_text(page, requests)
    page.goto(f"{server}/")
    wait_for_app(page)
    _upload(page, [(IMAGE_NAME, b"this is not audio at all" * 10)])
    page.get_by_text(re.compile(r"!\[x\]\(http:\u200b?//127\.0\.0\.1:9/t\.png\)\.wav could not be decoded")).wait_for(
        timeout=60_000)
    _assert_names_are_text(page, requests)
    shot(page, "names_as_text_analyse")


def test_markdown_file_names_are_shown_as_text_on_adapt(page, server: str) -> None:  # noqa: F811
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{server}/adapt")
    wait_for_app(page)
    speech = real_or_synthetic_wav(seconds=3.0, sample_rate=16_000)
    _upload(page, [(LINK_NAME, speech), (IMAGE_NAME, b"this is not audio at all" * 10)])
    page.get_by_text(re.compile(r"Added \[Your session expired")).wait_for(timeout=90_000)
    page.get_by_text(re.compile(r"!\[x\]\(http:\u200b?//127\.0\.0\.1:9/t\.png\)\.wav")).first.wait_for(timeout=60_000)
    _assert_names_are_text(page, requests)
    shot(page, "names_as_text_adapt")
