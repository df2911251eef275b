"""``opsmetrics report`` against real workers, and its wording."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from services.report import Figures, headline, period_words, report
from tests.periods import expected
from tests.periods.scenario import END, START, Scenario

cli = typer.Typer()
cli.command("report")(report)  # as opsmetrics/cli.py mounts it
cli.command("other")(lambda: None)  # two commands: `report` is a sub-command, as in the real CLI


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["report", *args])
    return result.exit_code, result.stdout, result.stderr


def figures(**kw: object) -> Figures:
    base: dict[str, object] = {
        "start": date(2025, 4, 1),
        "end": date(2025, 9, 30),
        "timezone": "Europe/London",
        "force": None,
        "division": None,
        "totals": {
            "warrants_executed": 75,
            "arrests": 84,
            "children_safeguarded": 64,
            "referrals_received": 750,
        },
        "not_previously_known": 59,
        "by_division": [],
        "by_month": [],
        "by_week": [],
    }
    return Figures(**{**base, **kw})  # type: ignore[arg-type]


def test_the_headline_reads_like_the_press_office_writes() -> None:
    assert headline(figures()) == (
        "Between 1 April and 30 September 2025: 75 warrants executed, 84 people arrested, "
        "of whom 59 were not previously known, 64 children safeguarded, 750 referrals received"
    )
    one = {"warrants_executed": 1, "arrests": 1, "children_safeguarded": 1, "referrals_received": 1}
    assert headline(
        figures(totals=one, not_previously_known=1, force="lancashire", division="east")
    ) == (
        "Between 1 April and 30 September 2025 in lancashire, east division: 1 warrant executed, "
        "1 person arrested, of whom 1 was not previously known, 1 child safeguarded, "
        "1 referral received"
    )
    none = dict.fromkeys(one, 0)
    assert "0 people arrested, 0 children" in headline(figures(totals=none, not_previously_known=0))
    assert period_words(date(2025, 10, 26), date(2025, 10, 26)) == "On 26 October 2025"
    assert period_words(date(2025, 4, 1), date(2025, 4, 30)) == "Between 1 and 30 April 2025"
    assert period_words(date(2024, 10, 1), date(2025, 3, 31)) == (
        "Between 1 October 2024 and 31 March 2025"
    )
    assert "1,500 referrals" in headline(figures(totals={**one, "referrals_received": 1500}))


@pytest.mark.integration
def test_every_format_from_a_real_worker(scenario: Scenario, tmp_path: Path) -> None:
    url = scenario.workers[0].url
    period = ["--from", START.isoformat(), "--to", END.isoformat(), "--url", url]
    totals, _ = expected.figures(scenario.events, START, END)
    _, known = expected.figures(scenario.events, START, END, group_by="previously_known")
    not_known = known[(("previously_known", False),)]["arrests"]

    code, out, _ = run(*period)
    assert code == 0
    assert out.startswith(
        f"Between 1 May and 31 October 2025: {totals['warrants_executed']} warrants executed, "
        f"{totals['arrests']} people arrested, of whom {not_known} were not previously known, "
        f"{totals['children_safeguarded']} children safeguarded, "
        f"{totals['referrals_received']} referrals received."
    )
    assert "By division" in out
    assert "By month" in out
    assert "October 2025" in out

    code, out, _ = run(*period, "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["totals"] == totals
    assert doc["arrests_not_previously_known"] == not_known
    assert [g["key"]["month"] for g in doc["by_month"]] == [f"2025-{m:02d}" for m in range(5, 11)]

    code, out, _ = run(*period, "--format", "csv", "--division", "east")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    east, _ = expected.figures(scenario.events, START, END, division="east")
    assert {k: int(rows[0][k]) for k in east} == east
    assert [r["group"] for r in rows].count("month") == 6

    target = tmp_path / "out" / "report.md"
    code, _, err = run(*period, "--format", "markdown", "--output", str(target))
    assert code == 0
    assert "wrote" in err
    text = target.read_text()
    assert "| Division | Warrants executed |" in text
    assert f"| **Total** | **{totals['warrants_executed']}** |" in text

    chart = tmp_path / "weekly.png"
    code, _, _ = run(*period, "--format", "png", "--output", str(chart))
    assert code == 0
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert chart.stat().st_size > 20_000


@pytest.mark.integration
def test_errors_name_the_option(scenario: Scenario) -> None:
    url = scenario.workers[1].url
    code, _, err = run("--from", "2025-09-30", "--to", "2025-04-01", "--url", url)
    assert code == 2
    assert "--to: must not be before from" in err
    code, _, err = run(
        "--from", "2025-04-01", "--to", "2025-04-30", "--division", "x1", "--url", url
    )
    assert code == 2
    assert "--division:" in err
    code, _, err = run(
        "--from", "2025-04-01", "--to", "2025-04-30", "--format", "png", "--url", url
    )
    assert code == 2
    assert "--output" in err


def test_an_unreachable_worker_is_explained() -> None:
    code, _, err = run("--from", "2025-04-01", "--to", "2025-04-30", "--url", "http://127.0.0.1:9")
    assert code == 1
    assert "cannot reach the stream worker at http://127.0.0.1:9" in err
