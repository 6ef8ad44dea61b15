"""Figures as inline SVG, written by hand.

Inline SVG keeps the report one self-contained file with no network fetch and no plotting
library at report time; it stays sharp when zoomed or printed, its text can be searched and
copied, and every cell carries its exact numbers in a tooltip (<title>) and, where there is
evidence, a link to it. All text is escaped: topic titles and model names are user input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

# Colours that survive greyscale printing and the common colour-vision deficiencies well enough
# (ColorBrewer): red refusal, orange deflection, green answer; outcomes in neutral tones.
COLOURS: dict[str, str] = {
    "refusal": "#b2182b",
    "deflection": "#e08214",
    "answer": "#1b7837",
    "empty": "#bababa",
    "blocked": "#542788",
    "error": "#4d4d4d",
    "unlabelled": "#e0e0e0",
}
NEUTRAL = (247, 247, 247)
NEGATIVE = (33, 102, 172)  # fewer non-answers than the baseline: blue
FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,'Noto Sans',sans-serif"


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16))


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    t = min(1.0, max(0.0, t))
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def _hex(c: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*c)


def _ink(c: tuple[int, int, int]) -> str:
    """Black or white text, whichever reads on this fill (relative luminance)."""
    lum = 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]
    return "#111" if lum > 140 else "#fff"


def fill_for(value: float, palette: str) -> tuple[int, int, int] | None:
    """The fill of a cell: `palette` is a label (sequential, white to its colour) or "diff"
    (diverging blue-white-red, saturating at +-50 percentage points)."""
    if value is None or math.isnan(value):
        return None
    if palette == "diff":
        t = min(1.0, abs(value) / 0.5)
        return _mix(NEUTRAL, _rgb(COLOURS["refusal"]) if value > 0 else NEGATIVE, t)
    return _mix(NEUTRAL, _rgb(COLOURS.get(palette, COLOURS["refusal"])), value)


@dataclass(frozen=True)
class Cell:
    """One heatmap cell: its value (nan for no data), two lines of text, a tooltip, a link."""

    value: float
    text: str
    sub: str
    title: str
    href: str | None = None
    mark: bool = False  # significant: drawn with a heavy border and a star


def _clip(label: str, chars: int) -> str:
    return label if len(label) <= chars else label[: chars - 1] + "…"


@dataclass(frozen=True)
class Panel:
    """One block of columns in a heatmap, with its own palette and legend."""

    title: str
    palette: str
    cols: Sequence[str]
    col_labels: dict[str, str]
    cells: dict[tuple[str, str], Cell]
    neutral_label: str = "no difference"


def heatmap(
    rows: Sequence[str],
    row_labels: dict[str, str],
    cols: Sequence[str],
    col_labels: dict[str, str],
    cells: dict[tuple[str, str], Cell],
    *,
    palette: str,
    caption: str,
    figure_id: str,
    separate_last_row: bool = False,
    neutral_label: str = "no difference",
) -> str:
    """An SVG heatmap with the value and n written in every cell."""
    panel = Panel("", palette, cols, col_labels, cells, neutral_label)
    return heatmap_panels(
        rows,
        row_labels,
        [panel],
        caption=caption,
        figure_id=figure_id,
        separate_last_row=separate_last_row,
    )


def heatmap_panels(
    rows: Sequence[str],
    row_labels: dict[str, str],
    panels: Sequence[Panel],
    *,
    caption: str,
    figure_id: str,
    separate_last_row: bool = False,
) -> str:
    """Heatmaps side by side sharing one set of row labels (e.g. refusal, deflection and answer
    rates of every model per topic), so the eye moves along a row instead of between figures."""
    cw, ch, panel_gap = 58, 32, 22
    label_chars = min(42, max((len(row_labels.get(r, r)) for r in rows), default=8))
    left = 12 + int(label_chars * 6.6)
    col_chars = min(
        28, max((len(p.col_labels.get(c, c)) for p in panels for c in p.cols), default=4)
    )
    rotate = col_chars * 6.6 > cw - 6
    titled = any(p.title for p in panels)
    head = 20 if titled else 0
    top = head + ((20 + int(col_chars * 6.6 * 0.66)) if rotate else 26)
    gap = 8 if separate_last_row and len(rows) > 1 else 0
    widths = [max(cw * len(p.cols), 5 * 34 + 10) for p in panels]
    xs = [left + sum(widths[:i]) + panel_gap * i for i in range(len(panels))]
    width = xs[-1] + widths[-1] + 16 + (int(col_chars * 6.6 * 0.77) if rotate else 0)
    if len(panels) == 1:  # room for the legend's note
        width = max(width, xs[0] + 5 * 34 + 12 + 160)
    height = top + ch * len(rows) + gap + 40
    palettes = " ".join(p.palette for p in panels)
    out: list[str] = [
        f'<svg class="heatmap" id="{escape(figure_id)}" data-palette="{escape(palettes)}" '
        f'xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(caption)}" '
        f'style="{FONT}">',
        f"<title>{escape(caption)}</title>",
    ]
    for i, row in enumerate(rows):
        y = top + i * ch + (gap if separate_last_row and i == len(rows) - 1 else 0)
        full = row_labels.get(row, row)
        out.append(
            f'<text x="{left - 6}" y="{y + ch / 2 + 4:.0f}" font-size="12" '
            f'text-anchor="end"><title>{escape(full)}</title>'
            f"{escape(_clip(full, 42))}</text>"
        )
    for panel, x0 in zip(panels, xs, strict=True):
        if panel.title:
            out.append(
                f'<text x="{x0}" y="14" font-size="13" font-weight="700">'
                f"{escape(panel.title)}</text>"
            )
        for j, col in enumerate(panel.cols):
            x = x0 + j * cw + cw / 2
            label = escape(_clip(panel.col_labels.get(col, col), 28))
            if rotate:
                out.append(
                    f'<text x="{x:.0f}" y="{top - 6}" font-size="11" '
                    f'transform="rotate(-40 {x:.0f} {top - 6})">{label}</text>'
                )
            else:
                out.append(
                    f'<text x="{x:.0f}" y="{top - 8}" font-size="12" font-weight="600" '
                    f'text-anchor="middle">{label}</text>'
                )
        for i, row in enumerate(rows):
            y = top + i * ch + (gap if separate_last_row and i == len(rows) - 1 else 0)
            for j, col in enumerate(panel.cols):
                out.append(
                    _cell(x0 + j * cw, y, cw, ch, panel.cells.get((row, col)), panel.palette)
                )
        out.append(
            _legend(
                x0,
                top + ch * len(rows) + gap + 12,
                panel.palette,
                panel.neutral_label,
                note=len(panels) == 1,
            )
        )
    out.append("</svg>")
    return "".join(out)


def _cell(x: float, y: float, w: int, h: int, cell: Cell | None, palette: str) -> str:
    fill = fill_for(cell.value, palette) if cell else None
    if cell is None or fill is None:
        tip = escape(cell.title) if cell else "no replies"
        return (
            f'<g class="cell empty"><title>{tip}</title><rect x="{x}" y="{y}" width="{w - 2}" '
            f'height="{h - 2}" fill="#fff" stroke="#ddd"/><text x="{x + w / 2 - 1:.0f}" '
            f'y="{y + h / 2 + 3:.0f}" font-size="10" fill="#999" text-anchor="middle">'
            f"{escape(cell.sub) if cell else '–'}</text></g>"
        )
    ink = _ink(fill)
    stroke = ' stroke="#111" stroke-width="2.5"' if cell.mark else ""
    body = (
        f'<rect x="{x}" y="{y}" width="{w - 2}" height="{h - 2}" fill="{_hex(fill)}"{stroke}/>'
        f'<text x="{x + w / 2 - 1:.0f}" y="{y + 13}" font-size="12" font-weight="600" '
        f'fill="{ink}" text-anchor="middle">{escape(cell.text)}{"★" if cell.mark else ""}'
        f'</text><text x="{x + w / 2 - 1:.0f}" y="{y + 25}" font-size="9.5" fill="{ink}" '
        f'text-anchor="middle">{escape(cell.sub)}</text>'
    )
    group = f'<g class="cell"><title>{escape(cell.title)}</title>{body}</g>'
    if cell.href:
        return f'<a href="{escape(cell.href)}">{group}</a>'
    return group


def _legend(x: float, y: float, palette: str, neutral_label: str, *, note: bool = True) -> str:
    if palette == "diff":
        stops = [-0.5, -0.25, 0.0, 0.25, 0.5]
        labels = ["−50 pp", "", neutral_label, "", "+50 pp"]
    else:
        stops = [0.0, 0.25, 0.5, 0.75, 1.0]
        labels = ["0%", "", "50%", "", "100%"]
    parts = []
    for i, (v, lab) in enumerate(zip(stops, labels, strict=True)):
        c = fill_for(v, palette) or NEUTRAL
        parts.append(
            f'<rect x="{x + i * 34}" y="{y}" width="34" height="10" fill="{_hex(c)}" '
            f'stroke="#ccc" stroke-width="0.5"/>'
        )
        if lab:
            parts.append(
                f'<text x="{x + i * 34 + 17}" y="{y + 22}" font-size="10" fill="#555" '
                f'text-anchor="middle">{escape(lab)}</text>'
            )
    if note:
        text = "★ significant after correction" if palette == "diff" else "n = labelled replies"
        parts.append(
            f'<text x="{x + 5 * 34 + 12}" y="{y + 9}" font-size="10" fill="#555">'
            f"{escape(text)}</text>"
        )
    return "".join(parts)


def stacked_bars(
    rows: Sequence[tuple[str, dict[str, int]]], *, caption: str, figure_id: str
) -> str:
    """One horizontal bar per model splitting every job by status, outcomes included, so
    blocked and failed requests are seen next to the labels instead of hidden in them."""
    label_w = 12 + int(min(40, max((len(r[0]) for r in rows), default=8)) * 6.6)
    bar_w, bar_h = 520, 22
    width = label_w + bar_w + 20
    height = 30 + len(rows) * (bar_h + 10) + 30
    out = [
        f'<svg class="bars" id="{escape(figure_id)}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(caption)}" style="{FONT}"><title>{escape(caption)}</title>'
    ]
    for i, (name, counts) in enumerate(rows):
        y = 10 + i * (bar_h + 10)
        total = sum(counts.values()) or 1
        out.append(
            f'<text x="{label_w - 6}" y="{y + 15}" font-size="12" text-anchor="end">'
            f"{escape(_clip(name, 40))}</text>"
        )
        x = float(label_w)
        for status, colour in COLOURS.items():
            k = counts.get(status, 0)
            if not k:
                continue
            w = bar_w * k / total
            tip = f"{name}: {status} {k} of {total} ({100 * k / total:.1f}%)"
            text = (
                (
                    f'<text x="{x + w / 2:.1f}" y="{y + 15}" font-size="10" text-anchor="middle" '
                    f'fill="{_ink(_rgb(colour))}">{100 * k / total:.0f}%</text>'
                )
                if w > 30
                else ""
            )
            out.append(
                f'<g><title>{escape(tip)}</title><rect x="{x:.1f}" y="{y}" '
                f'width="{w:.1f}" height="{bar_h}" fill="{colour}"/>{text}</g>'
            )
            x += w
    ly = 10 + len(rows) * (bar_h + 10) + 8
    for i, (status, colour) in enumerate(COLOURS.items()):
        lx = label_w + i * 74
        out.append(
            f'<rect x="{lx}" y="{ly}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{lx + 14}" y="{ly + 9}" font-size="10">{status}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def intervals(
    rows: Sequence[tuple[str, str, float, float, float]], *, caption: str, figure_id: str
) -> str:
    """Rates with their 95% intervals on a shared 0-100% axis (rows: label, series, rate, lo,
    hi), e.g. each model's control and sensitive non-answer rates one above the other."""
    label_w = 12 + int(min(48, max((len(r[0]) + len(r[1]) + 3 for r in rows), default=8)) * 6.4)
    axis_w, row_h = 440, 20
    width = label_w + axis_w + 30
    height = 20 + len(rows) * row_h + 34
    out = [
        f'<svg class="intervals" id="{escape(figure_id)}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(caption)}" style="{FONT}"><title>{escape(caption)}</title>'
    ]
    bottom = 12 + len(rows) * row_h
    for t in (0, 0.25, 0.5, 0.75, 1.0):
        gx = label_w + axis_w * t
        out.append(
            f'<line x1="{gx}" y1="8" x2="{gx}" y2="{bottom}" stroke="#e5e5e5"/>'
            f'<text x="{gx}" y="{bottom + 14}" font-size="10" fill="#555" '
            f'text-anchor="middle">{int(t * 100)}%</text>'
        )
    for i, (name, series, rate, lo, hi) in enumerate(rows):
        y = 12 + i * row_h + row_h / 2
        colour = COLOURS["answer"] if series == "controls" else COLOURS["refusal"]
        out.append(
            f'<text x="{label_w - 8}" y="{y + 4:.0f}" font-size="11" text-anchor="end">'
            f"{escape(_clip(name, 36))} · {escape(series)}</text>"
        )
        if math.isnan(rate):
            continue
        tip = f"{name} {series}: {100 * rate:.1f}% (95% CI {100 * lo:.1f}–{100 * hi:.1f}%)"
        out.append(
            f'<g><title>{escape(tip)}</title><line x1="{label_w + axis_w * lo:.1f}" '
            f'y1="{y:.0f}" x2="{label_w + axis_w * hi:.1f}" y2="{y:.0f}" '
            f'stroke="{colour}" stroke-width="2"/><circle cx="{label_w + axis_w * rate:.1f}"'
            f' cy="{y:.0f}" r="4.5" fill="{colour}"/></g>'
        )
    out.append("</svg>")
    return "".join(out)
