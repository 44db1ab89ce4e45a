"""The data dictionary: column names, types, units and rules of the long format.

Owns: loading ``data_dictionary/long_format.schema.json`` (a Frictionless Table Schema
with alsprog's ``level``/``unit``/``sumOf`` extensions), looking up the rule for a
column (named fields first, then ``patternFields`` for ``<metric>_<region>`` imaging
columns) and rendering the human-readable ``data_dictionary/README.md``.
Leaves: applying the rules to tables to :mod:`alsprog.data._validate`.

After editing the schema, regenerate the README with
``python -c "from alsprog.data._dictionary import write_readme; write_readme()"``;
a test fails while the two differ.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import pandas as pd

__all__ = ["Field", "DataDictionary", "data_dictionary", "load_dictionary"]

Level = Literal["subject", "visit", "imaging"]
SCHEMA_FILE = "long_format.schema.json"
DAYS_PER_MONTH = 30.4375


@dataclass(frozen=True)
class Field:
    """The rules for one column, read from the schema."""

    name: str
    type: str
    level: str
    description: str
    unit: str | None = None
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    enum: tuple[str, ...] | None = None
    pattern: str | None = None
    sum_of: tuple[str, ...] | None = None
    derived: bool = False
    true_values: tuple[str, ...] = ()
    false_values: tuple[str, ...] = ()
    date_format: str | None = None
    is_pattern: bool = False
    hint: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_schema(cls, d: dict[str, Any], *, name: str | None = None) -> Field:
        cons = d.get("constraints", {})
        enum = cons.get("enum")
        sum_of = d.get("sumOf")
        return cls(
            name=name if name is not None else d["name"],
            type=d["type"],
            level=d["level"],
            description=d.get("description", ""),
            unit=d.get("unit"),
            required=bool(cons.get("required", False)),
            minimum=cons.get("minimum"),
            maximum=cons.get("maximum"),
            enum=tuple(enum) if enum is not None else None,
            pattern=cons.get("pattern"),
            sum_of=tuple(sum_of) if sum_of is not None else None,
            derived=bool(d.get("derived", False)),
            true_values=tuple(d.get("trueValues", ())),
            false_values=tuple(d.get("falseValues", ())),
            date_format=d.get("format") if d["type"] == "date" else None,
            is_pattern="pattern" in d and "name" not in d,
            hint=d.get("hint"),
            raw=d,
        )

    def range_text(self) -> str:
        """The allowed range as text, e.g. ``"0-4"`` or ``">= 0"``."""
        lo, hi = self.minimum, self.maximum
        if lo is not None and hi is not None:
            return f"{_num(lo)}-{_num(hi)}"
        if lo is not None:
            return f">= {_num(lo)}"
        if hi is not None:
            return f"<= {_num(hi)}"
        return "any value"


class DataDictionary:
    """The parsed schema: named fields, pattern fields and alternatives."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.fields: dict[str, Field] = {
            d["name"]: Field.from_schema(d) for d in schema["fields"]
        }
        self.pattern_fields: list[tuple[re.Pattern[str], dict[str, Any]]] = [
            (re.compile(d["pattern"]), d) for d in schema.get("patternFields", [])
        ]
        self.alternatives: list[dict[str, Any]] = list(schema.get("alternatives", []))
        self.missing_values: tuple[str, ...] = tuple(schema.get("missingValues", [""]))

    def field_for(self, column: str) -> Field | None:
        """Rule for ``column``: its named field, else the first matching pattern."""
        f = self.fields.get(column)
        if f is not None:
            return f
        for rx, d in self.pattern_fields:
            if rx.match(column):
                return Field.from_schema(d, name=column)
        return None

    def columns(self, level: str) -> list[str]:
        """Named columns of one level, in schema order."""
        return [n for n, f in self.fields.items() if f.level == level]

    def required_columns(self, level: str) -> list[str]:
        """Columns a table of ``level`` must have (``subject_id`` in every table)."""
        req = [n for n, f in self.fields.items() if f.required and f.level == level]
        if "subject_id" not in req:
            req.insert(0, "subject_id")
        return req

    def alternatives_for(self, level: str) -> list[list[str]]:
        """Groups of columns of which a table of ``level`` needs at least one."""
        return [list(a["columns"]) for a in self.alternatives if a["level"] == level]

    def sum_fields(self) -> dict[str, tuple[str, ...]]:
        """Score columns that are sums of items, e.g. ``alsfrs_r_total``."""
        return {n: f.sum_of for n, f in self.fields.items() if f.sum_of}

    def is_imaging_feature(self, column: str) -> bool:
        """Whether ``column`` is a ``<metric>_<region>`` imaging feature."""
        f = self.field_for(column)
        return (
            f is not None
            and f.level == "imaging"
            and f.type == "number"
            and not f.derived
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per named field (pattern fields last, with their regex as name)."""
        rows = []
        for f in list(self.fields.values()) + [
            Field.from_schema(d, name=d["pattern"]) for _, d in self.pattern_fields
        ]:
            rows.append(
                {
                    "name": f.name,
                    "level": f.level,
                    "type": f.type,
                    "unit": f.unit,
                    "required": f.required,
                    "minimum": f.minimum,
                    "maximum": f.maximum,
                    "enum": ", ".join(f.enum) if f.enum else None,
                    "derived": f.derived,
                    "description": f.description,
                }
            )
        return pd.DataFrame(rows)

    def to_markdown(self) -> str:
        """The human-readable data dictionary (``data_dictionary/README.md``)."""
        s = self.schema
        out = [
            "# alsprog data dictionary",
            "",
            "<!-- Generated from long_format.schema.json by "
            "alsprog.data._dictionary.write_readme(); do not edit by hand. -->",
            "",
            s["description"],
            "",
            f"Schema version {s['version']}. Missing values: "
            + ", ".join(f"`{m}`" if m else "empty cell" for m in self.missing_values)
            + ". Months are days / 30.4375. Integer columns are checked to hold whole "
            "numbers and loaded as float64 so that missing values are NaN.",
            "",
            "Input tables: "
            + "; ".join(
                f"**{k}** ({v['description'].rstrip('.')}, key "
                + " × ".join(f"`{c}`" for c in v["primaryKey"])
                + ")"
                for k, v in s["tables"].items()
            )
            + ".",
            "",
            "At least one column of each group is needed: "
            + "; ".join(
                " or ".join(f"`{c}`" for c in a["columns"]) + f" ({a['level']})"
                for a in self.alternatives
            )
            + ".",
            "",
        ]
        for level in ("subject", "visit", "imaging"):
            out += [
                f"## {level.capitalize()}-level columns",
                "",
                "| column | type | unit | required | allowed | description |",
                "|---|---|---|---|---|---|",
            ]
            for f in self.fields.values():
                if f.level == level:
                    out.append(_md_row(f))
            out.append("")
        out += [
            "## Imaging feature patterns",
            "",
            "Any other imaging column is named `<metric>_<region>[_<stat>]` in lower case "
            "and is checked against the first pattern it matches:",
            "",
            "| pattern | type | unit | allowed | description |",
            "|---|---|---|---|---|",
        ]
        for _, d in self.pattern_fields:
            f = Field.from_schema(d, name=d["pattern"])
            out.append(
                f"| `{d['pattern']}` | {f.type} | {f.unit or ''} | {_allowed(f)} "
                f"| {f.description} |"
            )
        out.append("")
        return "\n".join(out)


def _md_row(f: Field) -> str:
    req = "yes" if f.required else ""
    if f.derived:
        req = "derived"
    return (
        f"| `{f.name}` | {f.type} | {f.unit or ''} | {req} | {_allowed(f)} "
        f"| {f.description} |"
    )


def _allowed(f: Field) -> str:
    if f.enum:
        return ", ".join(f"`{e}`" for e in f.enum)
    if f.type == "date":
        return "YYYY-MM-DD"
    if f.type == "boolean":
        return "true/false"
    if f.minimum is not None or f.maximum is not None:
        return f.range_text()
    if f.pattern:
        return f"`{f.pattern}`"
    return ""


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


@lru_cache(maxsize=1)
def load_dictionary() -> DataDictionary:
    """Load the packaged data dictionary (cached).

    Examples
    --------
    >>> dd = load_dictionary()
    >>> dd.fields["alsfrs_r_q7"].range_text()
    '0-4'
    >>> dd.field_for("fa_arcuate_left").maximum
    1
    """
    text = resources.files("alsprog.data").joinpath(SCHEMA_FILE).read_text("utf-8")
    return DataDictionary(json.loads(text))


def data_dictionary() -> pd.DataFrame:
    """The data dictionary as a table: one row per column of the long format.

    Returns
    -------
    pandas.DataFrame
        Columns ``name, level, type, unit, required, minimum, maximum, enum, derived,
        description``; imaging pattern rules come last with their regular expression
        as ``name``.

    Examples
    --------
    >>> dd = data_dictionary()
    >>> dd.set_index("name").loc["alsfrs_r_total", ["minimum", "maximum"]].tolist()
    [0.0, 48.0]
    """
    return load_dictionary().to_frame()


def readme_path() -> Path:
    """``data_dictionary/README.md`` of the source tree."""
    return Path(__file__).resolve().parents[2] / "data_dictionary" / "README.md"


def write_readme() -> Path:
    """Regenerate ``data_dictionary/README.md`` from the schema (maintenance step)."""
    from alsprog._io import atomic_path

    path = readme_path()
    with atomic_path(path) as tmp:
        tmp.write_text(load_dictionary().to_markdown(), encoding="utf-8")
    return path
