"""Search spaces (W&B and Tune syntax), resources, trial configs, results and plots: no Ray cluster."""

from __future__ import annotations

import json

import pytest
import yaml

from dist_spk.config import load_config, to_dict
from dist_spk.errors import ConfigError, DistSpkError
from dist_spk.tune.driver import trial_config
from dist_spk.tune.runner import check_search, pbt_mutations, search_warnings
from dist_spk.tune.space import default_space_path, dump_sweep, load_space, parse_space, to_param_space, variant_list

pytestmark = pytest.mark.ray  # imports Ray's library (tests/unit stays Ray-free); starts no cluster


def test_wandb_and_tune_syntax_give_the_same_params():
    wandb = {"method": "bayes", "parameters": {
        "optim.lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-2},
        "optim.name": {"values": ["adam", "nadam"]},
        "trainer.epochs": {"value": 3},
        "head.margin": {"distribution": "q_uniform", "min": 0.1, "max": 0.4, "q": 0.05},
        "model.num_blocks": {"distribution": "int_uniform", "min": 2, "max": 6}}}
    tune_style = {"optim": {"lr": {"loguniform": [1e-4, 1e-2]}, "name": {"choice": ["adam", "nadam"]}},
                  "trainer.epochs": 3, "head.margin": {"quniform": [0.1, 0.4, 0.05]},
                  "model.num_blocks": {"randint": [2, 6]}}
    assert sorted(parse_space(wandb, "spk"), key=str) == sorted(parse_space(tune_style, "spk"), key=str)


def test_export_sweep_round_trips(tmp_path):
    params = load_space(default_space_path("spk"), "spk")
    (tmp_path / "sweep.yaml").write_text(dump_sweep(params, metric="eer"))
    sweep = yaml.safe_load((tmp_path / "sweep.yaml").read_text())
    assert sweep["metric"] == {"name": "eer", "goal": "minimize"}
    assert parse_space(sweep, "spk") == params


def test_randint_bounds_are_inclusive_and_samples_have_the_config_types():
    (blocks,) = parse_space({"model.num_blocks": {"randint": [2, 3]}}, "spk")
    domain = blocks.to_tune()
    samples = {domain.sample() for _ in range(200)}
    assert samples == {2, 3}
    base = to_dict(load_config("spk"))
    config = trial_config("spk", base, {"model.num_blocks": domain.sample(), "optim.lr": 0.01,
                                        "optim.name": "nadam", "data.speed_perturb": [0.9, 1.1]})
    assert config.model.num_blocks in (2, 3) and config.optim.name == "nadam"
    assert config.data.speed_perturb == [0.9, 1.1]
    assert base["optim"]["name"] == "adam"  # the base is not modified


@pytest.mark.parametrize(("space", "message"), [
    ({"optim.lrr": {"values": [1]}}, "unknown key 'optim.lrr'"),
    ({"optim.name": {"values": ["adam", "adamz"]}}, "key 'optim.name' expects"),
    ({"optim.lr": {"distribution": "log_uniform_values", "min": 1e-2, "max": 1e-4}}, "min must be below max"),
    ({"optim.lr": {"distribution": "log_uniform_values", "min": 0, "max": 1}}, "must be positive"),
    ({"optim.lr": {"distribution": "betta", "min": 0, "max": 1}}, "unknown distribution 'betta'"),
    ({"optim.lr": {"distribution": "uniform", "min": 0}}, "missing max"),
    ({"trainer.gradient_clip": {"randint": [1, 3]}}, "needs an int key"),
    ({"optim.lr": {"uniform": [1, 2], "extra": 1}}, "expected one of value, values"),
    ({"optim.lr": {"wat": [1, 2]}}, "'optim.lr' is a value, not a section"),
    ({}, "no parameters"),
])
def test_bad_spaces_name_the_file_and_key(space, message):
    with pytest.raises(ConfigError, match=message):
        parse_space(space, "seg", source="space.yaml")


def test_shipped_spaces_are_valid_and_reproduce_the_seed_knobs():
    seg = {p.key for p in load_space(default_space_path("seg"), "seg")}
    assert {"optim.name", "optim.lookahead", "lr_schedule.name", "loss.name", "data.batch_size", "optim.lr",
            "augment.probability"} <= seg
    spk = {p.key for p in load_space(default_space_path("spk"), "spk")}
    assert {"model.emb_size", "head.margin", "head.scale", "optim.lr", "model.num_blocks"} <= spk
    assert set(to_param_space(load_space(default_space_path("spk"), "spk"))) == spk


