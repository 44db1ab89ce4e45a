"""Resting-state fMRI, PET and DTI tract profiles into one table, and three
classifiers compared honestly on the same folds.

1. Simulate 40 patients and 30 controls; write a resting-state BOLD run (with an
   fMRIPrep-style confounds table) and a PET uptake image per baseline session.
2. Extract motor-network connectivity (ROI series cleaned as nilearn does: detrend,
   band-pass, confound regression) and PET SUVR against cerebellar grey matter,
   corrected for partial volume (geometric transfer matrix); put both in one row per
   session (``merge_features``) and join them to the clinic visits.
3. Compare logistic regression, a linear SVM and a small neural network on the same
   subject-grouped folds: AUC, Brier score and the paired AUC difference.
4. Read TractSeg tract profiles and test ALS vs controls along the corticospinal
   tract with family-wise error control (permutation max-t).

Run: ``python examples/11_imaging_modalities.py [OUT_DIR]``
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from alsprog.biomarkers import compare_classifiers
from alsprog.data import assemble
from alsprog.imaging import (
    extract_connectivity,
    extract_suvr,
    merge_features,
    read_tract_profiles,
    tract_profile_test,
)
from alsprog.simulate import (
    FMRI_NETWORKS,
    simulate_cohort,
    simulate_tract_profiles,
    write_fmri,
    write_pet,
    write_tract_profiles,
)


def main(out: Path) -> None:
    cohort = simulate_cohort(40, n_controls=30, months=0, seed=11)
    baseline = replace(cohort, imaging=cohort.imaging.drop_duplicates("subject_id"))

    fmri = write_fmri(baseline, out / "fmriprep", n_volumes=60, seed=11, progress=False)
    conn = extract_connectivity(
        fmri.root,
        fmri.atlas,
        confounds=["trans_*", "rot_*", "csf", "white_matter"],
        networks={name: list(regions) for name, regions in FMRI_NETWORKS.items()},
        progress=False,
    )
    print(
        f"connectivity: {len(conn.features)} runs x {len(conn.regions)} regions; "
        f"mean motor-network Fisher z by group:"
    )
    z = conn.features.merge(cohort.subjects[["subject_id", "group"]])
    print(z.groupby("group")["fcnet_motor"].agg(["mean", "std", "count"]).round(3))

    pet_root = write_pet(baseline, out / "pet", shape=(24, 28, 24), seed=11,
                         progress=False)  # fmt: skip
    atlas = pet_root / "atlas" / "atlas-alsprogsimpet_dseg.nii.gz"
    suvr = extract_suvr(
        pet_root,
        atlas,
        pvc="gtm",
        psf_fwhm=6.0,
        brain_mask=pet_root / "atlas" / "atlas-alsprogsimpet_desc-brain_mask.nii.gz",
        progress=False,
    )
    features = merge_features(conn, suvr, names=["fMRI", "PET"])
    print(
        f"one row per session: {features.shape[0]} x {features.shape[1] - 3} features"
    )

    table = assemble(cohort.visits, cohort.subjects, features)
    comparison = compare_classifiers(
        table.drop(columns="site"),  # the fMRI and PET simulators add no site effects
        ("logistic", "svm", "mlp"),
        features=["fcnet_motor", "suvr_precentral_*"],
        harmonize=None,
        n_bootstrap=300,
        seed=11,
    )
    print(comparison)

    tracts = simulate_tract_profiles(30, 30, seed=11)
    mapping = write_tract_profiles(tracts, out / "tractseg")  # TractSeg's CSV layout
    profiles = read_tract_profiles(mapping=mapping)
    test = tract_profile_test(
        profiles.profiles, tracts.subjects, bundle="cst_left", n_permutations=1000
    )
    print(test)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    target.mkdir(parents=True, exist_ok=True)
    main(target)
