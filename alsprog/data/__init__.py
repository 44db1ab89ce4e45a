"""Validated long-format data: reading, scoring, time axes and assembly.

The rules (column names, types, ranges, units) come from the data dictionary in
``data_dictionary/long_format.schema.json``; see :func:`data_dictionary`.
"""

from alsprog.data._assemble import assemble, match_imaging
from alsprog.data._dictionary import data_dictionary
from alsprog.data._proact import ProactCohort, ProactReport, read_proact
from alsprog.data._read import (
    read_imaging,
    read_subjects,
    read_table,
    read_visits,
    write_table,
)
from alsprog.data._scoring import delta_fs, score_alsfrs_r
from alsprog.data._time import add_time_axes
from alsprog.data._validate import validate

__all__ = [
    "ProactCohort",
    "ProactReport",
    "add_time_axes",
    "assemble",
    "data_dictionary",
    "delta_fs",
    "match_imaging",
    "read_imaging",
    "read_proact",
    "read_subjects",
    "read_table",
    "read_visits",
    "score_alsfrs_r",
    "validate",
    "write_table",
]
