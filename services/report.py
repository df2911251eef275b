"""``opsmetrics report``: period figures for people, from a stream worker's API.

It asks ``GET /api/v1/counts`` (docs/openapi-counts.yaml) of one worker (any
worker answers for all partitions) and writes the headline sentence, a table by
division and by month, or with ``--format png`` a chart of weekly counts.
Mount it with ``app.command("report")(report)`` in opsmetrics/cli.py.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Final

import typer

MEASURES: Final = ("warrants_executed", "arrests", "children_safeguarded", "referrals_received")
HEADINGS: Final = {
    "warrants_executed": "Warrants executed",
    "arrests": "People arrested",
    "children_safeguarded": "Children safeguarded",
    "referrals_received": "Referrals received",
}
OPTION_OF: Final = {"from": "--from", "to": "--to", "force": "--force", "division": "--division"}
MONTHS: Final = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


class Format(StrEnum):
    """Output formats of the report."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"
    MARKDOWN = "markdown"
    PNG = "png"


class ReportError(Exception):
    """The worker could not answer; ``option`` names the CLI option at fault, if any."""

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


@dataclass(frozen=True)
class Figures:
    """Everything a report shows, from four answers of the period API."""

    start: date
    end: date
    timezone: str
    force: str | None
    division: str | None
    totals: dict[str, int]
    not_previously_known: int
    by_division: list[dict[str, Any]]
    by_month: list[dict[str, Any]]
    by_week: list[dict[str, Any]]


def fetch(url: str, params: dict[str, str], timeout_s: float = 60.0) -> dict[str, Any]:
    """One answer of ``GET {url}/api/v1/counts``; :class:`ReportError` on any failure."""
    full = f"{url.rstrip('/')}/api/v1/counts?{urllib.parse.urlencode(params)}"
    if not full.startswith(("http://", "https://")):
        raise ReportError(f"--url must start with http:// or https://, got {url!r}", "--url")
    try:
        with urllib.request.urlopen(full, timeout=timeout_s) as resp:  # noqa: S310 - checked scheme
            body: dict[str, Any] = json.loads(resp.read())
            return body
    except urllib.error.HTTPError as exc:
        try:
            err = json.loads(exc.read())
        except ValueError:
            err = {}
        if exc.code == 400 and "parameter" in err:
            option = OPTION_OF.get(err["parameter"], err["parameter"])
            raise ReportError(f"{option}: {err.get('message', 'invalid')}", option) from None
        detail = err.get("message") or exc.reason
        raise ReportError(f"the stream worker at {url} answered {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ReportError(
            f"cannot reach the stream worker at {url} ({exc}); start one with "
            "`opsmetrics worker` or pass --url"
        ) from None


def gather(
    url: str, start: str, end: str, force: str | None = None, division: str | None = None
) -> Figures:
    """Ask the worker for the totals and the groups a report needs."""
    base = {"from": start, "to": end}
    if force:
        base["force"] = force
    if division:
        base["division"] = division
    answers = {g: fetch(url, {**base, "group_by": g}) for g in ("division", "month", "week")}
    known = fetch(url, {**base, "group_by": "previously_known"})
    first = answers["division"]
    not_known = sum(
        g["totals"]["arrests"] or 0
        for g in known["groups"]
        if g["key"]["previously_known"] is False
    )
    return Figures(
        start=date.fromisoformat(first["from"]),
        end=date.fromisoformat(first["to"]),
        timezone=first["timezone"],
        force=first["force"],
        division=first["division"],
        totals=first["totals"],
        not_previously_known=not_known,
        by_division=first["groups"],
        by_month=answers["month"]["groups"],
        by_week=answers["week"]["groups"],
    )


# --------------------------------------------------------------------------- words
def long_date(day: date, year: bool = True) -> str:
    """``1 April 2025`` (or ``1 April``)."""
    text = f"{day.day} {MONTHS[day.month - 1]}"
    return f"{text} {day.year}" if year else text


def period_words(start: date, end: date) -> str:
    """``Between 1 April and 30 September 2025``, ``On 26 October 2025``, ..."""
    if start == end:
        return f"On {long_date(start)}"
    if (start.year, start.month) == (end.year, end.month):
        return f"Between {start.day} and {long_date(end)}"
    return f"Between {long_date(start, start.year != end.year)} and {long_date(end)}"


