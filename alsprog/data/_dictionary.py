"""The data dictionary: column names, types, units and rules of the long format.

Owns: loading ``data_dictionary/long_format.schema.json`` (a Frictionless Table Schema
with alsprog's ``level``/``unit``/``sumOf``/``synonyms``/``codingHint`` extensions and
its ``plausibility`` rules), looking up the rule for a column (named fields first, then
``patternFields`` for ``<metric>_<region>`` imaging columns), suggesting the dictionary
name a near-miss column name was meant to be, and rendering the human-readable
``data_dictionary/README.md``.
Leaves: applying the rules to tables to :mod:`alsprog.data._columns`,
:mod:`alsprog.data._validate` and :mod:`alsprog.data._plausibility`.

After editing the schema, regenerate the README with
``python -c "from alsprog.data._dictionary import write_readme; write_readme()"``;
a test fails while the two differ.
"""

from __future__ import annotations

import difflib
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
#: Column names read besides the dictionary's own (folded into ``alsfrs_r_q5``).
EXTRA_NAMES = ("alsfrs_r_q5a", "alsfrs_r_q5b")
#: How close (difflib ratio) an unknown column name must be to a dictionary name to be
#: taken for a misspelling of it.
NEAR_MISS_CUTOFF = 0.85
RULE_KINDS = ("order", "agree", "span")


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
    synonyms: dict[str, str] = field(default_factory=dict, compare=False)
    coding_hint: str | None = None
    date_minimum: str | None = None
    date_maximum: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_schema(cls, d: dict[str, Any], *, name: str | None = None) -> Field:
        cons = d.get("constraints", {})
        enum = cons.get("enum")
        sum_of = d.get("sumOf")
        is_date = d["type"] == "date"
        return cls(
            name=name if name is not None else d["name"],
            type=d["type"],
            level=d["level"],
            description=d.get("description", ""),
            unit=d.get("unit"),
            required=bool(cons.get("required", False)),
            minimum=None if is_date else cons.get("minimum"),
            maximum=None if is_date else cons.get("maximum"),
            enum=tuple(enum) if enum is not None else None,
            pattern=cons.get("pattern"),
            sum_of=tuple(sum_of) if sum_of is not None else None,
            derived=bool(d.get("derived", False)),
            true_values=tuple(d.get("trueValues", ())),
            false_values=tuple(d.get("falseValues", ())),
            date_format=d.get("format") if d["type"] == "date" else None,
            is_pattern="pattern" in d and "name" not in d,
            hint=d.get("hint"),
            synonyms={str(k).lower(): v for k, v in d.get("synonyms", {}).items()},
            coding_hint=d.get("codingHint"),
            date_minimum=cons.get("minimum") if is_date else None,
            date_maximum=cons.get("maximum") if is_date else None,
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
        plaus = schema.get("plausibility", {})
        self.points: dict[str, str] = {
            p["name"]: p["description"] for p in plaus.get("points", [])
        }
        self.rules: list[dict[str, Any]] = list(plaus.get("rules", []))
        for rule in self.rules:
            _check_rule(rule, self.points)
        self._squashed = {_squash(n): n for n in self.known_names()}

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

    def alternatives_for(
        self, level: str, scope: Literal["row", "table"] = "row"
    ) -> list[list[str]]:
        """Groups of columns of which a table of ``level`` needs at least one.

        ``scope="row"`` groups need a value on every row (a visit's time);
        ``scope="table"`` groups need a column and a value on at least one row (a
        visits table's outcome).
        """
        return [
            list(a["columns"])
            for a in self.alternatives
            if a["level"] == level and a.get("scope", "row") == scope
        ]

    def known_names(self) -> list[str]:
        """Every column name the dictionary knows by name (fields and read aliases)."""
        return [*self.fields, *EXTRA_NAMES]

    def suggest_name(self, column: str) -> tuple[str, bool] | None:
        """The dictionary name ``column`` was probably meant to be, or ``None``.

        Returns ``(name, exact)``: ``exact`` when the two differ only in case,
        spaces, dots or dashes (``Subject_ID``, ``subjectid``, ``ALSFRS-R total``);
        otherwise ``name`` is the closest dictionary name within
        :data:`NEAR_MISS_CUTOFF` (``ALSFRS_TOTAL`` -> ``alsfrs_r_total``).  An imaging
        feature in the wrong case (``FA_arcuate_left``) gets its lower-case name.
        Names the dictionary knows (or matches by pattern) get ``None``.

        Examples
        --------
        >>> dd = load_dictionary()
        >>> dd.suggest_name("Subject_ID"), dd.suggest_name("ALSFRS_TOTAL")
        (('subject_id', True), ('alsfrs_r_total', False))
        >>> dd.suggest_name("treatment_arm") is None
        True
        """
        if column in self.known_names() or self.field_for(column) is not None:
            return None
        exact = self._squashed.get(_squash(column))
        if exact is not None:
            return exact, True
        lower = column.strip().lower()
        if lower != column and self.field_for(lower) is not None:
            return lower, True
        norm = re.sub(r"[^a-z0-9]+", "_", lower).strip("_")
        close = difflib.get_close_matches(
            norm, self.known_names(), n=1, cutoff=NEAR_MISS_CUTOFF
        )
        return (close[0], False) if close else None

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
                if a.get("scope", "row") == "row"
            )
            + ", with a value on every row. "
            + " ".join(
                a["description"]
                for a in self.alternatives
                if a.get("scope", "row") == "table"
            ),
            "",
        ]
        if s.get("files"):
            out += ["**Files.** " + s["files"], ""]
        if s.get("codings"):
            out += ["**Codings.** " + s["codings"], ""]
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
        if self.rules:
            out += self._plausibility_markdown()
        return "\n".join(out)

    def _plausibility_markdown(self) -> list[str]:
        plaus = self.schema["plausibility"]
        out = [
            "## Plausibility rules",
            "",
            plaus["description"],
            "",
            "| point | meaning |",
            "|---|---|",
        ]
        out += [f"| `{n}` | {d} |" for n, d in self.points.items()]
        out += [
            "",
            "| rule | check | tolerance | description |",
            "|---|---|---|---|",
        ]
        for r in self.rules:
            out.append(
                f"| `{r['name']}` | {_rule_text(r)} | "
                f"{_months(r.get('toleranceMonths', 0))} | {r['description']} |"
            )
        out.append("")
        return out


