"""Server-rendered inline SVG charts: bars, stacked shares and lines, no JavaScript.

Every label passes through ``escape``; numbers are formatted here. The charts scale with
their container (``viewBox`` + ``width: 100%`` in CSS).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from inftool_web.loop.selectors import MODE_LABELS, MODES

PALETTE = ("#3b6fd8", "#e0803a", "#3aa37a", "#c94b6d", "#8a63d2", "#8d8d8d", "#c2a32b")
EASY_HARD = ("#7cc6a4", "#d9694a")


def _nice_max(value: float, ticks: int = 4) -> float:
    """The smallest 'round' axis top above ``value`` whose ``ticks`` steps are round too."""
    if value <= 0:
        return 1.0
    raw = value / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    for mult in (1, 2, 2.5, 5, 10):
        step = mult * magnitude
        if step >= raw and (step >= 1 or value < 1) and (magnitude >= 1 or mult != 2.5):
            return step * ticks
    return 10 * magnitude * ticks


def _fmt(value: float, fmt: str) -> str:
    return fmt.format(value)


def _legend(names: Sequence[str], colors: Sequence[str], x: float, y: float, max_x: float = 10_000) -> list[str]:
    out, cx = [], x
    for name, color in zip(names, colors, strict=False):
        w = 22 + 6.5 * len(str(name))
        if cx + w > max_x and cx > x:
            cx, y = x, y + 15
        out.append(f'<rect x="{cx:.1f}" y="{y - 9:.1f}" width="10" height="10" rx="2" fill="{color}"/>')
        out.append(f'<text x="{cx + 14:.1f}" y="{y:.1f}" class="legend">{escape(name)}</text>')
        cx += w
    return out


def _legend_rows(names: Sequence[str], width: float) -> int:
    rows, cx = 1, 0.0
    for name in names:
        w = 22 + 6.5 * len(str(name))
        if cx + w > width and cx > 0:
            rows, cx = rows + 1, 0.0
        cx += w
    return rows


def _empty(title: str, width: int, height: int) -> SafeString:
    return mark_safe(
        f'<svg class="chart" viewBox="0 0 {width} {height}" style="max-width: {width}px" role="img" aria-label="{escape(title)}">'
        f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" class="muted">no data yet</text></svg>'
    )


def bar_chart(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    title: str,
    value_fmt: str = "{:.0f}",
    y_max: float | None = None,
    width: int = 560,
    height: int = 240,
) -> SafeString:
    """Grouped vertical bars: one group per label, one bar per series."""
    if not labels or not series or not any(v for _, vals in series for v in vals):
        return _empty(title, width, height)
    left, right, top = 44, 10, 12
    group_w = (width - left - right) / len(labels)
    longest = max(len(str(lab)) for lab in labels)
    rotate = longest * 6.2 > group_w - 4
    label_h = min(90, 8 + 5 * min(longest, 16)) if rotate else 18
    legend_h = 15 * _legend_rows([n for n, _ in series], width - left) + 6 if len(series) > 1 else 0
    height = max(height, top + 120 + label_h + legend_h)
    plot_h = height - top - label_h - legend_h - 6
    top_value = y_max if y_max is not None else _nice_max(max(v for _, vals in series for v in vals))
    bar_w = max(2.0, min(28.0, (group_w - 6) / len(series)))
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" style="max-width: {width}px" role="img" aria-label="{escape(title)}">']
    for i in range(5):
        v = top_value * i / 4
        y = top + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 3:.1f}" text-anchor="end" class="tick">{escape(_fmt(v, value_fmt))}</text>')
    colors = PALETTE if len(series) > 1 else (PALETTE[0],)
    for gi, label in enumerate(labels):
        gx = left + gi * group_w + (group_w - bar_w * len(series)) / 2
        for si, (name, values) in enumerate(series):
            v = values[gi] if gi < len(values) else 0
            h = 0 if top_value == 0 else plot_h * min(v, top_value) / top_value
            x, y = gx + si * bar_w, top + plot_h - h
            tip = f"{name} · {label}: {_fmt(v, value_fmt)}" if len(series) > 1 else f"{label}: {_fmt(v, value_fmt)}"
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w - 1:.1f}" height="{h:.1f}" '
                f'fill="{colors[si % len(colors)]}"><title>{escape(tip)}</title></rect>'
            )
        cx, ly = left + gi * group_w + group_w / 2, top + plot_h + 13
        if rotate:
            short = str(label) if len(str(label)) <= 16 else str(label)[:15] + "…"
            parts.append(f'<text x="{cx:.1f}" y="{ly}" text-anchor="end" transform="rotate(-35 {cx:.1f} {ly})" '
                         f'class="tick">{escape(short)}</text>')
        else:
            parts.append(f'<text x="{cx:.1f}" y="{ly}" text-anchor="middle" class="tick">{escape(label)}</text>')
    if len(series) > 1:
        parts += _legend([n for n, _ in series], colors, left, height - legend_h + 12, width - right)
    parts.append("</svg>")
    return mark_safe("".join(parts))


def hbar_chart(rows: Sequence[tuple[str, float]], *, title: str, width: int = 560) -> SafeString:
    """One horizontal bar per row, longest first; for long labels such as domain / category."""
    if not rows or not any(v for _, v in rows):
        return _empty(title, width, 80)
    label_w, right, row_h, top = 190, 40, 20, 4
    height = top + row_h * len(rows) + 4
    top_value = max(v for _, v in rows)
    plot_w = width - label_w - right
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" style="max-width: {width}px" role="img" aria-label="{escape(title)}">']
    for i, (label, v) in enumerate(rows):
        y = top + i * row_h
        short = str(label) if len(str(label)) <= 32 else str(label)[:31] + "…"
        w = plot_w * v / top_value if top_value else 0
        out.append(f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end" class="tick">{escape(short)}</text>')
        out.append(f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" rx="2" fill="{PALETTE[0]}">'
                   f"<title>{escape(f'{label}: {v:.0f}')}</title></rect>")
        out.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 13}" class="tick">{v:.0f}</text>')
    out.append("</svg>")
    return mark_safe("".join(out))


def share_bars(
    rows: Sequence[tuple[str, Sequence[float]]],
    *,
    parts_names: Sequence[str],
    title: str,
    colors: Sequence[str] = EASY_HARD,
    width: int = 560,
) -> SafeString:
    """One horizontal 100% bar per row, split into parts (e.g. easy / hard), counts labelled."""
    if not rows or not any(sum(v) for _, v in rows):
        return _empty(title, width, 80)
    label_w, right, row_h, top = 130, 50, 22, 8
    height = top + row_h * len(rows) + 26
    plot_w = width - label_w - right
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" style="max-width: {width}px" role="img" aria-label="{escape(title)}">']
    for ri, (label, values) in enumerate(rows):
        y = top + ri * row_h
        total = sum(values)
        short = str(label) if len(str(label)) <= 20 else str(label)[:19] + "…"
        out.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" class="tick">{escape(short)}</text>')
        x = float(label_w)
        for pi, v in enumerate(values):
            w = plot_w * v / total if total else 0
            if w > 0:
                pct = 100 * v / total
                out.append(
                    f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="{colors[pi % len(colors)]}">'
                    f"<title>{escape(f'{label} · {parts_names[pi]}: {v:.0f} ({pct:.0f}%)')}</title></rect>"
                )
                if w > 34:
                    out.append(f'<text x="{x + 4:.1f}" y="{y + 15}" class="in-bar">{pct:.0f}%</text>')
            x += w
        out.append(f'<text x="{width - right + 6}" y="{y + 14}" class="tick">{total:.0f}</text>')
    out += _legend(parts_names, colors, label_w, height - 6)
    out.append("</svg>")
    return mark_safe("".join(out))


def line_chart(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    title: str,
    value_fmt: str = "{:.0%}",
    y_max: float = 1.0,
    width: int = 560,
    height: int = 240,
) -> SafeString:
    """Lines over an ordinal x axis (iterations, checkpoints); ``None`` leaves a gap."""
    if not labels or not series or all(v is None for _, vals in series for v in vals):
        return _empty(title, width, height)
    left, right, top, pad = 44, 14, 12, 40
    legend_h = 15 * _legend_rows([n for n, _ in series], width - left) + 6
    plot_w, plot_h = width - left - right, height - top - 24 - legend_h
    span = plot_w - 2 * pad
    step = span / (len(labels) - 1) if len(labels) > 1 else 0
    x0 = left + pad if len(labels) > 1 else left + plot_w / 2
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" style="max-width: {width}px" role="img" aria-label="{escape(title)}">']
    for i in range(5):
        v = y_max * i / 4
        y = top + plot_h - plot_h * i / 4
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        out.append(f'<text x="{left - 4}" y="{y + 3:.1f}" text-anchor="end" class="tick">{escape(_fmt(v, value_fmt))}</text>')
    for i, label in enumerate(labels):
        short = str(label) if len(str(label)) <= 18 else str(label)[:17] + "…"
        out.append(f'<text x="{x0 + i * step:.1f}" y="{top + plot_h + 15}" text-anchor="middle" class="tick">{escape(short)}</text>')
    for si, (name, values) in enumerate(series):
        color = PALETTE[si % len(PALETTE)]
        points = [
            (x0 + i * step, top + plot_h - plot_h * min(v, y_max) / y_max, v, labels[i])
            for i, v in enumerate(values) if v is not None
        ]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, y, v, label in points:
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{color}">'
                       f"<title>{escape(f'{name} · {label}: {_fmt(v, value_fmt)}')}</title></circle>")
    out += _legend([n for n, _ in series], PALETTE, left, height - legend_h + 12, width - right)
    out.append("</svg>")
    return mark_safe("".join(out))


# ------------------------------------------------------------------ the pages' chart sets


def iteration_charts(stats) -> dict[str, SafeString]:
    """The iteration page's charts, from ``loop.selectors.iteration_stats``."""
    mode_labels = [MODE_LABELS[m] for m in MODES]
    return {
        "score": bar_chart([f"{i / 10:.1f}" for i in range(10)], [("trajectories", stats.score_hist)],
                           title="Execution-consistency score"),
        "mode_difficulty": share_bars(stats.by_mode_difficulty, parts_names=["easy", "hard"],
                                      title="Easy / hard by mode"),
        "domain_difficulty": share_bars(stats.by_domain_difficulty, parts_names=["easy", "hard"],
                                        title="Easy / hard by domain"),
        "tokens": bar_chart(mode_labels, stats.tokens_by_mode, title="Mean tokens per trajectory"),
        "turns": bar_chart(stats.turn_labels, stats.turns_hist, title="Turns per multi-turn conversation"),
        "domains": hbar_chart(stats.per_domain_category, title="Trajectories per domain / category", width=760),
        "acceptance": bar_chart(mode_labels, stats.acceptance_by_mode, title="Acceptance rate",
                                value_fmt="{:.0%}", y_max=1.0),
        "repair": bar_chart(mode_labels, stats.repair_by_mode, title="Repair rate", value_fmt="{:.0%}", y_max=1.0),
    }