def _fake_experiment(tmp_path):
    from dist_spk.tune.results import export_best, trial_rows, write_summary

    exp = tmp_path / "exp"
    histories = {"t1": [0.5, 0.4, 0.3], "t2": [0.6], "t3": [0.45, 0.35, 0.38]}
    for trial, values in histories.items():
        run = exp / "trials" / trial
        (run / "checkpoints").mkdir(parents=True)
        (run / "config.yaml").write_text(f"trial: {trial}\n")
        (run / "checkpoints" / "best.ckpt").write_text(trial)
        (run / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e, "eer": v}) + "\n"
                                                   for e, v in enumerate(values)))
    # what run_search writes; t2's lr (PBT-perturbed, say) lies outside the space's bounds
    (exp / "space.yaml").write_text(yaml.safe_dump({"parameters": {
        "optim.lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 5e-3},
        "optim.name": {"values": ["adam", "nadam"]}, "trainer.epochs": {"value": 3}}}))
    trials = [("t1", {"optim.lr": 0.001, "optim.name": "adam"}, False),
              ("t2", {"optim.lr": 0.01, "optim.name": "nadam"}, False),
              ("t3", {"optim.lr": 0.003, "optim.name": "adam"}, False)]
    rows = trial_rows(exp, objective="eer", epochs=3, trials=trials)
    write_summary(exp, rows)
    return exp, rows, export_best(exp, rows, objective="eer")


def test_summary_and_best_from_trial_histories(tmp_path):
    exp, rows, best = _fake_experiment(tmp_path)
    assert [(r["trial_id"], r["status"], r["best_eer"], r["best_epoch"]) for r in rows] == [
        ("t1", "completed", 0.3, 2), ("t3", "completed", 0.35, 1), ("t2", "stopped early", 0.6, 0)]
    assert (best / "checkpoint.ckpt").read_text() == "t1" and (best / "config.yaml").read_text() == "trial: t1\n"
    assert json.loads((best / "metrics.json").read_text())["best"] == {"epoch": 2, "eer": 0.3}
    assert (exp / "summary.csv").read_text().splitlines()[0] == (
        "trial_id,status,epochs,best_eer,best_epoch,optim.lr,optim.name")


def test_report_draws_every_plot(tmp_path):
    from PIL import Image

    from dist_spk.tune.plots import draw_report

    exp, _, _ = _fake_experiment(tmp_path)
    paths = draw_report(exp)
    assert [p.name for p in paths] == ["optimization_history.png", "learning_curves.png",
                                       "parallel_coordinates.png", "param_importance.png", "contour.png",
                                       "metric_curves.png"]
    for path in paths:
        assert Image.open(path).size[0] > 300
    with pytest.raises(DistSpkError, match="no summary.csv"):
        draw_report(tmp_path / "nothing")


def test_search_is_an_optuna_study_on_disk(tmp_path):
    """EXP/optuna.journal, read back by Optuna's own journal storage: one trial per Tune trial in start order,
    its best objective as value, every epoch as an intermediate value, the sampled params typed again."""
    import optuna

    from dist_spk.tune.plots import draw_report

    exp, _, _ = _fake_experiment(tmp_path)
    draw_report(exp)
    draw_report(exp)  # written whole again, not appended to
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(exp / "optuna.journal")))
    (summary,) = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    assert study.study_name == "exp" and study.user_attrs["objective"] == "eer"
    assert [t.user_attrs["trial_id"] for t in study.trials] == ["t1", "t2", "t3"]
    assert [t.value for t in study.trials] == [0.3, 0.6, 0.35]
    assert [t.user_attrs["status"] for t in study.trials] == ["completed", "stopped early", "completed"]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert study.trials[2].intermediate_values == {0: 0.45, 1: 0.35, 2: 0.38}
    assert study.best_trial.params == {"optim.lr": 0.001, "optim.name": "adam"}
    lr = study.trials[1].distributions["optim.lr"]
    assert lr.log and lr.low == 1e-4 and lr.high == 0.01  # widened to hold the value the trial used


def test_pbt_mutates_only_what_a_running_trial_can_change():
    params = load_space(default_space_path("spk"), "spk")  # emb_size, margin, scale, lr, depth
    mutations = pbt_mutations("spk", params)
    assert set(mutations) == {"head.margin", "head.scale", "optim.lr"}  # never the architecture
    assert mutations["head.scale"] == [16.0, 24.0, 32.0, 48.0]
    seg = pbt_mutations("seg", load_space(default_space_path("seg"), "seg"))
    assert set(seg) == {"optim.lr", "loss.name", "augment.probability"}


