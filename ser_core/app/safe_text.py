"""User-supplied text (a file's name, a message that quotes it) put on a page as text.

Streamlit renders the strings of ``st.error``, ``st.info``, ``st.success``, ``st.caption`` and
``st.spinner`` as Markdown: an upload named ``[Log in again](http://…).wav`` became a link, and
``![x](http://…).wav`` made the browser fetch that address. Every string that a user supplied goes
through :func:`plain` before it reaches one of them.
"""

from __future__ import annotations

import re

__all__ = ["plain"]

# What makes Markdown out of plain text, each escaped with a backslash (CommonMark shows an escaped
# punctuation character as itself): links and images ("[", "]", "!"), HTML and entities ("<", ">",
# "&"), code, emphasis, strikethrough, tables and formulas ("`", "*", "~", "|", "$", "{", "}"), an
# underscore at the edge of a word (inside one, "quiet_kitchen", it is text already), a colon
# before a word (Streamlit's ":material/…:" icons, ":red[…]" colours, "http:"), and at the start a
# heading, quote, list or rule marker.
_INLINE = re.compile(r"([\\`*\[\]!<>&~|${}])|(?<![0-9A-Za-z])(_)|(_)(?![0-9A-Za-z])|(:)(?=\S)")
_BLOCK_START = re.compile(r"^(\s*)([#>+=-])|^(\s*\d+)([.)])")
# A bare address ("http://…", "www.…", "a@b.c") is made a link after the Markdown is parsed, escaped
# or not; a zero-width space inside "://", after "www" and before "@" keeps it text (unseen).
_ZERO_WIDTH_SPACE = "\u200b"
_WWW = re.compile(r"(?i)\b(www)(\.)")


def plain(text: object) -> str:
    """``text`` escaped so that Markdown shows it exactly as written, on one line.

    Control characters (new lines, terminal escape sequences) become spaces, and a zero-width
    space keeps a bare address from becoming a link.

    Examples
    --------
    >>> plain("[Log in](page).wav")
    '\\\\[Log in\\\\](page).wav'
    """
    printable = "".join(character if character.isprintable() else " " for character in str(text))
    escaped = _INLINE.sub(lambda match: "\\" + next(group for group in match.groups() if group), printable)
    escaped = _BLOCK_START.sub(lambda m: (m.group(1) or m.group(3) or "") + "\\" + (m.group(2) or m.group(4)), escaped)
    escaped = escaped.replace("\\://", f"\\:{_ZERO_WIDTH_SPACE}//").replace("@", f"{_ZERO_WIDTH_SPACE}@")
    return _WWW.sub(rf"\1{_ZERO_WIDTH_SPACE}\2", escaped)
