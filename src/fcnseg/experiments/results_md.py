"""``RESULTS.md`` holds two sections: the miniature Table 2's (the file's head) and the paper experiment's (between
markers); each report rewrites its own and keeps the other's."""

from __future__ import annotations

__all__ = ["BEGIN", "END", "paper_section", "splice"]

BEGIN = "<!-- fcnseg experiment paper: begin -->"
END = "<!-- fcnseg experiment paper: end -->"


def splice(text: str, section: str) -> str:
    """``text`` with its paper section (between :data:`BEGIN` and :data:`END`) replaced by ``section``, or appended."""
    block = f"{BEGIN}\n{section.rstrip()}\n{END}\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        return head + block + rest.split(END, 1)[1].lstrip("\n")
    return (text.rstrip() + "\n\n" if text.strip() else "") + block


def paper_section(text: str) -> str:
    """What follows the miniature's head in ``text``: the paper experiment's section (markers included) and any
    text after it (hand-written notes on both reports), or ``""`` without a paper section."""
    return text[text.index(BEGIN) :].rstrip("\n") + "\n" if BEGIN in text and END in text else ""
