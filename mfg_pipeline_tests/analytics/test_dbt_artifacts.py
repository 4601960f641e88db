"""dbt's per-build artifacts do not pile up (beyond the newest ten, settled folders of the analytics op are removed,
while a folder young enough to belong to a running build and the parsed manifests' folders stay), and each build
starts from the parse state the last build with its profile kept."""

from __future__ import annotations

import os
import time

from mfg_pipeline.analytics.build import ParseState, prune_invocations


def test_only_the_newest_invocation_folders_and_young_ones_are_kept(tmp_path):
    now = time.time()
    old = [tmp_path / f"analytics_models-run{n:02d}-abc" for n in range(14)]
    young = [tmp_path / "analytics_models-young01-abc", tmp_path / "analytics_models-young02-abc"]
    manifest = tmp_path / "vars-1234abcd"
    for age, folder in enumerate(old):
        folder.mkdir()
        os.utime(folder, (now - 7200 - age * 60, now - 7200 - age * 60))  # run00 the newest of the old ones
    for folder in (*young, manifest):
        folder.mkdir()
    removed = prune_invocations(tmp_path, "analytics_models-*", keep=10)
    assert sorted(removed) == sorted(old[8:])  # the two young ones count among the ten newest
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in (*old[:8], *young, manifest))


def test_a_young_folder_beyond_the_newest_is_kept(tmp_path):
    for n in range(3):
        (tmp_path / f"analytics_models-r{n}-x").mkdir()  # all just written: builds that may still run
    assert prune_invocations(tmp_path, "analytics_models-*", keep=1) == []
    assert len(list(tmp_path.iterdir())) == 3


def test_a_build_starts_from_the_parse_state_the_last_build_with_its_profile_kept(tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    first, second = target / "analytics_models-run1-a", target / "analytics_models-run2-b"
    this_warehouse = ParseState(target, [("MFG_DBT_CATALOG", "ducklake:sqlite:/a/catalog.sqlite")])
    other_warehouse = ParseState(target, [("MFG_DBT_CATALOG", "ducklake:sqlite:/b/catalog.sqlite")])
    assert not this_warehouse.seed(first)  # nothing kept yet: dbt parses the whole project
    first.mkdir()
    (first / "partial_parse.msgpack").write_bytes(b"state of run 1")
    assert this_warehouse.keep(first)
    assert this_warehouse.seed(second)
    assert (second / "partial_parse.msgpack").read_bytes() == b"state of run 1"
    assert not other_warehouse.seed(target / "analytics_models-run3-c")  # another profile's state is not reused
    assert sorted(p.name for p in target.iterdir() if p.is_file()) == [this_warehouse.path.name]
    assert prune_invocations(target, ParseState.PATTERN, keep=0) == []  # young: a build may be using it
