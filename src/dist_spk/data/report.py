"""A dataset check's report as people read it: a stats table per split, then every problem, optionally as JSON."""

from __future__ import annotations

from pathlib import Path


def print_report(title: str, rows: dict[str, dict[str, object]], problems: list, *, json_out: Path | None,
                 extra: dict | None = None) -> int:
    """Stats table on stdout, every problem after it, an optional JSON copy; the number of errors."""
    import json

    from rich import box
    from rich.table import Table

    from dist_spk.console import rich_console
    from dist_spk.data.problems import format_problems

    short = {"speech_hours": "speech h", "overlap_ratio": "overlap", "speakers_per_file": "spk/file",
             "sample_rates": "Hz", "channels": "ch", "target_trials": "targets"}
    console = rich_console()
    if rows:
        table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, title_justify="left")
        columns = list(next(iter(rows.values())))
        table.add_column("split")
        for column in columns:
            table.add_column(short.get(column, column), justify="right")
        for split, row in rows.items():
            table.add_row(split, *(str(row[c]) for c in columns))
        console.print(table)
    errors = sum(p.severity == "error" for p in problems)
    if problems:
        print(format_problems(problems))
    if json_out is not None:
        record = {"ok": errors == 0, "stats": rows, "problems": [
            {"path": str(p.path), "line": p.line, "severity": p.severity, "message": p.message} for p in problems
        ]} | (extra or {})
        json_out.write_text(json.dumps(record, indent=1))
    print(f"{errors} error(s), {len(problems) - errors} warning(s)")
    return errors
