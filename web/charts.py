"""The summary report's charts, drawn on the server by matplotlib (Agg, SVG) from the report's figures.

Each chart is an SVG returned as a `data:image/svg+xml;base64,...` URI for an <img>: the page's
Content-Security-Policy allows images from data: but no inline style (matplotlib's SVG carries a <style>
element and style attributes), and WeasyPrint draws the same data: image in the PDF without fetching
anything. Text is drawn as glyph outlines in the Noto Sans CJK font from Debian's fonts-noto-cjk (found
through matplotlib's font manager, or loaded from /usr/share/fonts/opentype/noto); where it is missing,
DejaVu Sans draws what it can and the page still works.
"""

from __future__ import annotations

import base64
import functools
import io
import logging
import math
import warnings
from glob import glob
from typing import Any

from flask_babel import gettext as _

log = logging.getLogger(__name__)

CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans CJK TC")
FONT_GLOBS = ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", "/usr/share/fonts/opentype/noto/*CJK*.ttc",
              "/usr/share/fonts/**/NotoSansCJK*.ttc", "/usr/share/fonts/**/NotoSansSC*.otf")
PRIORITY_COLOURS = {"urgent": "#c0392b", "high": "#e67e22", "normal": "#2e86c1", "low": "#7f8c8d"}
BLUE, GREEN, GREY, RED = "#2e86c1", "#27ae60", "#bdc3c7", "#c0392b"


