"""select_n_classes against simulation truth, the criteria's closed forms and the
models' own attributes.

Oracles: the class number of the generator (3 classes, 1 class, 2 classes plus a
tiny third); AIC, BIC, SABIC and ICL recomputed here from ``llf``, ``n_params``,
N and the posteriors; the smallest share recounted from the MAP classes; a fit of
one K alone against the same K inside a longer list (child seeds by K).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from latent_testdata import FORMULA, simulate_classes

from alsprog.errors import ModelSpecificationError, ModelSpecificationWarning
from alsprog.models import ClassSelection, select_n_classes
from alsprog.models.latent._select import TABLE_COLUMNS, _choose

RI = "alsfrs_r_total ~ months + (1 | subject_id)"


@pytest.fixture(scope="module")
def three():
    df, cls = simulate_classes(240, slopes=(-0.3, -1.2, -2.5), seed=31)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # K = 4 overfits: flat, lonely optimum
        sel = select_n_classes(
            df, FORMULA, range(1, 5), n_init=4, seed=7, progress=False
        )
    return df, cls, sel


def test_bic_picks_three_on_three_class_data(three):
    _, _, sel = three
    assert isinstance(sel, ClassSelection)
    t = sel.table
    assert list(t.columns) == list(TABLE_COLUMNS)
    assert t["n_classes"].tolist() == [1, 2, 3, 4]
    assert sel.best == 3 == int(t["bic"].idxmin())
    assert sel.note == ""
    assert set(sel.models) == {1, 2, 3, 4}
    with pytest.raises(TypeError):
        sel.models[5] = sel.models[1]  # read-only


def test_table_equals_each_models_attributes_and_closed_forms(three):
    df, _, sel = three
    N = df["subject_id"].nunique()
    for k, row in sel.table.iterrows():
        m = sel.models[k]
        assert m.n_classes == k
        assert row["llf"] == m.llf_ and row["n_params"] == m.n_params_
        assert row["aic"] == m.aic and row["bic"] == m.bic
        assert row["sabic"] == m.sabic and row["entropy"] == m.entropy_
        assert row["icl"] == m.icl_ and row["converged"] == m.converged_
        assert row["n_best_starts"] == m.n_best_starts_
        assert row["n_init"] == (1 if k == 1 else 4)
        # closed forms from llf, n_params, N and the posteriors
        llf, p = row["llf"], row["n_params"]
        assert p == 2 * k + 3 + 1 + (k - 1)  # betas, 2x2 G, s2, logits
        assert row["aic"] == pytest.approx(-2 * llf + 2 * p, rel=1e-12)
        assert row["bic"] == pytest.approx(-2 * llf + p * np.log(N), rel=1e-12)
        assert row["sabic"] == pytest.approx(
            -2 * llf + p * np.log((N + 2) / 24), rel=1e-12
        )
        P = m.posterior_.to_numpy()
        E = -np.sum(P * np.log(np.clip(P, 1e-300, 1)))
        assert row["icl"] == pytest.approx(row["bic"] + 2 * E, rel=1e-12)
        ent = 1.0 if k == 1 else 1 - E / (N * np.log(k))
        assert row["entropy"] == pytest.approx(ent, abs=1e-12)
        share = np.bincount(P.argmax(axis=1), minlength=k).min() / N
        assert row["smallest_share"] == pytest.approx(share, abs=0)
        assert row["below_min_share"] == (k > 1 and share < 0.05)
    # nested fits: more classes never fit worse
    assert np.all(np.diff(sel.table["llf"].to_numpy()) > -1e-6)


def test_plot_draws_the_criteria_and_marks_the_choice(three):
    import matplotlib

    matplotlib.use("Agg")
    _, _, sel = three
    ax = sel.plot()
    labels = [ln.get_label() for ln in ax.get_lines()]
    assert {"BIC", "SABIC", "ICL", "chosen K = 3"} <= set(labels)
    bic = next(ln for ln in ax.get_lines() if ln.get_label() == "BIC")
    np.testing.assert_array_equal(bic.get_ydata(), sel.table["bic"].to_numpy())
    np.testing.assert_array_equal(bic.get_xdata(), [1, 2, 3, 4])
    from matplotlib.figure import Figure

    ax2 = Figure().add_subplot()
    assert sel.plot(ax=ax2) is ax2


def test_one_class_data_picks_one():
    # the formula's random effects match the generator's (intercept and slope): a
    # random intercept alone lets a second class mimic the random slopes
    df, _ = simulate_classes(150, slopes=(-1.0,), seed=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # two classes on one class: flat optimum
        sel = select_n_classes(df, FORMULA, [1, 2], n_init=3, seed=0, progress=False)
    assert sel.best == 1 and sel.note == ""
    assert sel.table.loc[2, "llf"] >= sel.table.loc[1, "llf"] - 1e-6


def _two_plus_tiny(n_main: int, n_tiny: int, seed: int) -> pd.DataFrame:
    """Two main classes (slopes -0.3, -1.5) and a tiny third (slope -4)."""
    a, _ = simulate_classes(n_main, slopes=(-0.3, -1.5), seed=seed)
    b, _ = simulate_classes(n_tiny, slopes=(-4.0,), seed=seed + 1)
    b["subject_id"] = "T" + b["subject_id"]
    return pd.concat([a, b], ignore_index=True)


@pytest.fixture(scope="module")
def tiny_class():
    df = _two_plus_tiny(190, 6, seed=40)  # the third class holds 6/196 = 3.1 %
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        warnings.simplefilter("always", category=ModelSpecificationWarning)
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always", category=ModelSpecificationWarning)
            sel = select_n_classes(df, RI, [2, 3], n_init=4, seed=3, progress=False)
    return df, sel, rec


def test_min_share_excludes_the_lowest_bic_k_and_says_so(tiny_class):
    df, sel, rec = tiny_class
    t = sel.table
    # BIC alone prefers the tiny third class ...
    assert int(t["bic"].idxmin()) == 3
    m3 = sel.models[3]
    assert sorted(m3.class_sizes_.tolist())[0] == 6
    assert t.loc[3, "smallest_share"] == pytest.approx(6 / 196)
    assert bool(t.loc[3, "below_min_share"]) and not bool(t.loc[2, "below_min_share"])
    # ... but it is not proposed silently
    assert sel.best == 2
    assert "K = 3" in sel.note and "3.1%" in sel.note and "K = 2" in sel.note
    msgs = [str(w.message) for w in rec if w.category is ModelSpecificationWarning]
    assert msgs == [sel.note]


def test_min_share_lower_than_the_tiny_class_keeps_it(tiny_class):
    df, sel, _ = tiny_class
    with warnings.catch_warnings():
        warnings.simplefilter("error", category=ModelSpecificationWarning)
        warnings.simplefilter("ignore", category=UserWarning)
        low = select_n_classes(
            df, RI, [2, 3], n_init=4, seed=3, min_share=0.02, progress=False
        )
    assert low.best == 3 and low.note == ""
    # same seed: the same fits, whatever min_share
    cols = ["llf", "bic", "smallest_share"]
    pd.testing.assert_frame_equal(low.table[cols], sel.table[cols])


def test_choice_when_every_k_has_a_tiny_class():
    tab = pd.DataFrame(
        {
            "bic": [10.0, 5.0],
            "smallest_share": [0.01, 0.02],
            "below_min_share": [True, True],
            "converged": [True, True],
        },
        index=[2, 3],
    )
    best, note = _choose(tab, 0.05)
    assert best is None and "none is proposed" in note and "K = 3" in note
    tab["below_min_share"] = [False, True]
    tab["converged"] = [False, True]
    best, note = _choose(tab, 0.05)
    assert best == 2 and "K = 2 is proposed" in note and "did not converge" in note


def test_seed_reproducible_and_child_seed_by_k():
    df, _ = simulate_classes(80, slopes=(-0.3, -2.0), seed=2)
    kw = {"n_init": 2, "progress": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        a = select_n_classes(df, RI, [1, 2], seed=5, **kw)
        b = select_n_classes(df, RI, [1, 2], seed=5, **kw)
        c = select_n_classes(df, RI, 2, seed=5, **kw)
    pd.testing.assert_frame_equal(a.table, b.table)
    np.testing.assert_array_equal(a.models[2].start_llf_, b.models[2].start_llf_)
    # K = 2's starts do not depend on which other K are fitted
    np.testing.assert_array_equal(a.models[2].start_llf_, c.models[2].start_llf_)
    pd.testing.assert_series_equal(a.table.loc[2], c.table.loc[2])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_classes": []}, "empty"),
        ({"n_classes": [0, 1]}, r"`n_classes` must be an integer >= 1; got 0"),
        ({"n_classes": [1, 2, 2]}, "repeats"),
        ({"n_classes": "123"}, "'123'"),
        ({"n_classes": [1.5]}, "1.5"),
        ({"n_init": 0}, r"`n_init`.*got 0"),
        ({"min_share": 1.0}, r"`min_share` must be in \[0, 1\); got 1.0"),
        ({"min_share": -0.1}, "-0.1"),
        ({"seed": -1}, "non-negative.*-1"),
        ({"seed": "a"}, "'a'"),
        ({"n_jobs": 0}, "got 0"),
        ({"progress": "yes"}, "'yes'"),
        ({"formula": 3}, "string; got 3"),
        ({"mixture": ["age"]}, "'age'"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    df, _ = simulate_classes(30, slopes=(-1.0,), seed=1)
    args = {"table": df, "formula": RI, "n_classes": [1, 2], "progress": False}
    args |= kwargs
    with pytest.raises(ModelSpecificationError, match=match):
        select_n_classes(**args)


def test_table_must_be_a_dataframe():
    with pytest.raises(ModelSpecificationError, match="DataFrame; got list"):
        select_n_classes([1, 2], RI, progress=False)


# ---------------------------------------------------------------- slow tier
@pytest.mark.veryslow  # a study (make test-all): keeps make test near 15 minutes
def test_2000_patients_bic_selects_three_in_parallel():
    from sklearn.metrics import adjusted_rand_score

    df, cls = simulate_classes(2000, seed=21)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sel = select_n_classes(
            df, FORMULA, range(1, 6), n_init=8, seed=1, n_jobs=2, progress=False
        )
    assert sel.best == 3
    m = sel.models[3]
    ids = [f"P{i:04d}" for i in range(2000)]
    assert adjusted_rand_score(cls, m.classes_.loc[ids].to_numpy()) >= 0.8
    assert m.n_best_starts_ >= 3
    assert sel.table.loc[[4, 5], "llf"].max() - m.llf_ < 10  # overfitting gains little
