"""Variant lists in a search space: named sets of config keys, one trial each (the seed teams' studies)."""

from __future__ import annotations

import pytest
import yaml

from dist_spk.config import load_config, to_dict
from dist_spk.errors import ConfigError
from dist_spk.tune.driver import trial_config
from dist_spk.tune.space import dump_sweep, load_space, parse_space, space_path, to_param_space, variant_list

pytestmark = pytest.mark.ray  # imports Ray's library (tests/unit stays Ray-free); starts no cluster

VARIANTS = {"variants": [{"name": "adam", "optim.name": "adam"},
                         {"name": "nadam_cosine", "optim": {"name": "nadam"}, "lr_schedule.name": "cosine"}],
            "parameters": {"optim.lr": {"values": [1e-3, 3e-3]}}}


def test_variants_become_one_grid_entry_each_with_their_keys():
    params = parse_space(VARIANTS, "seg")
    (variant,) = [p for p in params if p.kind == "variant"]
    assert variant.key == "variant" and variant.args[0] == ("adam", "nadam_cosine")
    assert variant_list(params) == [{"name": "adam", "optim.name": "adam"},
                                    {"name": "nadam_cosine", "optim.name": "nadam", "lr_schedule.name": "cosine"}]
    grid = to_param_space(params)["variant"]["grid_search"]
    base = to_dict(load_config("seg"))
    config = trial_config("seg", base, {"variant": grid[1], "optim.lr": 0.003})
    assert (config.optim.name, config.lr_schedule.name, config.optim.lr) == ("nadam", "cosine", 0.003)
    assert trial_config("seg", base, {"variant": grid[0], "optim.lr": 0.001}).lr_schedule.name == "none"
    assert variant.trial_value({"variant": grid[1]}) == "nadam_cosine"  # the summary's variant column
    # what EXP/space.yaml keeps reads back to the same variants
    saved = {"parameters": {"optim.lr": {"values": [1e-3, 3e-3]}}, "variants": variant_list(params)}
    assert parse_space(yaml.safe_load(yaml.safe_dump(saved)), "seg") == params


@pytest.mark.parametrize(("variants", "message"), [
    ([{"optim.name": "adam"}], "variant 1: needs a name"),
    ([{"name": "a"}, {"name": "a", "optim.name": "adam"}], "'a' is used twice"),
    ([{"name": "a", "optim.nme": "adam"}], "optim.nme"),
    ([{"name": "a", "data.batch_size": "big"}], "data.batch_size"),
    ([{"name": "a", "optim.lr": 0.1}], "optim.lr is also in parameters"),
    ([], "non-empty list"),
])
def test_bad_variants_are_one_error_naming_the_variant_and_key(variants, message):
    with pytest.raises(ConfigError, match=message):
        parse_space({"variants": variants, "parameters": {"optim.lr": {"values": [1e-3]}}}, "seg", source="v.yaml")


def test_shipped_seed_studies_load_by_name_and_a_variant_list_is_no_wandb_sweep():
    seg = load_space(space_path("seed_segmentation_variants", "seg"), "seg")
    assert len(seg[-1].args[0]) == 11 and "nadam_cosine" in seg[-1].args[0]
    spk = load_space(space_path("seed_speaker_optuna", "spk"), "spk")
    assert 2048 in next(p for p in spk if p.key == "model.emb_size").args[0]
    with pytest.raises(ConfigError, match="variant list cannot be a W&B sweep"):
        dump_sweep(seg, metric="DiarizationErrorRate", method="random")