@functools.cache
def font_family() -> list[str]:
    """The font families charts use: a Noto Sans CJK face when one can be found, then DejaVu Sans."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import font_manager

    known = {f.name for f in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
        if family in known:
            return [family, "DejaVu Sans"]
    for pattern in FONT_GLOBS:
        for path in sorted(glob(pattern, recursive=True)):
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError) as exc:
                log.warning("chart font %s cannot be loaded: %s", path, exc)
                continue
            known = {f.name for f in font_manager.fontManager.ttflist}
            for family in CJK_FAMILIES:
                if family in known:
                    return [family, "DejaVu Sans"]
    log.warning("no Noto Sans CJK font found (Debian: fonts-noto-cjk): charts draw Chinese as boxes")
    return ["DejaVu Sans"]


def _figure(width: float = 6.4, height: float = 3.4):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.subplots()


def _rc() -> dict[str, Any]:
    return {"font.family": font_family(), "font.size": 9, "svg.hashsalt": "linli", "svg.fonttype": "none",
            "axes.spines.top": False, "axes.spines.right": False}


def _svg(draw) -> str:
    """Run `draw()` (which returns a Figure) under the charts' settings; the SVG as a data: URI."""
    import matplotlib

    with matplotlib.rc_context(_rc()), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a glyph missing from the fallback font must not break the page
        fig = draw()
        out = io.BytesIO()
        fig.savefig(out, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def _empty(ax, text: str | None = None) -> None:
    ax.text(0.5, 0.5, text or _("Nothing in this period"), ha="center", va="center", transform=ax.transAxes,
            color="#7f8c8d")
    ax.set_xticks([])
    ax.set_yticks([])


def coverage_by_priority(figures: dict, labels: dict[str, str]) -> str:
    """Places filled of those asked for, per week and priority (a line per priority, in %)."""
    def draw():
        fig, ax = _figure()
        weeks = sorted({w["week"] for w in figures["weeks"]})
        if not weeks:
            _empty(ax)
            return fig
        for priority, colour in PRIORITY_COLOURS.items():
            rows = {w["week"]: w for w in figures["weeks"] if w["priority"] == priority}
            if not rows:
                continue
            xs = [i for i, w in enumerate(weeks) if w in rows and rows[w]["positions"]]
            ys = [100 * rows[weeks[i]]["filled"] / rows[weeks[i]]["positions"] for i in xs]
            ax.plot(xs, ys, marker="o", color=colour, label=labels.get(priority, priority), linewidth=1.8)
        ax.set_ylim(0, 105)
        ax.set_ylabel(_("Places filled (%)"))
        step = max(1, math.ceil(len(weeks) / 12))
        ax.set_xticks(range(0, len(weeks), step), [weeks[i][5:] for i in range(0, len(weeks), step)])
        ax.set_xlabel(_("Week beginning"))
        ax.legend(loc="lower left", frameon=False, ncols=4)
        ax.grid(axis="y", alpha=0.3)
        return fig
    return _svg(draw)


def hours_by_category(figures: dict, names: dict[str, str]) -> str:
    """Hours served per service category (horizontal bars, most first)."""
    def draw():
        rows = [c for c in figures["categories"] if c["hours"] > 0]
        fig, ax = _figure(height=max(2.4, 0.38 * len(rows) + 1.0))
        if not rows:
            _empty(ax)
            return fig
        rows = rows[::-1]
        bars = ax.barh([names.get(c["code"], c["code"]) for c in rows], [c["hours"] for c in rows], color=BLUE)
        ax.bar_label(bars, fmt="%.1f", padding=3)
        ax.set_xlabel(_("Hours"))
        ax.margins(x=0.15)
        return fig
    return _svg(draw)


def services_by_kind(figures: dict, names: dict[str, str]) -> str:
    """Services per kind of work named in the notice (bars)."""
    def draw():
        fig, ax = _figure(height=3.0)
        kinds = figures["kinds"]
        if not any(k["services"] for k in kinds):
            _empty(ax)
            return fig
        bars = ax.bar([names.get(k["code"], k["code"]) for k in kinds], [k["services"] for k in kinds], color=GREEN)
        ax.bar_label(bars, padding=2)
        ax.set_ylabel(_("Services"))
        ax.margins(y=0.15)
        return fig
    return _svg(draw)


def unmet_map(figures: dict) -> str:
    """Communities at their centre's latitude and longitude, each a circle sized by the places left short
    (grey: none short); no boundaries or tiles, the names of the short ones beside them."""
    def draw():
        fig, ax = _figure(height=4.2)
        points = [c for c in figures["communities"] if c.get("lat") is not None and c.get("lon") is not None]
        if not points:
            _empty(ax, _("No communities in this area"))
            return fig
        most = max([c["short"] for c in points] + [1])
        fine = [c for c in points if c["short"] <= 0]
        short = sorted((c for c in points if c["short"] > 0), key=lambda c: -c["short"])
        ax.scatter([c["lon"] for c in fine], [c["lat"] for c in fine], s=14, color=GREY, label=_("None short"),
                   zorder=2)
        if short:
            ax.scatter([c["lon"] for c in short], [c["lat"] for c in short],
                       s=[40 + 900 * c["short"] / most for c in short], color=RED, alpha=0.55, edgecolors=RED,
                       label=_("Places short"), zorder=3)
            for c in short[:15]:
                ax.annotate(f"{c['name']} {c['short']}", (c["lon"], c["lat"]), textcoords="offset points",
                            xytext=(6, 4), fontsize=8)
        mid = sum(c["lat"] for c in points) / len(points)
        ax.set_aspect(1 / max(math.cos(math.radians(mid)), 0.1), adjustable="datalim")
        ax.margins(0.15)
        ax.tick_params(labelsize=7)
        ax.set_xlabel(_("Longitude"))
        ax.set_ylabel(_("Latitude"))
        ax.legend(loc="best", frameon=False, markerscale=0.5)
        return fig
    return _svg(draw)


def organizations_participation(figures: dict, names: dict[str, str]) -> str:
    """Organizations in the area and those that took part, per type (paired bars)."""
    def draw():
        fig, ax = _figure(height=3.0)
        rows = figures["organizations"]["by_type"]
        if not rows:
            _empty(ax, _("No organizations in this area"))
            return fig
        xs = list(range(len(rows)))
        a = ax.bar([x - 0.2 for x in xs], [r["in_area"] for r in rows], width=0.4, color=GREY, label=_("In the area"))
        b = ax.bar([x + 0.2 for x in xs], [r["took_part"] for r in rows], width=0.4, color=BLUE, label=_("Took part"))
        ax.bar_label(a, padding=2)
        ax.bar_label(b, padding=2)
        ax.set_xticks(xs, [names.get(r["type"], r["type"]) for r in rows])
        ax.margins(y=0.2)
        ax.legend(frameon=False)
        return fig
    return _svg(draw)