def _n(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"


def headline(f: Figures) -> str:
    """The one sentence for the press office."""
    t = f.totals
    scope = ""
    if f.force:
        scope = f" in {f.force}" + (f", {f.division} division" if f.division else "")
    arrests = _n(t["arrests"], "person arrested", "people arrested")
    if t["arrests"]:
        verb = "was" if f.not_previously_known == 1 else "were"
        arrests += f", of whom {f.not_previously_known:,} {verb} not previously known"
    parts = [
        _n(t["warrants_executed"], "warrant executed", "warrants executed"),
        arrests,
        _n(t["children_safeguarded"], "child safeguarded", "children safeguarded"),
        _n(t["referrals_received"], "referral received", "referrals received"),
    ]
    return f"{period_words(f.start, f.end)}{scope}: {', '.join(parts)}"


# --------------------------------------------------------------------------- tables
def _rows(f: Figures) -> tuple[list[list[str]], list[list[str]]]:
    """(by division, by month) as text cells, each ending with a total row."""

    def cells(label: str, totals: dict[str, Any]) -> list[str]:
        return [label, *(f"{totals[m] or 0:,}" for m in MEASURES)]

    several = len({g["key"]["force"] for g in f.by_division}) > 1
    division = [
        cells(
            f"{g['key']['force']} / {g['key']['division']}" if several else g["key"]["division"],
            g["totals"],
        )
        for g in f.by_division
    ]
    month = []
    for g in f.by_month:
        first, last = date.fromisoformat(g["from"]), date.fromisoformat(g["to"])
        label = f"{MONTHS[first.month - 1]} {first.year}"
        whole = first.day == 1 and (last + timedelta(days=1)).day == 1
        month.append(cells(label if whole else f"{label} ({first.day}-{last.day})", g["totals"]))
    total = cells("Total", f.totals)
    return [*division, total], [*month, total]


def _text_table(first: str, rows: list[list[str]]) -> str:
    header = [first, *(HEADINGS[m] for m in MEASURES)]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(r: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows[:-1]), rule, line(rows[-1])])


def _markdown_table(first: str, rows: list[list[str]]) -> str:
    header = [first, *(HEADINGS[m] for m in MEASURES)]
    out = ["| " + " | ".join(header) + " |", "|---" + "|---:" * len(MEASURES) + "|"]
    for i, r in enumerate(rows):
        cells = [f"**{c}**" for c in r] if i == len(rows) - 1 else r
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def render_table(f: Figures) -> str:
    """Plain text for a terminal."""
    division, month = _rows(f)
    return (
        f"{headline(f)}.\n\n"
        f"By division\n\n{_text_table('Division', division)}\n\n"
        f"By month\n\n{_text_table('Month', month)}\n\n"
        f"Dates are local ({f.timezone}); arrests count people, safeguarding counts children.\n"
    )


def render_markdown(f: Figures) -> str:
    """Markdown for a briefing or a README."""
    division, month = _rows(f)
    return (
        f"**{headline(f)}.**\n\n"
        f"### By division\n\n{_markdown_table('Division', division)}\n\n"
        f"### By month\n\n{_markdown_table('Month', month)}\n\n"
        f"Dates are local ({f.timezone}); arrests count people, safeguarding counts children.\n"
    )


def render_csv(f: Figures) -> str:
    """One row per total, division, month and previously-known group (empty: n/a)."""
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(["group", "force", "division", "period", "from", "to", *MEASURES])
    start, end = f.start.isoformat(), f.end.isoformat()
    out.writerow(["total", f.force or "", f.division or "", "", start, end, *_csv(f.totals)])
    for g in f.by_division:
        k = g["key"]
        out.writerow(["division", k["force"], k["division"], "", start, end, *_csv(g["totals"])])
    for g in f.by_month:
        row = ["month", f.force or "", f.division or "", g["key"]["month"], g["from"], g["to"]]
        out.writerow([*row, *_csv(g["totals"])])
    known = {"arrests": f.totals["arrests"] - f.not_previously_known}
    not_known = {"arrests": f.not_previously_known}
    for label, totals in (("not_previously_known", not_known), ("previously_known", known)):
        out.writerow([label, f.force or "", f.division or "", "", start, end, *_csv(totals)])
    return buf.getvalue()


def _csv(totals: dict[str, Any]) -> list[str]:
    return ["" if totals.get(m) is None else str(totals[m]) for m in MEASURES]