def evaluation_charts(table) -> tuple[SafeString, SafeString]:
    """BFCL overall across runs, and accuracy per category (``loop.selectors.evaluation_table``)."""
    short = [f"#{run.iteration.number}" if run.iteration else run.checkpoint.kind for run in table.runs]
    overall = line_chart(short, [("BFCL overall", [run.overall for run in table.runs])], title="BFCL overall")
    per_category = bar_chart(
        table.categories, [(s, [r.accuracy if r else 0.0 for r in (table.cells[c][i] for c in table.categories)])
                           for i, s in enumerate(short)],
        title="BFCL accuracy per category", value_fmt="{:.0%}", y_max=1.0,
    )
    return overall, per_category


def comparison_chart(iterations) -> SafeString:
    """Non-live AST accuracy before and after each iteration, and irrelevance after, over the
    same BFCL items (``loop.selectors.iteration_comparisons``)."""
    labels = [f"#{it.number}" for it in iterations]

    def group(it, name: str, side: str) -> float | None:
        return (it.comparison.get("groups", {}).get(name) or {}).get(side)

    def category(it, name: str, side: str) -> float | None:
        return (it.comparison.get("categories", {}).get(name) or {}).get(side)

    return line_chart(labels, [
        ("non-live AST, input model", [group(it, "non_live_ast", "before") for it in iterations]),
        ("non-live AST, trained model", [group(it, "non_live_ast", "after") for it in iterations]),
        ("irrelevance, trained model", [category(it, "irrelevance", "after") for it in iterations]),
    ], title="BFCL before and after each iteration")


def tree_balance_charts(tree) -> dict[str, SafeString]:
    """The MCP tree's balance (``catalog.selectors.tool_tree``): tools per domain, and the 40
    largest categories, largest first."""
    return {
        "domains": hbar_chart(sorted(((d.name, d.n) for d, _ in tree), key=lambda r: -r[1]), title="Tools per domain"),
        "categories": hbar_chart(sorted(((c.name, c.n) for _, cats in tree for c in cats), key=lambda r: -r[1])[:40],
                                 title="Tools per category (largest 40)"),
    }