def test_pbt_and_optuna_refuse_what_they_cannot_search():
    config = load_config("spk", overrides=["search.trial_scheduler=pbt"])
    with pytest.raises(ConfigError, match="no key PBT can change.*optim.lr"):
        check_search("spk", config, parse_space({"model.emb_size": {"values": [64, 128]}}, "spk"))
    config = load_config("spk", overrides=["search.trial_scheduler=pbt", "search.sampler=optuna"])
    with pytest.raises(ConfigError, match="search.sampler=random"):
        check_search("spk", config, parse_space({"optim.lr": {"values": [0.1, 0.2]}}, "spk"))
    config = load_config("spk", overrides=["search.sampler=optuna"])
    with pytest.raises(ConfigError, match="optuna cannot sample optim.lr"):
        check_search("spk", config, parse_space({"optim.lr": {"grid": [0.1, 0.2]}}, "spk"))


def test_pbt_never_exploits_on_a_trials_last_epoch():
    from ray.tune.experiment import Trial

    from dist_spk.tune.runner import _scheduler

    config = load_config("spk", overrides=["search.trial_scheduler=pbt", "trainer.epochs=3",
                                           "search.perturbation_interval=1"])
    pbt = _scheduler(config, "spk", load_space(default_space_path("spk"), "spk"), "eer")

    def running(name):
        trial = Trial("fake", config={"optim.lr": 1e-3, "head.margin": 0.2, "head.scale": 32.0}, stub=True,
                      experiment_tag=name)
        trial.set_status(Trial.RUNNING)
        return trial

    strong, weak = running("strong"), running("weak")
    controller = type("Controller", (), {"search_alg": None, "get_trials": lambda self: [strong, weak],
                                         "_schedule_trial_save": lambda self, trial, result: "donor checkpoint"})()
    exploited = []
    pbt._exploit = lambda _, trial, donor: exploited.append((epoch, trial.experiment_tag, donor.experiment_tag))
    for trial in (strong, weak):
        pbt.on_trial_add(controller, trial)
    for epoch in range(3):
        for trial, eer in ((strong, 0.1), (weak, 0.3)):
            pbt.on_trial_result(controller, trial, {"training_iteration": epoch + 1, "epoch": epoch, "eer": eer})
    # epoch 0: no donor checkpoint yet; epoch 1: the weak trial copies the strong one; epoch 2 (the last): Tune's PBT
    # would copy it again and restart the weak trial with a config that trains nothing
    assert exploited == [(1, "weak", "strong")]


@pytest.mark.parametrize("preset", ["local", "cluster"])
@pytest.mark.parametrize("task", ["seg", "spk"])
def test_presets_let_asha_rank_trials_only_after_their_warm_up(task, preset):
    assert search_warnings(task, load_config(task, preset_name=preset)) == []


def test_a_grace_period_inside_the_warm_up_is_warned_about():
    config = load_config("spk", overrides=["head.margin_warmup_epochs=4", "search.grace_period=2"])
    (warning,) = search_warnings("spk", config)
    assert "head.margin_warmup_epochs=4" in warning and "search.grace_period=5" in warning
    config = load_config("seg", overrides=["lr_schedule.name=cosine", "lr_schedule.warmup_epochs=2",
                                           "search.grace_period=1"])
    assert "lr_schedule.warmup_epochs=2" in search_warnings("seg", config)[0]
    assert search_warnings("spk", load_config("spk", overrides=[
        "head.margin_warmup_epochs=4", "search.trial_scheduler=fifo", "search.grace_period=2"])) == []


def test_random_search_is_seeded_by_the_trainer_seed():
    from ray import tune

    from dist_spk.tune.runner import _search_algorithm
    from dist_spk.tune.space import to_param_space

    tune.register_trainable("seeded_search_driver", lambda config: None)
    params = parse_space({"optim.lr": {"loguniform": [1e-4, 1e-2]}, "head.margin": {"grid": [0.1, 0.3]}}, "spk")

    def sampled(seed: int) -> list[dict]:
        config = load_config("spk", overrides=[f"trainer.seed={seed}"])
        generator = _search_algorithm(config, params, "eer", concurrent=8)
        generator.add_configurations({"search": {"run": "seeded_search_driver", "config": to_param_space(params),
                                                 "num_samples": 3}})
        return [generator.next_trial().config for _ in range(6)]  # 3 samples x 2 grid values

    first = sampled(0)
    assert first == sampled(0)
    assert [trial["optim.lr"] for trial in first] != [trial["optim.lr"] for trial in sampled(1)]
    assert sorted(trial["head.margin"] for trial in first) == [0.1] * 3 + [0.3] * 3


