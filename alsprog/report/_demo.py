"""The demo: the embedded synthetic cohort through the whole pipeline.

Owns: :func:`write_demo_inputs` (simulate a cohort with NIfTI volumes and write it,
with a run config, into a folder) and :func:`run_demo` (that, then :func:`run`).
Leaves: the simulation to :mod:`alsprog.simulate`, everything else to
:func:`alsprog.report.run`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from alsprog.biomarkers._pvalue import DEFAULT_N_PERMUTATIONS
from alsprog.report._run import STAGES, RunResult, StageCallback, run

__all__ = ["run_demo", "write_demo_inputs"]

#: The simulated imaging features (the NIfTI maps also hold background regions).
DEMO_FEATURES = (
    "fa_cst_left",
    "fa_cst_right",
    "fa_cc_motor",
    "md_cst_left",
    "md_cst_right",
    "thickness_precentral_left",
    "thickness_precentral_right",
    "thickness_cuneus_left",
    "fcnet_motor",
)

#: Volumes of each simulated resting-state run (2 s apart: 2 minutes, short beside a
#: real 6-10 minute run, to keep the demo quick; the band-pass filter needs 34+).
DEMO_FMRI_VOLUMES = 60

_HEAD = """\
# alsprog demo: the embedded synthetic cohort ({n_patients} ALS patients, {n_controls}
# healthy controls, seed {seed}), simulated with NIfTI maps so that the imaging stage
# extracts its features for real.  Run it again with `alsprog run config.toml`.

[run]
title = "alsprog demo: synthetic ALS cohort"
seed = {seed}
n_jobs = {n_jobs}
inputs = "link"

[data]
visits = "visits.csv"
subjects = "subjects.csv"
outcome = "alsfrs_r_total"
time = "months"

[imaging]
root = "derivatives"
atlas = "derivatives/atlas/atlas-alsprogsim_dseg.nii.gz"
stats = ["mean"]

# resting-state BOLD of each subject's baseline session (fMRIPrep layout)
[connectivity]
root = "fmriprep"
atlas = "fmriprep/atlas/atlas-alsprogsim_dseg.nii.gz"
kind = "correlation"
confounds = ["trans_*", "rot_*", "csf", "white_matter"]
networks = ["motor=precentral_*,cst_*,cc_motor", "visual=cuneus_*"]
"""

#: The demo's models, by name.
DEMO_MODELS = {
    "lmm": """
[models.lmm]
type = "mixed"
formula = "alsfrs_r_total ~ months * onset_site + (months | subject_id)"
""",
    "bayes_linear": """
[models.bayes_linear]
type = "bayesian"
kind = "linear"
formula = "alsfrs_r_total ~ months * onset_site"
chains = {chains}
draws = {linear_draws}
tune = {draws}
""",
    "bayes_sigmoid": """
[models.bayes_sigmoid]
type = "bayesian"
kind = "sigmoid"
formula = "alsfrs_r_total ~ onset_site"
chains = {chains}
draws = {draws}
tune = {draws}
""",
    "lcmm": """
[models.lcmm]
type = "latent_class"
formula = "alsfrs_r_total ~ months * onset_site + (months | subject_id)"
mixture = ["Intercept", "months"]
n_classes = 2
n_init = 10
""",
}

_TAIL = """
[forecast]
history_months = 3
horizons = [6, 12]
test_fraction = 0.2
models = [{backtest_models}]
n_patients = 4

[survival]
formula = "Surv(death_or_tracheostomy_months, event_observed) ~ age_at_onset + onset_site + diagnostic_delay_months + delta_fs + fvc_percent_predicted"
method = "flexible"
time_origin = "onset"
times = [6, 12, 18]
n_groups = 5

[course]
enabled = true
outcomes = ["alsfrs_r_bulbar", "alsfrs_r_fine_motor", "alsfrs_r_gross_motor", "alsfrs_r_respiratory", "fvc_percent_predicted"]
chains = {chains}
draws = {draws}
tune = {draws}
max_patients = {course_patients}

[design]
slowing = [0.25, 0.3, 0.5]
visit_months = [0, 3, 6, 9, 12]
n_sims = {n_sims}
endpoint_sims = {endpoint_sims}

