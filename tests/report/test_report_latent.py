"""A latent-class model in a run (issue 24): fitted, saved, compared and backtested as
every registered model; the report's class-number table (equal to a direct
``select_n_classes`` call on the same rows), class trajectories (equal to the class
means in closed form) and class sizes (counted from the saved posteriors); bad keys
refused by the check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alsprog.data import read_table, write_table
from alsprog.errors import ConfigError, ModelSpecificationError
from alsprog.models import LatentClassMixedModel, select_n_classes
from alsprog.plots import class_trajectories, observed_class_means
from alsprog.report import check, run
from alsprog.report.sections import stage_seed
from alsprog.simulate import ProgressionClass, simulate_cohort

FORMULA = "alsfrs_r_total ~ months + (months | subject_id)"


def _latent(**keys: str) -> str:
    """A ``[models.classes]`` body: two classes, two starts, ``keys`` on top."""
    body = {"type": '"latent_class"', "formula": f'"{FORMULA}"', "n_classes": "2"}
    body |= {"n_init": "2", **keys}
    return "\n".join(f"{k} = {v}" for k, v in body.items())


def _class_tables(folder, months=18):
    """40 patients from a slow and a fast class."""
    c = simulate_cohort(
        40,
        0,
        months=months,
        seed=11,
        progression_classes=[
            ProgressionClass(0.6, -0.3, 0.1, name="slow"),
            ProgressionClass(0.4, -2.0, 0.3, name="fast"),
        ],
    )
    write_table(c.visits, folder / "visits.csv")
    write_table(c.subjects, folder / "subjects.csv")


@pytest.fixture(scope="module")
def latent_run(tmp_path_factory, config_writer):
    data = tmp_path_factory.mktemp("latent_data")
    _class_tables(data)
    config = config_writer(
        data,
        models__classes=_latent(),
        forecast='models = ["lmm", "classes"]\nbaselines = ["delta_fs"]\nn_patients = 0',
        design="enabled = false",
    )
    out = tmp_path_factory.mktemp("latent") / "out"
    run(config, out, progress=False)
    return out


def _fit_rows(out):
    """The rows the models were fitted on: the patients with a score (no patient is
    held out with ``n_patients = 0``)."""
    t, _ = read_table(out / "table.parquet")
    return t.loc[t["alsfrs_r_total"].notna()].reset_index(drop=True)


def test_the_latent_model_runs_through_the_generic_path(latent_run):
    out = latent_run
    comp = pd.read_csv(out / "models" / "comparison.csv", index_col="model")
    assert comp.loc["classes", "type"] == "latent_class"
    back = LatentClassMixedModel.load(out / "models" / "classes.npz")
    assert comp.loc["classes", "n_subjects"] == back.n_subjects_ == 40
    assert np.isclose(comp.loc["classes", "loglik"], back.llf_, rtol=0, atol=1e-9)
    # BIC by lcmm's convention: -2 llf + n_params log(N subjects)
    assert np.isclose(
        comp.loc["classes", "bic"], -2 * back.llf_ + back.n_params_ * np.log(40)
    )
    bt = pd.read_csv(out / "backtest.csv")
    assert {"lmm", "classes"} <= set(bt["model"])
    html = (out / "report.html").read_text()
    assert "classes: summary" in html


@pytest.mark.filterwarnings("ignore::alsprog.errors.ConvergenceWarning")
def test_class_selection_table_equals_a_direct_call(latent_run):
    out = latent_run
    shown = pd.read_csv(out / "models" / "classes_class_selection.csv")
    direct = select_n_classes(
        _fit_rows(out),
        FORMULA,
        range(1, 4),
        n_init=2,
        seed=stage_seed(1, "models.classes.selection"),
        progress=False,
    )
    want = direct.table.reset_index(drop=True)
    assert list(shown.columns) == list(want.columns)
    assert shown["n_classes"].tolist() == [1, 2, 3]
    num = ["llf", "n_params", "aic", "bic", "sabic", "entropy", "icl", "smallest_share"]
    np.testing.assert_allclose(shown[num], want[num].astype(float), rtol=1e-9)
    assert shown["n_best_starts"].tolist() == want["n_best_starts"].tolist()
    # the choice: lowest BIC among K whose smallest class holds >= 5 % of patients
    ok = shown.loc[shown["smallest_share"] >= 0.05]
    best = int(ok.loc[ok["bic"].idxmin(), "n_classes"])
    assert best == direct.best == 2  # two classes drawn, two found
    html = (out / "report.html").read_text()
    assert "BIC chooses K = 2</b> (the configured K)" in html
    assert "<div>classes: latent classes<b>K = 2</b></div>" in html  # at a glance
    assert f"<td>{shown.loc[1, 'bic']:.4g}</td>" in html  # the table's BIC of K = 2
    assert (out / "figures" / "class_selection.png").stat().st_size > 1000


def test_class_trajectories_and_sizes(latent_run):
    out = latent_run
    back = LatentClassMixedModel.load(out / "models" / "classes.npz")
    curves = pd.read_csv(out / "models" / "classes_class_trajectories.csv")
    # each class's mean curve in closed form: its intercept + slope * months
    beta = back.fe_params_
    want = beta.loc[curves["class"], "Intercept"].to_numpy() + beta.loc[
        curves["class"], "months"
    ].to_numpy() * curves["months"].to_numpy(float)
    np.testing.assert_allclose(curves["mean"], want, rtol=0, atol=1e-8)
    assert (curves["lower"] < curves["mean"]).all()
    assert (curves["mean"] < curves["upper"]).all()
    # sizes: patients by most probable class, from the saved posteriors
    post = back.posterior_
    n = np.bincount(post.to_numpy().argmax(axis=1), minlength=2)
    sizes = pd.read_csv(out / "models" / "classes_classes.csv", index_col="class")
    assert sizes["n"].tolist() == n.tolist() and n.sum() == 40
    np.testing.assert_allclose(sizes["share"], n / 40)
    html = (out / "report.html").read_text()
    assert "Latent progression classes" in html
    assert (out / "figures" / "class_trajectories.png").stat().st_size > 1000
    assert 'id="fig-class_trajectories"' in html
    assert "Posterior classification" in html


def test_a_small_class_and_another_k_are_said(config_writer, tmp_path):
    """Twelve months of the same patients: the lowest BIC has a class under 5 %, so
    BIC among the others chooses another K than the configured one, and the report
    says both."""
    data = tmp_path / "data"
    data.mkdir()
    _class_tables(data, months=12)
    config = config_writer(
        data,
        models__lmm=None,
        models__classes=_latent(),
        forecast="enabled = false",
        design="enabled = false",
    )
    out = tmp_path / "out"
    run(config, out, progress=False)
    shown = pd.read_csv(out / "models" / "classes_class_selection.csv", index_col=0)
    k_bic = int(shown["bic"].idxmin())
    share = shown.loc[k_bic, "smallest_share"]
    assert share < 0.05  # the lowest BIC has a class under the minimum share
    ok = shown.loc[shown["smallest_share"] >= 0.05]
    best = int(ok["bic"].idxmin())
    assert best != 2
    html = (out / "report.html").read_text()
    assert f"BIC chooses K = {best}</b> (configured K = 2)" in html
    assert f"<div>classes: latent classes<b>K = 2 (BIC: {best})</b></div>" in html
    assert f"The lowest BIC is at K = {k_bic}, but its smallest class holds" in html
    assert (
        f"the configured model has K = 2 classes, but BIC (among the K with every "
        f"class at least 5% of the patients) chooses K = {best}"
    ) in html


def test_choice_notes_name_the_largest_k_and_a_local_optimum():
    """The notes of a choice at the largest K tried and of a configured fit short
    of the table's fit of the same K (no fits needed)."""
    from types import SimpleNamespace

    from alsprog.report.sections._latent import _choice_notes

    tab = pd.DataFrame(
        {"n_classes": [1, 2], "llf": [-100.0, -90.0], "bic": [205.0, 196.0]},
        index=pd.Index([1, 2], name="K"),
    )
    sel = SimpleNamespace(table=tab, best=2, note="", min_share=0.05)
    notes = _choice_notes(sel, SimpleNamespace(llf_=-100.0), 1)
    assert notes == [
        "the configured model has K = 1 classes, but BIC (among the K with every "
        "class at least 5% of the patients) chooses K = 2",
        "BIC is lowest at K = 2, the largest number of classes tried; more classes "
        "may fit better still",
    ]
    notes = _choice_notes(sel, SimpleNamespace(llf_=-91.5), 2)
    assert notes == [
        "BIC is lowest at K = 2, the largest number of classes tried; more classes "
        "may fit better still",
        "the configured fit reached log-likelihood -91.500 and the class-number "
        "table's fit of K = 2 (other random starts) -90.000: at least one is a "
        "local optimum; raise n_init",
    ]
    assert _choice_notes(sel, SimpleNamespace(llf_=-90.0), 2)[1:] == []


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"n_classes": "0"}, "models.classes.n_classes: 0 is outside [1, inf]"),
        ({"n_init": "0"}, "models.classes.n_init: 0 is outside [1, inf]"),
        (
            {"class_formula": "\"__import__('os').system('true')\""},
            "key models.classes.class_formula: The class_formula",
        ),
        (
            {"class_formula": '"nosuchcolumn"'},
            "names unknown column(s) 'nosuchcolumn'",
        ),
        ({"n_clases": "3"}, "unknown key (did you mean 'n_classes'?"),
    ],
)
def test_bad_latent_keys_are_refused(make_config, keys, expected):
    config = make_config(models__classes=_latent(**keys))
    with pytest.raises(ConfigError) as exc:
        check(config)
    assert expected in str(exc.value)


