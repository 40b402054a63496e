"""Where a reconstruction's time goes (summary.json ``stage_seconds``), the presets and the
whole-command --time-budget: behaviour, not speed (speed is measured in scripts/bench/)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sdfrecon.cli import main, parse
from sdfrecon.config import PRESETS, ReconstructConfig
from sdfrecon.timing import Stages, process_age

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample_ellipsoid.xyz"
SMALL = ["--hidden-features", "32", "--hidden-layers", "2", "--surface-points", "512",
         "--off-surface-points", "512", "--resolution", "48", "--free-space-pool", "8192",
         "--no-progress"]
STAGES = ("startup", "imports", "checks", "read", "normals", "clean", "noise", "normalise", "run folder",
          "k-d tree", "pool", "training", "checkpoints", "grid evaluation", "marching cubes",
          "component filter", "mesh normals", "snap", "untangle", "write", "previews", "other")


def test_stages_sum_to_the_wall_time_a_user_waits(tmp_path):
    """Every stage from the process's start to the last byte: the summary's wall time is the
    command's, measured from outside (within a second), and the stages sum to it."""
    out = tmp_path / "e.obj"
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "sdfrecon.cli", "reconstruct", str(SAMPLE), "-o", str(out),
                    "--steps", "30", *SMALL], check=True, capture_output=True)
    outside = time.perf_counter() - t
    stages = json.loads((tmp_path / "e.run" / "summary.json").read_text())["stage_seconds"]
    assert tuple(stages)[:-1] == STAGES  # in the order they run, then the wall
    assert stages["wall"] == pytest.approx(sum(v for k, v in stages.items() if k != "wall"), abs=0.01)
    assert outside - 1.0 < stages["wall"] <= outside
    assert stages["startup"] > 0.0 and stages["training"] > 0.0 and stages["previews"] > 0.0


def test_verbose_prints_the_stage_table(tmp_path, capsys):
    assert main(["reconstruct", str(SAMPLE), "-o", str(tmp_path / "e.ply"), "--steps", "20", *SMALL,
                 "--no-previews", "--verbose"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split() == ["stage", "seconds", "share"])
    table = {line.split("  ")[0].strip(): line for line in lines[header + 1:] if line.strip()}
    assert {"training", "grid evaluation", "snap", "other", "wall"} <= set(table)


def test_stages_add_up_a_stage_entered_twice_and_count_the_gaps_as_other():
    stages = Stages(start=time.perf_counter())
    for _ in range(2):
        with stages("a"):
            time.sleep(0.02)
    time.sleep(0.03)
    summary = stages.summary()
    assert summary["a"] >= 0.04 and summary["other"] >= 0.03
    assert summary["wall"] == pytest.approx(summary["a"] + summary["other"], abs=0.002)
    assert 0.0 <= process_age() < 3600  # this process started within the hour


def test_presets_set_defaults_and_options_given_win():
    fast = parse(["reconstruct", "c.xyz", "-o", "m.obj", "--preset", "fast"]).config
    assert fast == PRESETS["fast"] != ReconstructConfig()
    assert parse(["reconstruct", "c.xyz", "-o", "m.obj"]).config == PRESETS["default"] == ReconstructConfig()
    mixed = parse(["reconstruct", "c.xyz", "-o", "m.obj", "--steps", "1500", "--preset=best"]).config
    assert mixed.train.steps == 1500  # given at the default's value, still wins over best's
    assert mixed.extract.resolution == PRESETS["best"].extract.resolution


def test_a_bad_preset_is_one_line_and_exit_2(capsys):
    assert main(["reconstruct", str(SAMPLE), "-o", "m.obj", "--preset", "quick"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "sdfrecon: error: --preset: invalid choice 'quick' (expected one of fast, default, best)"]


def test_time_budget_bounds_the_whole_command(tmp_path):
    """Training gets the budget less what loading took and what extraction will take: the
    steps stop early and the command ends within its budget."""
    out = tmp_path / "e.ply"
    assert main(["reconstruct", str(SAMPLE), "-o", str(out), "--steps", "1000000", "--time-budget", "12",
                 *SMALL, "--no-previews"]) == 0
    summary = json.loads((tmp_path / "e.run" / "summary.json").read_text())
    assert 0 < summary["steps"] < 1_000_000
    assert summary["stage_seconds"]["training"] < 12.0 - summary["stage_seconds"]["startup"]
    assert summary["stage_seconds"]["wall"] < 12.0 + 2.0  # an estimate, not a promise to the ms


def test_openmp_threads_sleep_only_when_other_jobs_run(monkeypatch):
    import os

    from sdfrecon.cli import common

    for others, expected in ((0, None), (5, "PASSIVE")):
        monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
        monkeypatch.setattr(common, "other_runnable_tasks", lambda others=others: others)
        common.passive_openmp()
        assert os.environ.get("OMP_WAIT_POLICY") == expected
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # the user's choice stands
    common.passive_openmp()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    assert common.other_runnable_tasks() >= 0
