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
    """The paper experiment's section of ``text`` (markers included, with a newline), or ``""`` without one."""
    return text[text.index(BEGIN) : text.index(END) + len(END)] + "\n" if BEGIN in text and END in text else ""
