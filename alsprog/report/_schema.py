"""The schema of a run config: every section and key with its type, default, range
and meaning.

Owns: :data:`SCHEMA` (read by :mod:`alsprog.report._config` to check a config) and
:func:`config_reference` (the README's config reference is this function's output, so
the documentation cannot drift from the checks).
Leaves: parsing and the dataclasses to :mod:`alsprog.report._config`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from alsprog._random import DEFAULT_SEED
from alsprog.biomarkers._pvalue import DEFAULT_N_PERMUTATIONS
from alsprog.report._key import Key, Shown

__all__ = ["DEFAULT_SURVIVAL_FORMULA", "SCHEMA", "Key", "config_reference"]

#: The survival stage's default formula: the ENCALS predictors the data dictionary
#: has (Westeneng et al. 2018; FVC, El Escorial, FTD and C9orf72 are added where
#: the data hold them).
#: The ``[course]`` outcomes by default: the ALSFRS-R domains and FVC.
DEFAULT_COURSE_OUTCOMES = (
    "alsfrs_r_bulbar",
    "alsfrs_r_fine_motor",
    "alsfrs_r_gross_motor",
    "alsfrs_r_respiratory",
    "fvc_percent_predicted",
)
DEFAULT_SURVIVAL_FORMULA = (
    "Surv(death_or_tracheostomy_months, event_observed) ~ age_at_onset + onset_site "
    "+ diagnostic_delay_months + delta_fs"
)


_TYPE_TEXT = {
    "str": "string",
    "path": "path",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "floats": "list of numbers",
    "strs": "list of strings",
    "cv": "string or integer",
    "map": "table of strings",
}

#: The sections other than ``[models.NAME]``, in documentation order.
_STATIC: dict[str, tuple[Key, ...]] = {
    "run": (
        Key("title", "str", "alsprog analysis", "Title of the report."),
        Key(
            "seed",
            "int",
            DEFAULT_SEED,
            "Seed of every random step (>= 0); the command line's default too.",
            low=0,
        ),
        Key(
            "out",
            "path",
            "output",
            "Output folder (`--out` overrides it): new, empty or an earlier alsprog "
            "result.",
        ),
        Key(
            "n_jobs",
            "int",
            1,
            "joblib workers for parallel steps (-1 = all cores).",
            low=-1,
        ),
        Key(
            "inputs",
            "str",
            "auto",
            "How the inputs are kept in `OUT/inputs/`: `auto` (tables, atlas and config "
            "copied; NIfTI trees hard-linked, or across file systems left in place "
            "with each file's size and SHA-256 in `inputs/image_checksums.tsv`), "
            "`copy` (everything), `link` (hard links, copies across file systems) or "
            "`none` (the config points at the originals).",
            choices=("auto", "copy", "link", "none"),
        ),
    ),
    "data": (
        Key(
            "visits",
            "path",
            None,
            "Visits table (CSV/TSV/Parquet). Required unless `proact` is given.",
        ),
        Key(
            "subjects",
            "path",
            None,
            "Subjects table. Required unless `proact` is given.",
        ),
        Key(
            "proact",
            "path",
            None,
            "An unpacked PRO-ACT export (folder), in place of `visits` and "
            "`subjects`: read by `alsprog.data.read_proact` (its import report is "
            "shown in the cohort section); `outcome` may then be "
            "`fvc_percent_predicted`.",
        ),
        Key(
            "imaging",
            "path",
            None,
            "Imaging-features table (one row per subject x session); or use `[imaging]`.",
        ),
        Key(
            "window_days",
            "float",
            45.0,
            "Largest scan-to-visit distance when joining imaging to visits (days).",
            low=0,
        ),
        Key("outcome", "str", "alsfrs_r_total", "Outcome column of the models."),
        Key("time", "str", "months", "Time column of the linear models."),
        Key(
            "rename",
            "map",
            None,
            "Your column names mapped to the data dictionary's in every input table, "
            'before anything is checked: `{patient = "subject_id", visit_month = '
            '"months"}`; each new name must be a dictionary column.',
        ),
    ),
    "imaging": (
        Key(
            "root",
            "path",
            None,
            "BIDS-derivatives folder of NIfTI maps, or a manifest CSV.",
            required=True,
        ),
        Key("atlas", "path", None, "Label atlas (.nii/.nii.gz).", required=True),
        Key(
            "labels",
            "path",
            None,
            "Lookup table (default: the atlas's .tsv); its optional `metrics` column "
            "lists the metrics measured in each region (`fa md`, `thickness`).",
        ),
        Key(
            "stats",
            "strs",
            ["mean"],
            "ROI statistics.",
            choices=("mean", "median", "std", "count", "volume", "trimmed_mean"),
        ),
        Key(
            "metrics",
            "strs",
            None,
            'Keep only these metrics (default all), e.g. `["fa"]`.',
        ),
        Key(
            "metrics_by_region",
            "strs",
            None,
            "Which metrics belong to which regions, over the lookup table's `metrics` "
            'column, e.g. `["cst_*=fa,md", "precentral_*=thickness"]` (default: that '
            "column, else every metric in every region).",
        ),
    ),
    "connectivity": (
        Key(
            "root",
            "path",
            None,
            "BIDS-derivatives folder of preprocessed resting-state BOLD runs "
            "(fMRIPrep layout: `func/*_bold.nii.gz`, `*_desc-confounds_timeseries.tsv` "
            "beside each), or a manifest CSV (metric `bold`).",
            required=True,
        ),
        Key(
            "atlas",
            "path",
            None,
            "Label atlas on the BOLD grid (.nii/.nii.gz).",
            required=True,
        ),
        Key("labels", "path", None, "Lookup table (default: the atlas's .tsv)."),
        Key(
            "kind",
            "str",
            "correlation",
            "Connectivity measure: `correlation`, `partial correlation` or `tangent` "
            "(nilearn's `ConnectivityMeasure` kinds; `tangent` is relative to the "
            "geometric mean of all runs of the analysis).",
            choices=("correlation", "partial correlation", "tangent"),
        ),
        Key(
            "confounds",
            "strs",
            None,
            "Columns of each run's confounds table to regress out, or patterns "
            '(`["trans_*", "rot_*", "csf", "white_matter"]`); default none.',
        ),
        Key(
            "high_pass",
            "float",
            0.008,
            "High-pass cut-off (Hz; 0 = none).",
            low=0,
        ),
        Key(
            "low_pass",
            "float",
            0.1,
            "Low-pass cut-off (Hz; 0 = none).",
            low=0,
        ),
        Key(
            "t_r",
            "float",
            None,
            "Repetition time (s); default each run's JSON sidecar, else its header.",
            low=0,
            low_open=True,
        ),
        Key("detrend", "bool", True, "Remove each series' linear trend first."),
        Key("standardize", "bool", True, "z-score each cleaned series."),
        Key(
            "edges",
            "strs",
            None,
            "Region pairs kept as `fc_<a>__<b>` features, written `a--b` "
            '(`["precentral_left--precentral_right"]`); default every pair.',
        ),
        Key(
            "networks",
            "strs",
            None,
            "Networks summarised as `fcnet_<name>` (mean within-network edge) and "
            "`fcnet_<a>__<b>` (between), written `NAME=REGION,REGION` with shell "
            'patterns: `["motor=precentral_*,cst_*", "visual=cuneus_*"]`.',
        ),
    ),
    "survival": (
        Key(
            "enabled",
            "bool",
            True,
            "Run the survival stage (skipped with a note when the data lack the "
            "formula's columns).",
        ),
        Key(
            "formula",
            "str",
            DEFAULT_SURVIVAL_FORMULA,
            "Survival formula, R's `Surv(time, event) ~ covariates` (or `Surv(entry, "
            "exit, event) ~ ...`); covariates read at each patient's first visit.",
        ),
        Key(
            "method",
            "str",
            "flexible",
            "`flexible` (Royston-Parmar, as the ENCALS model) or `cox`.",
            choices=("flexible", "cox"),
        ),
        Key(
            "scale",
            "str",
            "hazard",
            "Royston-Parmar scale.",
            choices=("hazard", "odds", "normal"),
        ),
        Key(
            "df", "int", 3, "Degrees of freedom of the baseline spline.", low=1, high=10
        ),
        Key(
            "time_origin",
            "str",
            "onset",
            "`onset`: time from symptom onset, entering at the first visit (delayed "
            "entry, the ENCALS time scale); `baseline`: from the first visit.",
            choices=("onset", "baseline"),
        ),
        Key(
            "times",
            "floats",
            [6.0, 12.0, 18.0, 24.0],
            "Horizons of the scores (months from the first visit).",
            low=0,
            low_open=True,
        ),
        Key(
            "n_groups",
            "int",
            5,
            "Risk groups (quantiles of the prognostic index).",
            low=2,
            high=10,
        ),
        Key(
            "landmark",
            "float",
            6.0,
            "Landmark (months) of the dynamic comparison with the joint models of "
            "`[models]`: patients event-free then, scored on the horizons after it.",
            low=0,
        ),
        Key(
            "test_fraction",
            "float",
            0.3,
            "Fraction of patients held out of the fits for the scores.",
            low=0,
            high=1,
            low_open=True,
            high_open=True,
        ),
    ),
    "course": (
        Key(
            "enabled",
            "bool",
            False,
            "Fit the multivariate disease-course model (`DiseaseCourseModel`: "
            "every outcome a logistic curve on one latent disease time, sampled by "
            "NUTS; skipped with a note when the data lack the outcomes).",
        ),
        Key(
            "outcomes",
            "strs",
            list(DEFAULT_COURSE_OUTCOMES),
            "Outcome columns (two or more), each with a known (normal, floor) range: "
            "the four ALSFRS-R domains, `fvc_percent_predicted`, `fa_cst_left`, "
            "`fa_cst_right`, `fa_cc_motor`.",
        ),
        Key(
            "offsets",
            "strs",
            None,
            "Outcomes (of `outcomes`) given a per-patient healthy level, e.g. "
            '`["fvc_percent_predicted"]` (continuous biomarkers: people differ before '
            "the disease does); none by default.",
        ),
        Key(
            "time",
            "str",
            "months_since_onset",
            "Time column of the curves (months since onset: the latent time is "
            "read on it).",
        ),
        Key("chains", "int", 4, "NUTS chains.", low=1),
        Key("draws", "int", 1000, "Kept draws per chain.", low=1),
        Key("tune", "int", 1000, "Tuning draws per chain.", low=0),
        Key(
            "max_patients",
            "int",
            0,
            "Fit on this many patients drawn at random (0: all); sampling time "
            "grows with the patients.",
            low=0,
        ),
        Key(
            "threshold",
            "float",
            0.5,
            "Normalised level (0 healthy, 1 floor) whose crossing orders the "
            "outcomes' decline.",
            low=0,
            high=1,
            low_open=True,
            high_open=True,
        ),
    ),
    "forecast": (
        Key("enabled", "bool", True, "Run the forecast stage."),
        Key(
            "history_months",
            "float",
            3.0,
            "Months of a new patient's visits a forecast starts from.",
            low=0,
        ),
        Key(
            "horizons",
            "floats",
            [6.0, 12.0],
            "Forecast horizons (months).",
            low=0,
            low_open=True,
        ),
        Key(
            "test_fraction",
            "float",
            0.2,
            "Fraction of patients held out in the backtest.",
            low=0,
            high=1,
            low_open=True,
            high_open=True,
        ),
        Key(
            "level",
            "float",
            0.9,
            "Prediction interval coverage.",
            low=0,
            high=1,
            low_open=True,
            high_open=True,
        ),
        Key(
            "models",
            "strs",
            None,
            "Models (names in `[models]`) to backtest (default all).",
        ),
        Key(
            "baselines",
            "strs",
            ["delta_fs", "patient_ols", "random_forest"],
            "Baselines in the backtest.",
            choices=("delta_fs", "patient_ols", "random_forest"),
        ),
        Key(
            "recalibrate",
            "str",
            "none",
            "Also backtest each model recalibrated on the training patients' own "
            "errors (`CalibratedForecaster`), as `<model>_recalibrated`: `band` keeps "
            "the model's centre, `shift` also moves it by the errors' mean.",
            choices=("none", "band", "shift"),
        ),
        Key(
            "n_patients",
            "int",
            4,
            "Patients held out of the model fits and shown in forecast fan charts.",
            low=0,
        ),
    ),
    "design": (
        Key("enabled", "bool", True, "Run the trial-design stage."),
        Key(
            "model",
            "str",
            None,
            "Mixed model (name in `[models]`) giving the variance components; default: "
            "`outcome ~ time + (time | subject_id)` fitted to the patients.",
        ),
        Key(
            "slowing",
            "floats",
            [0.25, 0.3, 0.5],
            "Fractional slowings of the mean slope.",
            low=0,
            high=1,
            low_open=True,
        ),
        Key(
            "visit_months",
            "floats",
            [0.0, 3.0, 6.0, 9.0, 12.0],
            "Visit schedule of the planned trial.",
            low=0,
        ),
        Key(
            "power",
            "float",
            0.8,
            "Target power.",
            low=0,
            high=1,
            low_open=True,
            high_open=True,
        ),
        Key(
            "alpha",
            "float",
            0.05,
            "Two-sided type I error.",
            low=0,
            high=1,
            low_open=True,
            high_open=True,
        ),
        Key(
            "methods",
            "strs",
            ["edland"],
            "Sample-size formulas.",
            choices=("edland", "diggle", "liu_liang"),
        ),
        Key(
            "retention",
            "floats",
            None,
            "Fraction of patients still followed at each visit (1 first, never "
            "increasing): both the analytic sample size and the simulated trials lose "
            "patients this way (default: everyone seen at every visit).",
            low=0,
            high=1,
            low_open=True,
        ),
        Key(
            "n_sims",
            "int",
            200,
            "Simulated trials checking the power at each analytic size (0 = none).",
            low=0,
        ),
        Key(
            "endpoints",
            "strs",
            ["slope", "cafs", "win_ratio", "survival"],
            "Endpoints compared at the first slowing (patients per arm for the target "
            "power, by simulated trials): `slope`, `mmrm` (slow: one MMRM fit per "
            "trial), `cafs`, `joint_rank`, `win_ratio`, `survival`.",
            choices=("slope", "mmrm", "cafs", "joint_rank", "win_ratio", "survival"),
        ),
        Key(
            "hazard_ratios",
            "floats",
            [1.0, 0.8],
            "Treated:control death hazard ratios of the endpoint comparison (1 = the "
            "treatment slows progression only).",
            low=0,
            low_open=True,
        ),
        Key(
            "sources",
            "strs",
            ["course", "cohort"],
            "Where the compared trials come from: `course` (alsprog's nonlinear ALS "
            "simulator) and/or `cohort` (the run's patients resampled, when they have "
            "survival columns).",
            choices=("course", "cohort"),
        ),
        Key(
            "endpoint_sims",
            "int",
            200,
            "Simulated trials at each size of the endpoint comparison (0 = no "
            "comparison).",
            low=0,
        ),
    ),
    "biomarkers": (
        Key("enabled", "bool", True, "Run the imaging-biomarker stage."),
        Key(
            "features",
            "strs",
            None,
            "Feature names or patterns (`fa_*`); default all imaging columns.",
        ),
        Key(
            "estimator",
            "str",
            "logistic",
            "Classifier: L2 logistic regression, linear SVM, random forest, or a small "
            "neural network (one hidden layer, stopped early on held-out subjects; "
            "its permutation p-value refits the whole pipeline each time: minutes).",
            choices=("logistic", "svm", "rf", "mlp"),
        ),
        Key(
            "compare",
            "strs",
            ["logistic", "svm", "mlp"],
            "Classifiers cross-validated on the same folds as `estimator` (added "
            "when missing) and compared with it: ROC AUC, Brier score and the paired "
            "subject-bootstrap AUC difference; `[]` skips the comparison. Any of "
            "`logistic`, `svm`, `rf`, `mlp`.",
            choices=("logistic", "svm", "rf", "mlp"),
            allow_empty=True,
        ),
        Key(
            "harmonize",
            "str",
            "combat",
            "Site harmonisation inside each training fold.",
            choices=("combat", "none"),
        ),
        Key(
            "cv",
            "cv",
            "subject",
            "`subject`, `site` (leave-site-out) or a number of folds.",
        ),
        Key(
            "n_permutations",
            "int",
            DEFAULT_N_PERMUTATIONS,
            "Label permutations for the AUC p-value (the smallest p-value is "
            "1/(n_permutations + 1); 0 skips the test).",
            low=0,
        ),
        Key(
            "n_bootstrap",
            "int",
            500,
            "Subject bootstrap draws for the intervals.",
            low=1,
        ),
    ),
    "report": (
        Key(
            "n_subjects",
            "int",
            4,
            "Patients drawn in the per-patient trajectories.",
            low=1,
            high=24,
        ),
        Key("n_features", "int", 4, "Imaging features drawn by group.", low=1, high=12),
        Key(
            "level",
            "float",
            0.9,
            "Band coverage of trajectories.",
            low=0,
            high=1,
            low_open=True,
            high_open=True,
        ),
    ),
}

_ORDER = ("run", "data", "imaging", "connectivity", "models")


class _Schema(Mapping[str, tuple[Key, ...]]):
    """Section -> keys; ``models`` read from the model registry on each access, so
    a model type registered at run time has its keys."""

    def __getitem__(self, name: str) -> tuple[Key, ...]:
        if name == "models":
            from alsprog.report._model_schema import model_keys

            return model_keys()
        return _STATIC[name]

    def __iter__(self) -> Iterator[str]:
        return iter([*_ORDER, *(s for s in _STATIC if s not in _ORDER)])

    def __len__(self) -> int:
        return len(_STATIC) + 1


#: Every section and key of a run config, in documentation order.
SCHEMA: Mapping[str, tuple[Key, ...]] = _Schema()

Statistic = Literal["mean", "median", "std", "count", "volume", "trimmed_mean"]
Method = Literal["edland", "diggle", "liu_liang"]


def _range_text(k: Key) -> str:
    lo = "(" if k.low_open else "["
    hi = ")" if k.high_open else "]"
    low = "-inf" if k.low is None else f"{k.low:g}"
    high = "inf" if k.high is None else f"{k.high:g}"
    return f"{lo}{low}, {high}{hi}"


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, Path):
        return json.dumps(v.as_posix())
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        pairs = (f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items())
        return "{" + ", ".join(pairs) + "}"
    raise TypeError(f"cannot write {v!r} to TOML")


def _types_text(names: tuple[str, ...]) -> str:
    """``mixed``, ``mixed and joint``, ``mixed, bayesian and joint``."""
    return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


def _one_default(v: Any) -> str:
    if isinstance(v, Shown):
        return str(v)
    return "—" if v is None else f"`{_toml_value(v)}`"


def _default_text(k: Key) -> str:
    """The reference's default: required, the value, or each type's."""
    if k.required:
        return "required"
    if k.by_type is None:
        return _one_default(k.default)
    groups: dict[str, list[str]] = {}
    for t, v in k.by_type:
        groups.setdefault(_one_default(v), []).append(t)
    return "; ".join(f"{text} ({', '.join(ts)})" for text, ts in groups.items())


def config_reference() -> str:
    """The config reference as Markdown tables (one per section), from :data:`SCHEMA`."""
    out = []
    for name, keys in SCHEMA.items():
        head = "[models.NAME]" if name == "models" else f"[{name}]"
        out += [
            f"**`{head}`**",
            "",
            "| key | type | default | meaning |",
            "|---|---|---|---|",
        ]
        for k in keys:
            default = _default_text(k)
            meaning = k.help
            listed_all = all(f"`{c}`" in meaning for c in k.choices or ())
            if k.choices is not None and (
                "`" not in meaning or (name == "models" and not listed_all)
            ):
                which = "Any" if k.kind == "strs" else "One"
                if k.choices_by_type is not None:
                    meaning += (
                        " "
                        + "; ".join(
                            f"{t}: {which.lower()} of "
                            + ", ".join(f"`{c}`" for c in cs)
                            for t, cs in k.choices_by_type
                        )
                        + "."
                    )
                else:
                    listed = ", ".join(f"`{c}`" for c in k.choices)
                    meaning += f" {which} of {listed}."
            if (k.low is not None or k.high is not None) and k.name not in (
                "seed",
                "n_jobs",
            ):
                meaning += f" In {_range_text(k)}."
            if k.applies is not None:
                meaning += f" ({_types_text(k.applies)} only)"
            meaning = meaning.replace("|", "\\|")
            out.append(f"| `{k.name}` | {_TYPE_TEXT[k.kind]} | {default} | {meaning} |")
        out.append("")
    return "\n".join(out)
