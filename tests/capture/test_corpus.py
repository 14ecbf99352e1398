"""Real code: 15 scripts of scikit-learn's example gallery, unchanged, run as experiments.

Each script is recorded under fine capture with ini `nw_tags` lines naming one or more of its
results for it alone (`corpus/plot_dbscan.py: labels ...`), saved as a baseline, then run again
and compared with it: every script must pass twice and match. The scripts use bundled or
generated data only (no network) and draw with matplotlib's Agg backend. See
tests/corpus/README.md for where they come from. Both runs use two pytest-xdist workers unless
this test itself runs in one (the work is two cores' worth of capture processes, not more).
About 85 s of CPU time; deselect with ``-m "not corpus"``.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

CORPUS = Path(__file__).parent.parent / "corpus"

# script -> the module-level results recorded as its tags
TAGS = {
    "plot_affinity_propagation.py": "labels n_clusters_ cluster_centers_indices",
    "plot_calibration.py": "clf_score clf_isotonic_score clf_sigmoid_score",
    "plot_compare_cross_decomposition.py": "X_test_r Y_test_r",
    "plot_covariance_estimation.py": "loglik_oa negative_logliks",
    "plot_dbscan.py": "labels n_clusters_ n_noise_",
    "plot_digits_agglomeration.py": "X_reduced",
    "plot_frozen_examples.py": "clf_score calibrated_score",
    "plot_ica_blind_source_separation.py": "S_ A_ H",
    "plot_incremental_pca.py": "X_ipca X_pca",
    "plot_lda_qda.py": "X_different_covariance y_different_covariance",
    "plot_mahalanobis_distances.py": "emp_mahal robust_mahal",
    "plot_pca_vs_lda.py": "X_r X_r2",
    "plot_pcr_vs_pls.py": "y_test",
    "plot_random_forest_embedding.py": "X_transformed y_grid_pred",  # X_transformed: a scipy.sparse matrix
    "plot_varimax_fa.py": "X",
}

pytestmark = pytest.mark.corpus


def _summary(result: pytest.RunResult) -> str:
    return result.stdout.str().split("short test summary info")[0]


def test_gallery_scripts_pass_and_match_their_baseline(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("sklearn")
    assert sorted(TAGS) == sorted(p.name for p in CORPUS.glob("*.py"))  # every script has its tags
    monkeypatch.setenv("MPLBACKEND", "Agg")
    root = Path(pytester.path)
    shutil.copytree(CORPUS, root / "corpus")
    lines = "\n".join(f"    corpus/{script}: {names}" for script, names in TAGS.items())
    pytester.makefile(".ini", pytest=f"[pytest]\nnw_experiments = corpus/*.py\nnw_tags =\n{lines}\n")

    workers = () if os.environ.get("PYTEST_XDIST_WORKER") or (os.cpu_count() or 1) < 2 else ("-n", "2")
    saved = pytester.runpytest_subprocess("-p", "no:cacheprovider", *workers, "--nw-save-baseline=gallery",
                                          timeout=600)
    saved.assert_outcomes(passed=len(TAGS))
    assert f"saved {len(TAGS)} entries to baseline 'gallery'" in _summary(saved)
    folder = root / "nw-baselines" / "gallery" / "corpus"
    for script, names in TAGS.items():  # each recorded its own results and no other script's
        entry = json.loads((folder / f"{script}.json").read_text())
        assert sorted(entry["tags"]) == sorted(names.split()), script
    sparse = json.loads((folder / "plot_random_forest_embedding.py.json").read_text())["tags"]["X_transformed"]
    assert sparse["value"]["__nw__"] == "sparse" and sparse["value"]["blob"].endswith(".npz")

    again = pytester.runpytest_subprocess("-p", "no:cacheprovider", *workers, "--nw-baseline=gallery", timeout=600)
    again.assert_outcomes(passed=len(TAGS))
    assert f"{len(TAGS)} run, {len(TAGS)} matched, 0 changed, 0 new, 0 failed, 0 skipped, 0 missing" in _summary(again)
