"""The one HTML page writer of every report (the wiring report, the demo report): a title, a
line saying what made the page, then blocks of HTML; pictures are paths relative to the page."""

import html
import subprocess
from pathlib import Path
from typing import Dict, Iterable, Optional

from .atomic import atomic_write_text

__all__ = ["escape", "picture", "provenance", "section", "write_html_page"]

STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:1400px}"
    "img{max-width:100%;border:1px solid #ddd}td,th{padding:2px 10px;text-align:right}"
    ".row{display:flex;gap:12px;align-items:flex-start}.row img{max-height:420px}"
    ".made{color:#555;font-size:90%}"
)

escape = html.escape


def picture(src: str) -> str:
    return f"<img src='{escape(src)}'>"


def section(heading: str, body: str, level: int = 2) -> str:
    return f"<h{level}>{escape(heading)}</h{level}>\n{body}"


def _commit() -> str:
    """The git commit of the package's source, or "unknown" (an installed package)."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def provenance(config: str = "", weights: str = "", **more: str) -> Dict[str, str]:
    """What made a report: the config file, the weights, the source commit, and ``more``."""
    made = {"config": config or "(none)", "weights": weights or "(none: an untrained model)"}
    made.update(more)
    made["commit"] = _commit()
    return made


def write_html_page(
    path: Path, title: str, blocks: Iterable[str], made_by: Optional[Dict[str, str]] = None
) -> None:
    """Write ``path`` (atomically): ``title``, the ``made_by`` line (:func:`provenance`), then
    ``blocks`` of HTML in order."""
    made = ""
    if made_by:
        items = "; ".join(f"{escape(k)}: <code>{escape(str(v))}</code>" for k, v in made_by.items())
        made = f"<p class='made'>Made from {items}.</p>"
    page = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        made,
        *blocks,
        "</body></html>",
    ]
    atomic_write_text(str(path), "\n".join(page))