def test_observed_class_means_by_brute_force():
    rng = np.random.default_rng(3)
    sid = np.repeat([f"P{i}" for i in range(12)], 5)
    t = np.tile([0.0, 3, 6, 9, 12], 12) + rng.uniform(-0.4, 0.4, 60)
    d = pd.DataFrame({"subject_id": sid, "months": t, "y": rng.normal(40, 3, 60)})
    classes = pd.Series(np.repeat([1, 2, 3], 4), index=[f"P{i}" for i in range(12)])
    got = observed_class_means(d, classes, outcome="y", min_count=3)
    rows = []
    for k in (1, 2, 3):
        for visit in (0, 3, 6, 9, 12):  # the median gap is 3 months: one bin a visit
            sel = d[d["subject_id"].map(classes).eq(k) & (abs(d["months"] - visit) < 1)]
            rows.append((k, sel["months"].mean(), sel["y"].mean(), len(sel)))
    want = pd.DataFrame(rows, columns=["class", "months", "mean", "n"])
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_class_trajectories_figure_draws_each_class_with_its_label():
    from matplotlib.figure import Figure

    c = pd.DataFrame(
        {
            "class": [1, 1, 2, 2],
            "months": [0.0, 12, 0, 12],
            "mean": [40.0, 36, 40, 16],
            "lower": [39.0, 35, 39, 14],
            "upper": [41.0, 37, 41, 18],
        }
    )
    obs = pd.DataFrame({"class": [2], "months": [6.0], "mean": [27.0]})
    ax = Figure().add_subplot()
    class_trajectories(c, labels={2: "fast"}, observed=obs, outcome="frs", ax=ax)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["class 1", "fast"]
    lines = ax.get_lines()
    assert [list(ln.get_ydata()) for ln in lines] == [
        [40.0, 36.0],
        [40.0, 16.0],
        [27.0],
    ]
    assert ax.get_ylabel() == "frs" and ax.get_xlabel() == "months"
    with pytest.raises(ModelSpecificationError, match=r"lacks column\(s\) \['upper'\]"):
        class_trajectories(c.drop(columns="upper"), ax=ax)