def _squash(name: str) -> str:
    """``name`` in lower case without anything but letters and digits."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _check_rule(rule: dict[str, Any], points: dict[str, str]) -> None:
    """Refuse a plausibility rule of the schema that names an unknown point or kind."""
    kind = rule.get("kind")
    if kind not in RULE_KINDS:
        raise ValueError(
            f"plausibility rule {rule.get('name')!r}: unknown kind {kind!r} "
            f"(expected one of {', '.join(RULE_KINDS)})"
        )
    keys = ("a", "b") if kind == "agree" else ("earlier", "later")
    for key in keys:
        names = rule[key] if isinstance(rule[key], list) else [rule[key]]
        for n in names:
            if n not in points:
                raise ValueError(
                    f"plausibility rule {rule['name']!r}: unknown point {n!r} "
                    f"(expected one of {', '.join(points)})"
                )


def _rule_text(r: dict[str, Any]) -> str:
    def names(v: Any) -> str:
        return " / ".join(f"`{x}`" for x in (v if isinstance(v, list) else [v]))

    if r["kind"] == "agree":
        return f"{names(r['a'])} ≈ {names(r['b'])}"
    if r["kind"] == "span":
        years = _num(r["maxMonths"] / 12)
        return f"{names(r['later'])} − {names(r['earlier'])} ≤ {years} years"
    return f"{names(r['earlier'])} ≤ {names(r['later'])}"


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
        text = ", ".join(f"`{e}`" for e in f.enum)
        if f.synonyms:
            text += (
                " (mapped with a warning: "
                + ", ".join(f"`{k}` → `{v}`" for k, v in f.synonyms.items())
                + ")"
            )
        if f.coding_hint:
            text += f"; {f.coding_hint}"
        return text
    if f.type == "date":
        if f.date_minimum:
            return f"YYYY-MM-DD, from {f.date_minimum}"
        return "YYYY-MM-DD"
    if f.type == "boolean":
        return "/".join(f.true_values) + " or " + "/".join(f.false_values)
    if f.minimum is not None or f.maximum is not None:
        return f.range_text()
    if f.pattern:
        return f"`{f.pattern}`"
    return ""


def _months(x: float) -> str:
    return f"{_num(x)} month" + ("" if x == 1 else "s")


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