def test_wandb_forms_are_read_as_wandbs_engine_reads_them():
    params = {p.key: p for p in parse_space({"parameters": {
        "model.num_blocks": {"min": 2, "max": 6},  # int bounds, no distribution: int_uniform
        "optim.lr": {"min": 1e-4, "max": 1e-2},  # float bounds: uniform
        "head.margin": {"distribution": "q_uniform", "min": 0.1, "max": 0.4},  # q defaults to 1
        "head.scale": {"distribution": "normal"},  # mu 0, sigma 1
        "optim.weight_decay": {"distribution": "inv_log_uniform_values", "min": 1e-5, "max": 1e-3},
        "optim.name": {"values": ["adam", "nadam"], "probabilities": [0.25, 0.75]},
    }}, "spk")}
    assert (params["model.num_blocks"].kind, params["model.num_blocks"].args) == ("randint", (2, 6))
    assert (params["optim.lr"].kind, params["optim.lr"].args) == ("uniform", (1e-4, 1e-2))
    assert params["head.margin"].args == (0.1, 0.4, 1.0) and params["head.scale"].args == (0.0, 1.0)
    assert params["optim.weight_decay"].kind == "loguniform"
    domain = params["optim.name"].to_tune()
    draws = [domain.sample() for _ in range(2000)]
    assert 0.70 < draws.count("nadam") / len(draws) < 0.80  # the probabilities hold
    assert params["optim.name"].to_wandb() == {"values": ["adam", "nadam"], "probabilities": [0.25, 0.75]}


@pytest.mark.parametrize(("document", "message"), [
    ({"optim.lr": {"distribution": "log_normal", "mu": 0, "sigma": 1}}, "distribution 'log_normal' is W&B's"),
    ({"optim.name": {"values": ["adam", "nadam"], "probabilities": [0.5, 0.6]}}, "must sum to 1"),
    ({"optim.name": {"values": ["adam", "nadam"], "probabilities": [1.0]}}, "one number >= 0 per value"),
])
def test_unsupported_or_broken_wandb_forms_are_one_error_naming_the_key(document, message):
    with pytest.raises(ConfigError, match=message) as err:
        parse_space({"parameters": document}, "spk", source="sweep.yaml")
    assert f"key '{next(iter(document))}'" in str(err.value)


def test_a_sweep_files_method_metric_and_early_terminate_drive_the_search():
    from dist_spk.tune.space import grid_of, sweep_overrides

    document = {"method": "bayes", "metric": {"name": "eer", "goal": "minimize"},
                "early_terminate": {"type": "hyperband", "min_iter": 3, "eta": 2}}
    overrides = sweep_overrides(document, objective="eer")
    config = load_config("spk", overrides=overrides)
    assert config.search.sampler == "optuna"  # bayes is TPE
    assert (config.search.trial_scheduler, config.search.grace_period, config.search.reduction_factor) == ("asha", 3, 2)
    with pytest.raises(ConfigError, match="rank trials by 'eer'"):
        sweep_overrides({"metric": {"name": "accuracy", "goal": "maximize"}}, objective="eer")
    with pytest.raises(ConfigError, match="method 'hyperband'"):
        sweep_overrides({"method": "hyperband"}, objective="eer")
    with pytest.raises(ConfigError, match="max_iter"):
        sweep_overrides({"early_terminate": {"type": "hyperband", "max_iter": 27, "s": 2}}, objective="eer")
    grid = {"method": "grid", "parameters": {"optim.name": {"values": ["adam", "nadam"]},
                                             "model.num_blocks": {"min": 2, "max": 4},
                                             "head.margin": {"distribution": "q_uniform", "min": 0.1, "max": 0.3,
                                                             "q": 0.1}}}
    gridded = {p.key: p for p in grid_of(parse_space(grid, "spk"), grid)}
    assert {p.kind for p in gridded.values()} == {"grid"}
    assert gridded["model.num_blocks"].args == ((2, 3, 4),) and gridded["head.margin"].args == ((0.1, 0.2, 0.3),)
    with pytest.raises(ConfigError, match="continuous"):
        doc = {"method": "grid", "parameters": {"optim.lr": {"min": 1e-4, "max": 1e-2}}}
        grid_of(parse_space(doc, "spk"), doc)


def test_old_key_names_in_a_space_are_read_under_the_new_ones(capsys):
    params = parse_space({"parameters": {"scheduler.name": {"values": ["none", "cosine"]}},
                          "variants": [{"name": "fifo_like", "search.scheduler": "fifo"}]}, "seg", source="old.yaml")
    assert [p.key for p in params] == ["lr_schedule.name", "variant"]
    assert variant_list(params) == [{"name": "fifo_like", "search.trial_scheduler": "fifo"}]
    assert "'scheduler.name' is now 'lr_schedule.name' (old.yaml)" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="'scheduler.name' and 'lr_schedule.name' are the same key"):
        parse_space({"scheduler.name": {"value": "none"}, "lr_schedule.name": {"value": "cosine"}}, "seg")
