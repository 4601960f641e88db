"""dbt's per-build artifact folders do not pile up: beyond the newest ten, settled folders of the analytics op are
removed, while a folder young enough to belong to a running build and the parsed manifests' folders stay."""

from __future__ import annotations

import os
import time

from mfg_pipeline.analytics.build import prune_invocations


def test_only_the_newest_invocation_folders_and_young_ones_are_kept(tmp_path):
    now = time.time()
    old = [tmp_path / f"analytics_models-run{n:02d}-abc" for n in range(14)]
    young = [tmp_path / "analytics_models-young01-abc", tmp_path / "analytics_models-young02-abc"]
    manifest = tmp_path / "switched-off-1234abcd"
    for age, folder in enumerate(old):
        folder.mkdir()
        os.utime(folder, (now - 7200 - age * 60, now - 7200 - age * 60))  # run00 the newest of the old ones
    for folder in (*young, manifest):
        folder.mkdir()
    removed = prune_invocations(tmp_path, "analytics_models-", keep=10)
    assert sorted(removed) == sorted(old[8:])  # the two young ones count among the ten newest
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in (*old[:8], *young, manifest))


def test_a_young_folder_beyond_the_newest_is_kept(tmp_path):
    for n in range(3):
        (tmp_path / f"analytics_models-r{n}-x").mkdir()  # all just written: builds that may still run
    assert prune_invocations(tmp_path, "analytics_models-", keep=1) == []
    assert len(list(tmp_path.iterdir())) == 3
