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
# ":red[…]" colours, "$…$" formulas and bare-URL autolinks all need one of them).
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def plain(text: object) -> str:
    """``text`` escaped so that Markdown shows it exactly as written, on one line.

    Control characters (new lines, terminal escape sequences) become spaces.

    Examples
    --------
    >>> plain("[Log in](http://x/y).wav")
    '\\\\[Log in\\\\]\\\\(http\\\\:\\\\/\\\\/x\\\\/y\\\\)\\\\.wav'
    """
    printable = "".join(character if character.isprintable() else " " for character in str(text))
    return _PUNCTUATION.sub(r"\\\1", printable)
