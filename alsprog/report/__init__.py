"""The whole analysis in one call: config -> checked inputs -> models, forecasts,
trial design, imaging biomarkers -> one folder with tables, figures and a
self-contained HTML report.

``alsprog run CONFIG.toml`` and ``alsprog demo --out DIR`` are the command-line faces of
:func:`run` and :func:`run_demo`.  A run is a list of sections
(:mod:`alsprog.report.sections`), each owning its stage, its figures and its part of
the report; ``run(config, sections=[*SECTIONS, MySection()])`` adds one of your own.
"""

from alsprog.report._cohort import describe_cohort
from alsprog.report._config import ConfigError, RunConfig, dump_config, load_config
from alsprog.report._demo import run_demo, write_demo_inputs
from alsprog.report._run import STAGES, RunResult, check, run
from alsprog.report._schema import config_reference

__all__ = [
    "STAGES",
    "ConfigError",
    "RunConfig",
    "RunResult",
    "check",
    "config_reference",
    "describe_cohort",
    "dump_config",
    "load_config",
    "run",
    "run_demo",
    "write_demo_inputs",
]