[biomarkers]
features = [{features}]
harmonize = "combat"
cv = "subject"
n_permutations = {n_permutations}
n_bootstrap = {n_bootstrap}

[report]
n_subjects = 4
n_features = 4
"""


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def write_demo_inputs(
    folder: str | os.PathLike[str],
    *,
    n_patients: int = 200,
    n_controls: int = 60,
    seed: int = 2026,
    chains: int = 2,
    draws: int = 500,
    n_sims: int = 200,
    endpoint_sims: int = 100,
    n_permutations: int = DEFAULT_N_PERMUTATIONS,
    n_bootstrap: int = 300,
    course_patients: int = 80,
    n_jobs: int = -1,
    models: Sequence[str] = ("lmm", "bayes_linear", "bayes_sigmoid", "lcmm"),
    backtest_models: Sequence[str] | None = None,
    progress: bool | None = None,
    force: bool = False,
) -> Path:
    """Simulate the demo cohort with NIfTI maps and BOLD runs; write it with a run
    config.

    Parameters
    ----------
    folder : path
        Receives ``visits.csv``, ``subjects.csv``, ``truth.csv``, ``derivatives/``
        (BIDS derivatives and atlas), ``fmriprep/`` (a resting-state BOLD run of
        each baseline session, with confounds, and its atlas) and ``config.toml``, built beside it and put in
        place at the end.  It must be new, empty or written by alsprog (then
        replaced); any other folder is refused (:class:`~alsprog.errors.OutputError`).
    n_patients, n_controls : int, default 200, 60
        Cohort size.
    seed : int, default 2026
        Seed of the cohort, the maps and the run.
    chains, draws : int, default 2, 500
        Sampling of the Bayesian models (``tune`` = ``draws``; the linear model
        keeps twice ``draws``: they cost little beside its fixed cost, and its R-hat
        over 2 chains needs them to stay under the gate's 1.01).
    n_sims : int, default 200
        Simulated trials per slowing in the design stage.
    endpoint_sims : int, default 100
        Simulated trials at each size of the design stage's endpoint comparison.
    n_permutations, n_bootstrap : int, default 200, 300
        Classifier permutation test (the default of every command,
        :data:`~alsprog.biomarkers.DEFAULT_N_PERMUTATIONS`) and bootstrap.
    course_patients : int, default 80
        Patients the disease-course model is fitted on (``[course] max_patients``;
        0: all): its sampling time grows with them.
    n_jobs : int, default -1
        Workers for the NIfTI writing and the parallel stages.
    models : sequence of str, default all of :data:`DEMO_MODELS`
        Which of the demo's models to fit (:data:`DEMO_MODELS`; ``lcmm`` is a
        latent-class mixed model with two classes, and the report's table of the
        number of classes beside it).
    backtest_models : sequence of str, optional
        Models refitted in the backtest (default: ``lmm`` and ``bayes_linear``
        when fitted).
    progress : bool or None
        Progress bar of the NIfTI writing.
    force : bool, default False
        Write into a non-empty folder alsprog did not write, never deleting or
        overwriting its files (a name clash is refused).

    Returns
    -------
    pathlib.Path
        The config file.

    Raises
    ------
    OutputError
        If ``folder`` may not be written (see above).
    """
    from alsprog._io import atomic_dir, check_out_folder
    from alsprog.data import write_table
    from alsprog.simulate import simulate_cohort, write_fmri, write_nifti

    unknown = [m for m in models if m not in DEMO_MODELS]
    if unknown or not models:
        raise ValueError(
            f"`models` must name some of {', '.join(DEMO_MODELS)}; got {list(models)!r}."
        )
    if backtest_models is None:
        backtest_models = [m for m in ("lmm", "bayes_linear") if m in models]
    bad = [m for m in backtest_models if m not in models]
    if bad:
        raise ValueError(
            f"`backtest_models` must be among `models` {list(models)!r}; got {bad!r}."
        )
    folder = Path(folder)
    check_out_folder(folder, force=force)  # before the simulation's minutes
    values = dict(
        n_patients=n_patients,
        n_controls=n_controls,
        seed=seed,
        n_jobs=n_jobs,
        chains=chains,
        draws=draws,
        linear_draws=2 * draws,
        n_sims=n_sims,
        endpoint_sims=endpoint_sims,
        n_permutations=n_permutations,
        n_bootstrap=n_bootstrap,
        course_patients=course_patients,
        features=_quoted(DEMO_FEATURES),
        backtest_models=_quoted(backtest_models),
    )
    text = _HEAD.format(**values)
    text += "".join(DEMO_MODELS[m].format(**values) for m in models)
    text += _TAIL.format(**values)
    cohort = simulate_cohort(n_patients, n_controls=n_controls, seed=seed)
    with atomic_dir(folder, command="write_demo_inputs", force=force) as tmp:
        for name in ("visits", "subjects", "truth"):
            write_table(getattr(cohort, name), tmp / f"{name}.csv")
        write_nifti(
            cohort, tmp / "derivatives", seed=seed, n_jobs=n_jobs, progress=progress
        )
        baseline = cohort.imaging.sort_values(
            ["subject_id", "acquisition_date"], kind="stable"
        ).drop_duplicates("subject_id")
        write_fmri(
            replace(cohort, imaging=baseline),
            tmp / "fmriprep",
            n_volumes=DEMO_FMRI_VOLUMES,
            seed=seed,
            n_jobs=n_jobs,
            progress=progress,
        )
        (tmp / "config.toml").write_text(text, encoding="utf-8")
    return folder / "config.toml"


def run_demo(
    out: str | os.PathLike[str],
    *,
    n_patients: int = 200,
    n_controls: int = 60,
    seed: int = 2026,
    progress: bool | None = None,
    on_stage: StageCallback | None = None,
    force: bool = False,
    **settings: Any,
) -> RunResult:
    """Simulate the embedded cohort (with NIfTI maps) and run the pipeline on it.

    The cohort is written to a work folder beside ``out`` (``.OUT.work-*``, removed
    afterwards, and by the next demo if a killed one left it); the run keeps it in
    ``out/inputs/`` (hard links), with ``out/config.toml`` to repeat the run.

    Parameters
    ----------
    out : path
        Output folder (see :func:`run`): new, empty or an earlier alsprog result,
        checked before the cohort is simulated.
    n_patients, n_controls, seed : int
        The cohort (default 200 patients, 60 controls, seed 2026).
    progress : bool or None
        Progress bars.
    on_stage : callable, optional
        As in :func:`run`; the simulation is stage 1 of ``len(STAGES) + 1``.
    force : bool, default False
        As in :func:`run`.
    **settings
        Passed to :func:`write_demo_inputs` (``chains``, ``draws``, ``n_sims``,
        ``n_permutations``, ``n_bootstrap``, ``course_patients``, ``n_jobs``, ``models``,
        ``backtest_models``).

    Returns
    -------
    RunResult

    Raises
    ------
    OutputError
        If alsprog may not write ``out`` (see :func:`run`).
    """
    from alsprog._io import check_out_folder, temp_dir

    out = Path(out)
    check_out_folder(out, force=force)  # before the simulation's minutes
    n = len(STAGES) + 1
    if on_stage is not None:
        on_stage(
            1,
            n,
            "simulate",
            f"{n_patients} ALS patients and {n_controls} controls with NIfTI maps "
            f"(seed {seed})",
        )
    where = Path(os.path.abspath(out))
    with temp_dir(where.parent, f".{where.name}.work-") as work:
        t0 = time.perf_counter()
        config = write_demo_inputs(
            work / "cohort",
            n_patients=n_patients,
            n_controls=n_controls,
            seed=seed,
            progress=progress,
            **settings,
        )

        def shifted(i: int, total: int, stage: str, msg: str) -> None:
            if on_stage is not None:
                on_stage(i + 1, total + 1, stage, msg)

        simulate_seconds = time.perf_counter() - t0
        result = run(config, out, progress=progress, on_stage=shifted, force=force)
        result.stage_seconds = {"simulate": simulate_seconds, **result.stage_seconds}
        return result
