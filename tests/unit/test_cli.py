"""The `dist-spk` entry point: groups, help, and errors without tracebacks."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli

GROUPS = ("data", "config", "train", "tune", "evaluate", "report", "demo")


def test_help_lists_every_group():
    result = run_cli("--help")
    assert result.returncode == 0
    for group in GROUPS:
        assert group in result.stdout


@pytest.mark.parametrize("group", [g for g in GROUPS if g != "demo"])
def test_every_group_has_help(group):
    result = run_cli(group, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout


def test_user_error_is_one_line_with_exit_2_and_no_traceback():
    result = run_cli("config", "show", "seg", "--set", "optim.lrr=1")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error: --set optim.lrr=1: unknown key 'optim.lrr'")


def test_config_show_prints_the_resolved_yaml():
    result = run_cli("config", "show", "spk", "--preset", "cluster", "--set", "head.margin=0.35")
    assert result.returncode == 0, result.stderr
    assert "margin: 0.35" in result.stdout
    assert "use_gpu: true" in result.stdout


def test_train_with_a_bad_override_fails_before_writing(tmp_path):
    out = tmp_path / "run"
    result = run_cli("train", "seg", "--data", str(tmp_path), "--out", str(out), "--set", "optim.name=adamz")
    assert result.returncode == 2
    assert "key 'optim.name'" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_train_on_a_missing_dataset_is_one_clear_error(tmp_path):
    result = run_cli("train", "seg", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()