def render_json(f: Figures) -> str:
    """The figures as one JSON document."""
    doc = {
        "from": f.start.isoformat(),
        "to": f.end.isoformat(),
        "timezone": f.timezone,
        "force": f.force,
        "division": f.division,
        "headline": headline(f),
        "totals": f.totals,
        "arrests_not_previously_known": f.not_previously_known,
        "by_division": f.by_division,
        "by_month": f.by_month,
        "by_week": f.by_week,
    }
    return json.dumps(doc, indent=2) + "\n"


def render_png(f: Figures, path: Path) -> None:
    """A chart of weekly counts, one panel per measure; partial weeks are hatched."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    weeks = f.by_week
    starts = [date.fromisoformat(g["from"]) for g in weeks]
    partial = [
        (date.fromisoformat(g["to"]) - date.fromisoformat(g["from"])).days < 6 for g in weeks
    ]
    fig = Figure(figsize=(11, 8.5), layout="constrained")
    axes = fig.subplots(len(MEASURES), 1, sharex=True)
    colours = ("#1f5f8b", "#b5442d", "#2d7f4f", "#6b4c9a")
    x = list(range(len(weeks)))
    for ax, measure, colour in zip(axes, MEASURES, colours, strict=True):
        values = [g["totals"][measure] or 0 for g in weeks]
        bars = ax.bar(x, values, color=colour, width=0.8)
        for bar, part in zip(bars, partial, strict=True):
            if part:
                bar.set_alpha(0.45)
                bar.set_hatch("//")
        ax.set_title(
            f"{HEADINGS[measure]}: {f.totals[measure]:,} in the period",
            loc="left",
            fontsize=10,
        )
        ax.set_ylabel("per week", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        ax.spines[["top", "right"]].set_visible(False)
        ax.yaxis.get_major_locator().set_params(integer=True)
    step = max(1, -(-len(weeks) // 14))  # at most 14 labels
    ticks = x[::step]
    axes[-1].set_xticks(ticks)
    labels = [
        f"{weeks[i]['key']['week'][-3:]}\n{starts[i].day} {MONTHS[starts[i].month - 1][:3]}"
        for i in ticks
    ]
    axes[-1].set_xticklabels(labels, fontsize=8)
    axes[-1].set_xlabel(f"ISO week (Monday to Sunday, {f.timezone})", fontsize=8)
    scope = ""
    if f.force:
        scope = f" - {f.force}" + (f", {f.division} division" if f.division else "")
    words = period_words(f.start, f.end)
    title = f"Weekly counts {words[0].lower()}{words[1:]}{scope}"
    fig.suptitle(title, fontsize=12, x=0.01, ha="left")
    if any(partial):
        fig.legend(
            handles=[Patch(facecolor="grey", alpha=0.45, hatch="//", label="partial week")],
            loc="upper right",
            fontsize=8,
            frameon=False,
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


RENDER: Final = {
    Format.TABLE: render_table,
    Format.JSON: render_json,
    Format.CSV: render_csv,
    Format.MARKDOWN: render_markdown,
}


# --------------------------------------------------------------------------- the command
def report(
    from_: Annotated[
        str, typer.Option("--from", help="First day, YYYY-MM-DD (local date, inclusive).")
    ],
    to: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD (inclusive).")],
    force: Annotated[str | None, typer.Option(help="Only this force (slug).")] = None,
    division: Annotated[str | None, typer.Option(help="Only this division (slug).")] = None,
    format_: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.TABLE,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write here (required for png; default stdout)."),
    ] = None,
    url: Annotated[
        str, typer.Option(help="Base URL of any stream worker.")
    ] = "http://127.0.0.1:6066",
) -> None:
    """Exact figures for a date range: the headline, by division and by month, or a chart."""
    if format_ is Format.PNG and output is None:
        typer.echo("error: --output: a file name is required with --format png", err=True)
        raise typer.Exit(2)
    try:
        figures = gather(url, from_, to, force, division)
    except ReportError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2 if exc.option else 1) from None
    if format_ is Format.PNG:
        assert output is not None
        render_png(figures, output)
        typer.echo(f"{headline(figures)}.\nwrote {output}", err=True)
        return
    text = RENDER[format_](figures)
    if output is None:
        sys.stdout.write(text)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)
