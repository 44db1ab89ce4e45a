"""Small hand-made input tables written as CSV files, shared by the tests."""

from __future__ import annotations

from pathlib import Path

ITEMS = [f"alsfrs_r_q{i}" for i in range(1, 13)]

VISITS_HEADER = ["subject_id", "visit_date", *ITEMS, "alsfrs_r_total"]


def visit_row(
    sid: str, date: str, items: list[int] | None = None, total: object = "auto"
):
    items = items if items is not None else [4, 4, 3, 3, 3, 3, 3, 3, 2, 4, 4, 4]
    tot = sum(items) if total == "auto" else total
    return [sid, date, *items, tot]


def valid_visits_rows() -> list[list[object]]:
    return [
        visit_row("P001", "2020-01-10"),
        visit_row("P001", "2020-04-09", [4, 4, 3, 3, 3, 2, 3, 3, 2, 4, 4, 4]),
        visit_row("P001", "2020-07-08", [4, 3, 3, 3, 2, 2, 3, 2, 2, 4, 4, 4]),
        visit_row("P002", "2021-03-01", [3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4]),
        visit_row("P002", "2021-06-01", [2, 3, 2, 4, 4, 4, 4, 4, 4, 4, 4, 4]),
    ]


SUBJECTS_HEADER = [
    "subject_id",
    "group",
    "sex",
    "age_at_onset",
    "onset_site",
    "onset_date",
    "site",
]


def valid_subjects_rows() -> list[list[object]]:
    return [
        ["P001", "als", "male", 61, "spinal", "2019-01-15", "S1"],
        ["P002", "als", "female", 55, "bulbar", "2020-09-01", "S2"],
    ]


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    def cell(v: object) -> str:
        return "" if v is None else str(v)

    lines = [",".join(header)] + [",".join(cell(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path
