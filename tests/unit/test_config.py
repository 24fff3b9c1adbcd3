"""Config system: presets build, overrides coerce, bad keys/types/values are rejected by name."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from dist_spk.config import (
    PRESETS,
    config_from_dict,
    dump_config,
    load_config,
    save_config,
    to_dict,
)
from dist_spk.config.tasks import SegConfig, SpkConfig
from dist_spk.errors import ConfigError

ALL_PRESETS = [(task, name) for task, presets in PRESETS.items() for name in presets]


@pytest.mark.parametrize(("task", "name"), ALL_PRESETS)
def test_every_preset_builds_validates_and_round_trips(task, name):
    config = load_config(task, preset_name=name)
    assert isinstance(config, SegConfig if task == "seg" else SpkConfig)
    # what Ray hands a worker comes back identical
    assert config_from_dict(task, to_dict(config)) == config
    # and so does the YAML written into run directories
    assert config_from_dict(task, yaml.safe_load(dump_config(config))) == config


def test_local_presets_run_on_cpu_and_cluster_presets_on_gpu():
    for task in PRESETS:
        assert load_config(task, preset_name="local").trainer.use_gpu is False
        assert load_config(task, preset_name="cluster").trainer.use_gpu is True


def test_overrides_coerce_to_the_declared_types():
    config = load_config(
        "seg",
        overrides=[
            "optim.lr=1e-3",  # YAML 1.1 would keep this a string
            "optim.name=nadam",
            "optim.lookahead=true",
            "trainer.epochs=7",
            "trainer.limit_train_batches=none",
            "data.batch_size=64",
            "loss.name=bce+dice",
        ],
    )
    assert config.optim.lr == pytest.approx(1e-3) and isinstance(config.optim.lr, float)
    assert config.optim.name == "nadam"
    assert config.optim.lookahead is True
    assert config.trainer.epochs == 7 and isinstance(config.trainer.epochs, int)
    assert config.trainer.limit_train_batches is None
    assert config.loss.name == "bce+dice"
    spk = load_config("spk", overrides=["data.speed_perturb=0.9,1.1", "head.scale=32"])
    assert spk.data.speed_perturb == [0.9, 1.1]
    assert spk.head.scale == 32.0 and isinstance(spk.head.scale, float)
    assert load_config("spk", overrides=["data.speed_perturb=[0.95, 1.05]"]).data.speed_perturb == [0.95, 1.05]


def test_override_order_is_preset_then_file_then_set(tmp_path):
    file = tmp_path / "mine.yaml"
    file.write_text("optim:\n  lr: 1e-2\n  name: radam\ntrainer:\n  epochs: 9\n")
    config = load_config("seg", preset_name="local", file=file, overrides=["optim.lr=0.5"])
    assert config.optim.name == "radam"  # from the file
    assert config.optim.lr == 0.5  # --set beats the file
    assert config.trainer.epochs == 9
    assert config.data.batch_size == 16  # untouched keys keep the preset's value


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("optim.lrr=1", ["'optim.lrr'", "Did you mean 'optim.lr'", "Valid keys in 'optim'", "lookahead_k"]),
        ("optimizer.lr=1", ["'optimizer'", "Valid keys: data, model, loss, optim"]),
        ("optim.lr=fast", ["'optim.lr'", "expects float", "'fast'"]),
        ("trainer.epochs=2.5", ["'trainer.epochs'", "expects int"]),
        ("optim.lookahead=maybe", ["'optim.lookahead'", "expects bool"]),
        ("optim.name=adamx", ["'optim.name'", "'adam'", "did you mean 'adam'"]),
        ("optim=3", ["'optim' is a section"]),
        ("optim.lr", ["expected KEY=VALUE"]),
    ],
)
def test_bad_overrides_name_the_key(override, expected):
    with pytest.raises(ConfigError) as err:
        load_config("seg", overrides=[override])
    for text in expected:
        assert text in str(err.value)


def test_bad_file_keys_and_types_name_the_file_and_key(tmp_path):
    file = tmp_path / "bad.yaml"
    file.write_text("model:\n  lstm_hiden_size: 3\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: unknown key 'model\.lstm_hiden_size'.*lstm_hidden_size"):
        load_config("seg", file=file)
    file.write_text("trainer:\n  epochs: ten\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: key 'trainer\.epochs' expects int, got 'ten'"):
        load_config("seg", file=file)
    file.write_text("trainer: 5\n")
    with pytest.raises(ConfigError, match=r"key 'trainer' expects a mapping"):
        load_config("seg", file=file)
    file.write_text("trainer: [1,\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: line \d+ is not valid YAML"):
        load_config("seg", file=file)
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config("seg", file=tmp_path / "missing.yaml")


def test_value_problems_are_all_listed_in_one_error():
    with pytest.raises(ConfigError) as err:
        load_config("spk", overrides=["optim.lr=-1", "model.num_heads=3", "head.scale=0"])
    message = str(err.value)
    assert "optim.lr: must be > 0" in message
    assert "model.d_model: must be divisible by num_heads" in message
    assert "head.scale: must be > 0" in message


def test_unknown_task_and_preset():
    with pytest.raises(ConfigError, match="valid tasks: seg, spk"):
        load_config("vad")
    with pytest.raises(ConfigError, match="valid presets: local, cluster"):
        load_config("seg", preset_name="huge")


def test_bools_are_not_ints_and_ints_are_floats():
    with pytest.raises(ConfigError, match="expects int"):
        config_from_dict("seg", {"trainer": {"epochs": True}})
    assert config_from_dict("seg", {"optim": {"lr": 1}}).optim.lr == 1.0


def test_save_config_writes_the_resolved_yaml(tmp_path):
    config = load_config("spk", overrides=["head.margin=0.3"])
    path = save_config(config, tmp_path / "run")
    assert path == tmp_path / "run" / "config.yaml"
    assert config_from_dict("spk", yaml.safe_load(path.read_text())).head.margin == 0.3


def test_importing_the_package_imports_neither_ray_nor_pyannote():
    code = (
        "import sys, dist_spk, dist_spk.config, dist_spk.cli; "
        "print(sorted(m for m in ('ray', 'pyannote', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_renamed_keys_keep_working_with_one_notice(tmp_path, capsys):
    """scheduler.* -> lr_schedule.*, search.scheduler -> search.trial_scheduler, search.search -> search.sampler."""
    from dist_spk.config import config_from_dict, read_config_file
    from dist_spk.config.renames import current_key

    old_file = tmp_path / "old.yaml"
    old_file.write_text("scheduler: {name: cosine, warmup_epochs: 1}\nsearch: {scheduler: fifo, search: optuna}\n")
    config = load_config("seg", file=old_file, overrides=["scheduler.min_lr=1e-5", "search.scheduler=pbt"])
    assert (config.lr_schedule.name, config.lr_schedule.warmup_epochs, config.lr_schedule.min_lr) == ("cosine", 1, 1e-5)
    assert (config.search.trial_scheduler, config.search.sampler) == ("pbt", "optuna")
    notices = capsys.readouterr().err.splitlines()
    assert f"dist-spk: 'scheduler' is now 'lr_schedule' ({old_file}); the old name still works" in notices
    assert f"dist-spk: 'search.search' is now 'search.sampler' ({old_file}); the old name still works" in notices
    assert any("'scheduler.min_lr' is now 'lr_schedule.min_lr' (--set scheduler.min_lr=1e-5)" in n for n in notices)
    assert len(notices) == 5  # one line per old key and place
    load_config("seg", file=old_file)
    assert capsys.readouterr().err == ""  # once per key and file

    # a saved config of the previous layout loads silently (run directories, checkpoints, resumed searches)
    saved = read_config_file(old_file)
    assert config_from_dict("seg", saved).lr_schedule.name == "cosine" and capsys.readouterr().err == ""
    assert current_key("search.scheduler") == "search.trial_scheduler" and current_key("search.grace_period") == \
        "search.grace_period" and current_key("scheduler") == "lr_schedule"

    both = tmp_path / "both.yaml"
    both.write_text("scheduler: {name: cosine}\nlr_schedule: {name: none}\n")
    with pytest.raises(ConfigError, match="both 'scheduler' .* and 'lr_schedule' are set"):
        load_config("seg", file=both)
