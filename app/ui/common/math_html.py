"""Formulas in replies ($...$, $$...$$, \\(...\\), \\[...\\]) typeset as images Qt's rich text shows.

ziamath turns LaTeX into an SVG of the glyphs' outlines (pure Python, with its own STIX font: nothing
to install, nothing fetched); the SVG goes into the HTML as a data URL, which QTextDocument loads
through Qt's SVG image plugin. SVG 2 features are off (`svg2 = False`): Qt's SVG renderer draws
only SVG Tiny, and ziamath's SVG 2 output reuses glyphs with <symbol>, which it leaves out. A formula
ziamath cannot read stays as its source text, so nothing the model wrote is hidden.
"""

from __future__ import annotations

import base64
import html
import logging
import threading
from functools import lru_cache

log = logging.getLogger(__name__)


def preload() -> None:
    """Import ziamath on a thread of its own (it takes ~0.25 s), so the first formula of a session
    does not hold the GUI thread up for it."""

    def load() -> None:
        try:
            import ziamath  # noqa: F401 - the import is the work
        except Exception:  # a broken install shows formulas as their source, see math_html
            log.warning("ziamath could not be imported; formulas are shown as LaTeX", exc_info=True)

    threading.Thread(target=load, name="fireside-math-preload", daemon=True).start()


@lru_cache(maxsize=512)
def math_html(latex: str, display: bool, color: str, size: float) -> str:
    """`latex` as an <img> (display: on a line of its own, larger), or its source text when it does
    not parse; `color` as "#rrggbb", `size` in points."""
    source = latex.strip()
    shown = f"$${source}$$" if display else f"${source}$"
    if not source:
        return html.escape(shown)
    try:
        import ziamath  # imported on first use: a reply with no formula never pays for it

        ziamath.config.svg2 = False
        # ziamath sizes in pixels, Qt's text in points (at Qt's logical 96 dpi: 4/3 px per point).
        pixels = size * 4 / 3 * (1.15 if display else 1.0)
        svg = ziamath.Math.fromlatex(source, size=pixels, color=color).svg()
    except Exception as exc:  # any parse or layout error: show what the model wrote
        log.debug("formula not typeset (%s): %r", exc, source)
        return f"<code>{html.escape(shown)}</code>"
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    alt = html.escape(source, quote=True)
    image = f'<img src="data:image/svg+xml;base64,{data}" alt="{alt}" title="{alt}" align="middle">'
    return f'<p align="center">{image}</p>' if display else image
