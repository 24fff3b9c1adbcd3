"""The console: library internals into log files, Ray's worker output filed by trial, the live view's events.

(A whole search's captured console is checked in tests/ray/test_tune_search.py.)
"""

from __future__ import annotations

import io
import logging
import warnings
from types import SimpleNamespace

import pytest
from rich.console import Console

from dist_spk.console import VERBOSE_VAR, Stages, internals_to
from dist_spk.launch.worker_logs import WORKERS_LOG, WorkerOutput, trial_log
from dist_spk.tune.live_view import SearchView, asha_rungs

pytestmark = pytest.mark.ray  # imports Ray's library (tests/unit stays Ray-free); starts no cluster


def test_library_loggers_and_warnings_go_to_the_file_not_the_console(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(VERBOSE_VAR, raising=False)
    ray_logger = logging.getLogger("ray.tune")
    before = (list(logging.getLogger("ray").handlers), list(logging.getLogger().handlers))
    with internals_to(tmp_path / "logs" / "driver.log") as log:
        ray_logger.warning("Wrote the latest version of all result files")
        logging.getLogger("lightning.pytorch.utilities.rank_zero").info("GPU available: False, used: False")
        warnings.warn("Mean of empty slice", RuntimeWarning, stacklevel=1)
        print("ours")
    captured = capsys.readouterr()
    assert captured.out == "ours\n" and captured.err == ""
    text = log.path.read_text()
    assert "Wrote the latest version" in text and "GPU available" in text and "Mean of empty slice" in text
    # everything as it was
    assert (list(logging.getLogger("ray").handlers), list(logging.getLogger().handlers)) == before
    with pytest.warns(RuntimeWarning):
        warnings.warn("shown again", RuntimeWarning, stacklevel=1)


def test_verbose_keeps_the_internals_on_the_console_too(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(VERBOSE_VAR, "1")
    with internals_to(tmp_path / "driver.log") as log:
        logging.getLogger("pyannote.audio").warning("a pyannote message")
    assert "a pyannote message" in capsys.readouterr().err
    assert "a pyannote message" in log.path.read_text()


def test_a_deferred_log_holds_its_records_and_writes_no_folder_until_opened(tmp_path, monkeypatch):
    monkeypatch.delenv(VERBOSE_VAR, raising=False)
    with internals_to(tmp_path / "exp" / "logs" / "driver.log", deferred=True) as log:
        logging.getLogger("ray").info("Started a local Ray instance")
    assert not (tmp_path / "exp").exists()  # refused before it opened: nothing written
    with internals_to(tmp_path / "exp" / "logs" / "driver.log", deferred=True) as log:
        logging.getLogger("ray").info("Started a local Ray instance")
        log.open()
        logging.getLogger("ray").info("after")
    assert log.path.read_text().count("INFO ray: ") == 2


def batch(pid: int, *lines: str, name: str = "RayTrainWorker") -> dict:
    return {"lines": list(lines), "pid": pid, "ip": "10.0.0.2", "actor_name": name, "is_err": False}


def test_worker_output_is_filed_by_trial_unfolded_and_kept_off_the_console(tmp_path, capsys):
    output = WorkerOutput(tmp_path, echo=False)
    output(batch(11, "Setting up process group for: env:// [rank=0, world_size=1]"))  # before it names its trial
    output(batch(11, "[trial a_00000] rank 0 of 1", "[trial a_00000] [epoch 0] loss=6.1  eer=0.41  (3.1 s)"))
    output(batch(12, "[trial a_00001] rank 0 of 1"))
    output(batch(11, "[trial a_00000] [epoch 1] loss=5.2  eer=0.39  (3.0 s)"))
    output(batch(12, "Checkpoint successfully created at: /x/checkpoint_000000"))
    output(batch(13, "Requesting resources: {'CPU': 1.0} * 1", name="TrainController"))
    output.close()
    assert capsys.readouterr() == ("", "")
    everything = (tmp_path / WORKERS_LOG).read_text().splitlines()
    assert len(everything) == 7  # every line, none folded ("[repeated 2x across cluster]" is Ray's printing)
    assert everything[0] == ("(RayTrainWorker pid=11, ip=10.0.0.2) Setting up process group for: env:// "
                             "[rank=0, world_size=1]")
    assert everything[3].startswith("(RayTrainWorker pid=12, ip=10.0.0.2, trial a_00001) ")
    first = trial_log(tmp_path, "a_00000").read_text().splitlines()
    assert [line.split(") ", 1)[1] for line in first] == [
        "[trial a_00000] rank 0 of 1", "[trial a_00000] [epoch 0] loss=6.1  eer=0.41  (3.1 s)",
        "[trial a_00000] [epoch 1] loss=5.2  eer=0.39  (3.0 s)"]
    assert "Checkpoint successfully created" in trial_log(tmp_path, "a_00001").read_text()


def test_verbose_worker_output_names_the_trial(tmp_path, capsys):
    output = WorkerOutput(tmp_path, echo=True)
    output(batch(11, "[trial a_00000] rank 0 of 1", "INFO: GPU available: False, used: False"))
    output.close()
    assert capsys.readouterr().out.splitlines()[1] == ("(RayTrainWorker pid=11, ip=10.0.0.2, trial a_00000) "
                                                       "INFO: GPU available: False, used: False")


def test_lines_arriving_after_the_search_keep_their_trial(tmp_path, capsys):
    """A reused trial process's last trial can print its last lines after Tune returned (seen on a loaded machine):
    they still name their trial, on the console (verbose), in workers.log and in the trial's own log."""
    from dist_spk.launch.worker_logs import _LateLines

    output = WorkerOutput(tmp_path, echo=True)
    output(batch(11, "[trial a_00000] [epoch 0] loss=6.1", name="trial_driver"))
    output.close()
    late = _LateLines(output)
    late(batch(11, "[trial a_00001] [epoch 1] loss=5.0", "Lightning's last words", name="trial_driver"))
    expected = ["(trial_driver pid=11, ip=10.0.0.2, trial a_00001) [trial a_00001] [epoch 1] loss=5.0",
                "(trial_driver pid=11, ip=10.0.0.2, trial a_00001) Lightning's last words"]
    assert capsys.readouterr().out.splitlines()[1:] == expected
    assert (tmp_path / WORKERS_LOG).read_text().splitlines()[1:] == expected
    assert "[epoch 1] loss=5.0" in trial_log(tmp_path, "a_00001").read_text()
    output(batch(11, "[trial a_00001] after the swap"))  # a batch racing the handler swap goes the same way
    last = (tmp_path / WORKERS_LOG).read_text().splitlines()[-1]
    assert last.endswith("trial a_00001) [trial a_00001] after the swap")


def test_rungs_are_ashas_own():
    from ray.tune.schedulers import ASHAScheduler

    for grace, factor, max_t in ((1, 2, 3), (1, 2, 4), (1, 2, 10), (3, 3, 10), (2, 2, 12), (3, 3, 40), (4, 2, 4)):
        asha = ASHAScheduler(time_attr="training_iteration", metric="x", mode="min", max_t=max_t,
                             grace_period=grace, reduction_factor=factor)
        theirs = sorted(milestone for milestone, _ in asha._brackets[0]._rungs if milestone < max_t)
        assert list(asha_rungs(grace_period=grace, reduction_factor=factor, max_t=max_t)) == theirs


class FakeTrial(SimpleNamespace):
    def get_error(self):
        return getattr(self, "error", None)


def test_plain_view_prints_one_line_per_trial_event(tmp_path, capsys):
    view = SearchView(objective="eer", max_epochs=3, total_trials=2, params=["optim.lr", "head.margin"],
                      scheduler="asha", rungs=(1,), logs_dir=tmp_path, live=False, status_seconds=3600)
    a = FakeTrial(trial_id="t_00000", config={"optim.lr": 0.004, "head.margin": 0.2})
    b = FakeTrial(trial_id="t_00001", config={"optim.lr": 0.001, "head.margin": 0.3},
                  error="Traceback (most recent call last):\n  ...\nRuntimeError: CUDA out of memory")
    view.on_step_end(0, [a, b])
    view.on_trial_start(0, [a, b], a)
    view.on_trial_start(0, [a, b], b)
    view.on_trial_result(1, [a, b], a, {"training_iteration": 1, "eer": 0.40})
    view.on_trial_result(1, [a, b], b, {"training_iteration": 1, "eer": 0.45})
    view.on_trial_result(2, [a, b], a, {"training_iteration": 2, "eer": 0.30})
    view.on_trial_error(2, [a, b], b)
    view.on_trial_result(3, [a, b], a, {"training_iteration": 3, "eer": 0.35})
    view.on_trial_complete(3, [a, b], a)
    lines = capsys.readouterr().out.splitlines()
    assert lines[:7] == [
        "[search] t_00000 started (1/2): lr=0.004 margin=0.2",
        "[search] t_00001 started (2/2): lr=0.001 margin=0.3",
        "[search] t_00000 epoch 1/3: eer 0.4000 (best 0.4000)",
        "[search] t_00001 epoch 1/3: eer 0.4500 (best 0.4500)",
        "[search] t_00000 epoch 2/3: eer 0.3000 (best 0.3000); promoted by ASHA at epoch 1",
        f"[search] t_00001 FAILED after 1/3 epochs; its log: {tmp_path / 'trial-t_00001.log'}",
        "Traceback (most recent call last):",
    ]
    assert lines[7:9] == ["  ...", "RuntimeError: CUDA out of memory"]  # the error in full
    assert lines[-1].startswith("[search] t_00000 completed after 3/3 epochs (")
    assert lines[-1].endswith("best eer 0.3000 at epoch 2; best so far")
    assert view.status_line().startswith("[search] 2/2 trials done (0 stopped early, 1 failed), 0 running, 0 pending;"
                                         " best eer 0.3000 (t_00000)")


def test_a_trial_ended_before_its_last_epoch_was_stopped_early():
    view = SearchView(objective="eer", max_epochs=4, total_trials=1, params=[], scheduler="asha", live=False)
    trial = FakeTrial(trial_id="t_00000", config={})
    out = io.StringIO()
    from contextlib import redirect_stdout

    with redirect_stdout(out):
        view.on_trial_start(0, [trial], trial)
        view.on_trial_result(1, [trial], trial, {"training_iteration": 1, "eer": 0.5})
        view.on_trial_complete(1, [trial], trial)
    assert "[search] t_00000 stopped early by ASHA after 1/4 epochs" in out.getvalue()


def test_live_table_highlights_the_best_trial():
    view = SearchView(objective="eer", max_epochs=2, total_trials=3, params=["optim.lr"], live=True)
    trials = [FakeTrial(trial_id=f"t_0000{i}", config={"optim.lr": 10.0 ** -i}) for i in range(3)]
    view.on_step_end(0, trials)
    view.close()  # the view started drawing on the first step: stopped here, the test draws it itself
    view.live_mode = False
    with __import__("contextlib").redirect_stdout(io.StringIO()):
        for trial, eer in zip(trials[:2], (0.4, 0.2), strict=True):
            view.on_trial_start(0, trials, trial)
            view.on_trial_result(1, trials, trial, {"training_iteration": 1, "eer": eer})
    console = Console(file=io.StringIO(), width=120, record=True, color_system="truecolor")
    console.print(view._render())
    text = console.export_text(clear=False)
    assert "t_00001   running" in text and "0.2000" in text and "0/3 trials done, 2 running" in text
    assert "t_00002   pending" in text
    rows = {trial.trial_id: line for line in console.export_text(styles=True).splitlines() for trial in trials
            if trial.trial_id in line}
    assert "\x1b[1;32m" in rows["t_00001"] and "\x1b[1;32m" not in rows["t_00000"]  # bold green: the best


def test_stages_number_and_time_each_stage_and_close_with_a_summary(capsys):
    stages = Stages("demo", 2)
    with stages.stage("first"):
        pass
    with stages.stage("second"):
        print("inside")
    stages.summary("demo done", figures=[("speaker EER", "1.3%", "50.0% (chance)")],
                   produced=[("best models", "demo/tune-spk/best")], next_steps=["dist-spk report demo/tune-spk"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[:5] == ["[demo 1/2] first", "[demo 1/2] done in 0 s", "[demo 2/2] second", "inside",
                         "[demo 2/2] done in 0 s"]
    text = "\n".join(lines)
    assert "speaker EER" in text and "50.0% (chance)" in text and "trivial baseline" in text
    assert "best models" in text and "next: dist-spk report demo/tune-spk" in text
