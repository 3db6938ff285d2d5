"""A self-contained HTML report built from sections (images embedded as base64).

>>> report = Report("scratchdet report")
>>> report.add_section("Metrics", Table(["metric", "all"], [["AP", "0.302"]]))
>>> report.write("report.html")  # doctest: +SKIP

A section holds blocks: :class:`Html` (trusted markup), :class:`Text` (escaped),
:class:`Table`, :class:`Image` and :class:`Gallery` (images kept together in one row); a plain
``str`` is taken as HTML. Later issues add their own sections (model, benchmark) the same way.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from scratchdet.io import write_text_atomic

_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}


@dataclass(frozen=True)
class Html:
    """Trusted HTML, inserted as is."""

    markup: str


@dataclass(frozen=True)
class Text:
    """Plain text, escaped; ``pre=True`` keeps line breaks and alignment."""

    text: str
    pre: bool = False


@dataclass(frozen=True)
class Table:
    """A table of strings; the header row is separate."""

    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    caption: str = ""

    @classmethod
    def from_markdown(cls, text: str, caption: str = "") -> Table:
        """Parse a GitHub pipe table (header, ``---`` rule, rows)."""
        lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip().startswith("|")]
        cells = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]
        body = [r for r in cells[1:] if not all(re.fullmatch(r":?-+:?", c) for c in r)]
        if not cells:
            raise ValueError("not a markdown table: expected lines starting with '|'")
        return cls(cells[0], body, caption)


@dataclass(frozen=True)
class Image:
    """An image embedded as a data URI."""

    data: bytes
    mime: str = "image/png"
    caption: str = ""
    width: int | None = None  # display width in px; None = natural (max 100%)

    @classmethod
    def from_path(cls, path: str | Path, caption: str = "", width: int | None = None) -> Image:
        """Read an image file (PNG, JPEG or SVG)."""
        p = Path(path)
        mime = _MIME.get(p.suffix.lower())
        if mime is None:
            raise ValueError(f"{p}: unsupported image type; expected one of {', '.join(_MIME)}")
        return cls(p.read_bytes(), mime, caption, width)


@dataclass(frozen=True)
class Gallery:
    """Images of one subject (a photo's overlay and its crops) kept together in one row
    under a heading, so that the next subject starts on a new row."""

    title: str
    images: Sequence[Image]


Block = Html | Text | Table | Image | Gallery | str


@dataclass
class Section:
    """A titled list of blocks."""

    title: str
    blocks: list[Block] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-") or "section"


def _render_block(block: Block) -> str:
    if isinstance(block, str):
        return block
    if isinstance(block, Html):
        return block.markup
    if isinstance(block, Text):
        tag = "pre" if block.pre else "p"
        return f"<{tag}>{html.escape(block.text)}</{tag}>"
    if isinstance(block, Table):
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in block.header)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
            for row in block.rows
        )
        cap = f"<caption>{html.escape(block.caption)}</caption>" if block.caption else ""
        return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if isinstance(block, Gallery):
        figures = "".join(_render_block(img) for img in block.images)
        return f'<div class="gallery"><h3>{html.escape(block.title)}</h3>{figures}</div>'
    if isinstance(block, Image):
        uri = f"data:{block.mime};base64,{base64.b64encode(block.data).decode('ascii')}"
        width = f' width="{block.width}"' if block.width else ""
        cap = f"<figcaption>{html.escape(block.caption)}</figcaption>" if block.caption else ""
        return f'<figure><img src="{uri}"{width} alt="{html.escape(block.caption)}">{cap}</figure>'
    raise TypeError(f"unsupported report block {type(block).__name__}; "
                    "expected Html, Text, Table, Image, Gallery or str")


_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
h1{border-bottom:2px solid #444}h2{border-bottom:1px solid #bbb;margin-top:2em}
table{border-collapse:collapse;margin:1em 0;font-variant-numeric:tabular-nums}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f0f0f0}
td:first-child,th:first-child{text-align:left}caption{text-align:left;font-weight:bold}
figure{display:inline-block;margin:0.5em;vertical-align:top}img{max-width:100%}
figcaption{font-size:0.85em;color:#555;max-width:600px}pre{background:#f6f6f6;padding:0.6em}
ul.toc{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:0.3em 1.2em}
.gallery{display:block;clear:both;border-top:1px solid #ddd;margin:1em 0;padding-top:0.3em}
.gallery h3{font-size:1em;margin:0.3em 0}
"""


class Report:
    """Sections rendered into one HTML file that needs nothing else to display."""

    def __init__(self, title: str = "scratchdet report") -> None:
        self.title = title
        self.sections: list[Section] = []

    def add_section(self, title: str, *blocks: Block) -> Section:
        """Append a section; more blocks can be appended to the returned ``Section.blocks``."""
        for block in blocks:
            if not isinstance(block, Html | Text | Table | Image | Gallery | str):
                raise TypeError(f"section '{title}': unsupported block {type(block).__name__}")
        section = Section(title, list(blocks))
        self.sections.append(section)
        return section

    def render(self) -> str:
        """The whole document."""
        toc = "".join(f'<li><a href="#{s.anchor}">{html.escape(s.title)}</a></li>'
                      for s in self.sections)
        parts = [
            "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style></head><body>",
            f"<h1>{html.escape(self.title)}</h1>", f'<ul class="toc">{toc}</ul>',
        ]
        for s in self.sections:
            parts.append(f'<h2 id="{s.anchor}">{html.escape(s.title)}</h2>')
            parts.extend(_render_block(b) for b in s.blocks)
        parts.append("</body></html>")
        return "\n".join(parts) + "\n"

    def write(self, path: str | Path, force: bool = True) -> Path:
        """Write atomically (temp file + rename); ``force=False`` refuses to overwrite."""
        return write_text_atomic(path, self.render(), force)


def markdown_blocks(text: str, base_dir: Path | None = None) -> list[Block]:
    """A small markdown subset as blocks: headings, pipe tables, images, paragraphs."""
    blocks: list[Block] = []
    table: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line.strip().startswith("|"):
            table.append(line)
            continue
        if table:
            blocks.append(Table.from_markdown("\n".join(table)))
            table = []
        image = re.fullmatch(r"\s*!\[([^\]]*)\]\(([^)]+)\)\s*", line)
        if image and base_dir is not None and (base_dir / image.group(2)).is_file():
            blocks.append(Image.from_path(base_dir / image.group(2), image.group(1)))
        elif line.startswith("#"):
            level = min(6, len(line) - len(line.lstrip("#")) + 2)
            blocks.append(Html(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>"))
        elif line.strip():
            blocks.append(Text(line.strip()))
    return blocks
