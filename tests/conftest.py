"""Shared fixtures: small hand-made tables written as files, matplotlib on Agg."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tablefiles import (
    SUBJECTS_HEADER,
    VISITS_HEADER,
    valid_subjects_rows,
    valid_visits_rows,
    write_csv,
)

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def visits_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "visits.csv", VISITS_HEADER, valid_visits_rows())


@pytest.fixture
def subjects_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "subjects.csv", SUBJECTS_HEADER, valid_subjects_rows())


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import sys

    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


#: The quick tier (``make test-quick``: ``-m "not slow and not veryslow"``) is the
#: edit-test loop, under 2 minutes on 2 cores.  These files fit JAX/PyMC models or run
#: the whole pipeline in module fixtures (5-30 s each, mostly compilation), and these
#: tests take a second or more each (measured with ``--durations``): they are marked
#: ``slow`` here, in one place, and run in ``make test`` / CI with the rest.
_SLOW_FILES = frozenset(
    {
        "alsprog/models/joint/_model.py",
        "tests/models/test_bayes.py",
        "tests/models/test_joint.py",
        "tests/models/test_joint_save.py",
        "tests/models/test_no_mutation.py",
        "tests/report/test_report_run.py",
        "tests/report/test_report_html.py",
        "tests/report/test_report_rerun.py",
        "tests/report/test_report_mmrm.py",
        "tests/test_cli_forecast.py",
        "tests/forecast/test_forecast_columns_bayes.py",
        "tests/forecast/test_forecast_bayes_oracle.py",
        "tests/safety/test_safety_fuzz_readers.py",
    }
)
_SLOW_TESTS = frozenset(
    {
        "alsprog/biomarkers/_learning_curve.py::alsprog.biomarkers._learning_curve.learning_curve",
        "tests/biomarkers/test_bio_evaluate.py::test_grouped_auc_matches_simulator_truth",
        "tests/biomarkers/test_bio_evaluate.py::test_leave_site_out_with_combat_runs_and_is_reproducible",
        "tests/biomarkers/test_bio_importance.py::test_affected_regions_rank_above_negative_control",
        "tests/biomarkers/test_bio_pvalue.py::test_evaluation_shows_its_pvalue_with_count_and_floor",
        "tests/design/test_simulate.py::test_same_seed_same_numbers_any_n_jobs",
        "tests/design/test_simulate.py::test_simulated_power_matches_analytic_mmrm",
        "tests/design/test_simulate_attrition.py::test_simulated_power_matches_analytic_under_retention",
        "tests/forecast/test_forecast_columns.py::test_backtest_and_evaluate_on_renamed_columns_equal_the_default_ones",
        "tests/forecast/test_forecast_columns.py::test_joint_model_on_renamed_columns",
        "tests/forecast/test_forecast_joint.py::test_draws_follow_the_summaries",
        "tests/imaging/test_img_extract.py::test_dask_local_cluster_identical",
        "tests/models/test_contract.py::test_every_registered_model_meets_the_contract",
        "tests/plots/test_plots_trajectories.py::test_every_model_gets_the_same_band_type_and_its_own_line",
        "tests/report/test_report_inputs.py::test_default_run_links_images_copies_tables_and_repeats",
        "tests/report/test_report_registry.py::test_a_run_fits_reports_forecasts_and_backtests_the_toy",
        "tests/report/test_report_sections.py::test_own_section_runs_as_a_stage_of_its_own",
        "tests/safety/test_safety_outputs.py::test_run_rerun_in_place_from_its_own_copies",
        "tests/safety/test_safety_outputs.py::test_signal_one_line_no_temp_left",
        "tests/safety/test_safety_tables.py::test_cli_validate_refuses_a_2099_visit",
        "tests/test_cli.py::test_classify_command",
        "tests/test_cli_biomarkers_imaging.py::test_classify_als_hc_labels_make_als_positive",
        "tests/test_cli_biomarkers_imaging.py::test_classify_prints_pvalue_with_its_count_and_positive_class",
        "tests/test_cli_biomarkers_imaging.py::test_classify_progress_lines_off_a_terminal",
        "tests/test_cli_biomarkers_imaging.py::test_classify_progress_off_with_quiet_or_no_progress",
        "tests/test_cli_issue18.py::test_backtest_takes_and_writes_the_configs_model_names",
        "tests/test_cli_issue18.py::test_classify_seed_and_output_names",
        "tests/test_cli_issue18.py::test_figures_are_named_by_content",
        "tests/test_cli_issue18.py::test_quiet_and_verbose_after_the_command",
        "tests/test_cli_issue18.py::test_run_prints_alsprog_warnings_once_and_logs_the_rest",
        "tests/test_readme.py::test_quick_start_runs_as_a_script_and_prints_what_the_readme_shows",
        "tests/test_readme.py::test_synthetic_cohort_table_is_what_the_simulator_gives",
    }
)


def pytest_collection_modifyitems(config, items):
    """Mark the quick tier's heavy files and tests ``slow`` (see ``_SLOW_FILES``)."""
    for item in items:
        node = item.nodeid
        if node.split("::")[0] in _SLOW_FILES or node.split("[")[0] in _SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
