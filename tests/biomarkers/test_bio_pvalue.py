"""Permutation p-values (issue 18, item 3): one default count, and the p-value shown
with its permutation count and floor, never as 0.000999000999000999."""

from __future__ import annotations

import json
import warnings

import pytest

from alsprog.biomarkers import (
    DEFAULT_N_PERMUTATIONS,
    ImagingClassifier,
    evaluate_classifier,
    format_pvalue,
    permutation_pvalue,
)


@pytest.mark.parametrize(
    ("p", "n", "text"),
    [
        (1 / 1001, 1000, "p <= 1/1001 (none of 1000 permutations reached the "
                         "observed AUC)"),
        (12 / 1001, 1000, "p = 0.012 (1000 permutations; smallest possible 1/1001)"),
        (2 / 201, 200, "p = 0.010 (200 permutations; smallest possible 1/201)"),
        (201 / 201, 200, "p = 1.0 (200 permutations; smallest possible 1/201)"),
        (1.0, 1, "p = 1.0 (1 permutation; smallest possible 1/2)"),
        (0.00995, 1000, "p = 0.010 (1000 permutations; smallest possible 1/1001)"),
        (0.000999000999000999 * 3, 1000,
         "p = 0.0030 (1000 permutations; smallest possible 1/1001)"),
        (None, 0, "not computed (0 permutations)"),
    ],
)  # fmt: skip
def test_format_pvalue(p, n, text):
    assert format_pvalue(p, n) == text


def test_floor_with_one_permutation():
    assert format_pvalue(permutation_pvalue(0.9, [0.5]), 1) == (
        "p <= 1/2 (none of 1 permutation reached the observed AUC)"
    )


def test_permutation_pvalue_counts_ties_as_reached():
    # (1 + #{>= observed}) / (1 + n): 0.8 and 0.85 reach 0.8
    assert permutation_pvalue(0.8, [0.8, 0.6, 0.85, 0.4]) == 3 / 5
    with pytest.raises(ValueError, match="needs n >= 1"):
        permutation_pvalue(0.8, [])


def test_default_count():
    import inspect

    sig = inspect.signature(evaluate_classifier)
    assert sig.parameters["n_permutations"].default == DEFAULT_N_PERMUTATIONS == 200


def test_evaluation_shows_its_pvalue_with_count_and_floor(clean_cohort, tmp_path):
    _, df = clean_cohort
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = evaluate_classifier(
            df, clf=ImagingClassifier(covariates=()), n_permutations=19,
            n_bootstrap=50, seed=1,
        )  # fmt: skip
    # a strong simulated effect: no permuted AUC reaches the real one
    assert res.permutation_pvalue == 1 / 20
    assert res.n_permutations == 19
    assert res.pvalue_text == (
        "p <= 1/20 (none of 19 permutations reached the observed AUC)"
    )
    assert repr(res).endswith(
        ", p <= 1/20 (none of 19 permutations reached the observed AUC))"
    )
    assert "0.05" not in repr(res)
    out = res.save(tmp_path / "clf")
    meta = json.loads((out / "classifier.json").read_text())
    assert meta["n_permutations"] == 19
    assert meta["permutation_pvalue_text"] == res.pvalue_text
