"""User-supplied text (a file's name, a message that quotes it) put on a page as text.

Streamlit renders the strings of ``st.error``, ``st.info``, ``st.success``, ``st.caption`` and
``st.spinner`` as Markdown: an upload named ``[Log in again](http://…).wav`` became a link, and
``![x](http://…).wav`` made the browser fetch that address. Every string that a user supplied goes
through :func:`plain` before it reaches one of them.
"""

from __future__ import annotations

import re

__all__ = ["plain"]

# Every ASCII punctuation character: CommonMark lets a backslash escape any of them, and then it is
# shown as itself (links, images, emphasis, code, HTML, Streamlit's ":material/…:" icons and
# ":red[…]" colours and "$…$" formulas all need one of them).
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
# Bare addresses ("http://…", "www.…", "a@b.c") are made links after the Markdown is parsed, escapes
# or not; a zero-width space inside "://", after "www" and before "@" keeps them text (unseen).
_ZERO_WIDTH_SPACE = "\u200b"
_WWW = re.compile(r"(?i)(www)(\\\.)")


def plain(text: object) -> str:
    """``text`` escaped so that Markdown shows it exactly as written, on one line.

    Control characters (new lines, terminal escape sequences) become spaces, and a zero-width
    space keeps a bare address from becoming a link.

    Examples
    --------
    >>> plain("[Log in](page).wav")
    '\\\\[Log in\\\\]\\\\(page\\\\)\\\\.wav'
    """
    printable = "".join(character if character.isprintable() else " " for character in str(text))
    escaped = _PUNCTUATION.sub(r"\\\1", printable)
    escaped = escaped.replace("\\:\\/\\/", f"\\:{_ZERO_WIDTH_SPACE}\\/\\/").replace("\\@", f"{_ZERO_WIDTH_SPACE}\\@")
    return _WWW.sub(rf"\1{_ZERO_WIDTH_SPACE}\2", escaped)
