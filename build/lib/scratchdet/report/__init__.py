"""Self-contained HTML reports built from sections (see :class:`Report`)."""

from scratchdet.report.assemble import build_report
from scratchdet.report.html import (
    Gallery,
    Html,
    Image,
    Report,
    Section,
    Table,
    Text,
    markdown_blocks,
)

__all__ = ["Gallery", "Html", "Image", "Report", "Section", "Table", "Text", "build_report",
           "markdown_blocks"]