@pytest.mark.filterwarnings("ignore::alsprog.errors.ConvergenceWarning")
def test_a_class_number_the_data_cannot_carry_is_left_out(config_writer, tmp_path):
    """12 patients carry 2 classes of at least 5 but not 3: the table stops at K = 2
    and says why; membership on a baseline covariate (lcmm's ``classmb``, written
    with its ``~``) goes into every fit of the table."""
    data = tmp_path / "data"
    data.mkdir()
    c = simulate_cohort(12, 0, seed=4)
    write_table(c.visits, data / "visits.csv")
    write_table(c.subjects, data / "subjects.csv")
    config = config_writer(
        data,
        models__lmm=None,
        models__classes=_latent(
            formula='"alsfrs_r_total ~ months + (1 | subject_id)"',
            class_formula='"~ delta_fs"',
        ),
        forecast="enabled = false",
        design="enabled = false",
    )
    out = tmp_path / "out"
    run(config, out, progress=False)
    shown = pd.read_csv(out / "models" / "classes_class_selection.csv")
    assert shown["n_classes"].tolist() == [1, 2]
    direct = select_n_classes(
        _fit_rows(out),
        "alsfrs_r_total ~ months + (1 | subject_id)",
        range(1, 3),
        class_formula="delta_fs",
        n_init=2,
        seed=stage_seed(1, "models.classes.selection"),
        progress=False,
    )
    num = ["llf", "n_params", "bic", "entropy", "smallest_share"]
    np.testing.assert_allclose(shown[num], direct.table[num].astype(float), rtol=1e-9)
    assert shown["n_params"].tolist() == [4, 8]  # K = 2: + pi and ΔFS's log odds
    html = (out / "report.html").read_text()
    assert "the class-number table stops at K = 2: Too few subjects: 12 for 3" in html
