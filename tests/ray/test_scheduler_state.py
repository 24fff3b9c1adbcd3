"""ASHA's and PBT's state survive ``--resume`` through Tune's callback state (tune/runner.py); no Ray cluster needed.

These touch Ray's private scheduler attributes (PBT's ``_trial_state`` and counters, ASHA's pickled ``__dict__``):
an upgrade that renames them fails here, not silently in a resumed search.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from dist_spk.tune.runner import STOPPED_FILE, _last_epoch_pbt, _resumable_asha, scheduler_state

pytestmark = pytest.mark.ray


class FakeTrial:
    """What the schedulers read of a Tune trial (hashable by identity, as Tune's are)."""

    def __init__(self, trial_id: str):
        self.trial_id = self.experiment_tag = trial_id
        self.config = {"optim.lr": 1e-3}
        keep = SimpleNamespace(num_to_keep=4, checkpoint_score_attribute=None)
        self.run_metadata = SimpleNamespace(checkpoint_manager=SimpleNamespace(checkpoint_config=keep))


def fake_trial(trial_id: str) -> FakeTrial:
    return FakeTrial(trial_id)


CONTROLLER = SimpleNamespace(search_alg=None)


def test_asha_rungs_and_stopped_trials_are_restored_into_a_fresh_scheduler(tmp_path):
    def asha():
        return _resumable_asha(time_attr="training_iteration", metric="eer", mode="min", max_t=4, grace_period=1,
                               reduction_factor=2)

    before = asha()
    trials = [fake_trial(f"t{i}") for i in range(3)]
    decisions = []
    for trial, value in zip(trials, (0.3, 0.2, 0.5), strict=True):
        before.on_trial_add(CONTROLLER, trial)
        decisions.append(before.on_trial_result(CONTROLLER, trial, {"training_iteration": 1, "eer": value}))
    state = scheduler_state(before).get_state()

    assert decisions == ["CONTINUE", "CONTINUE", "STOP"]
    after = asha()
    scheduler_state(after, exp=str(tmp_path)).set_state(state)
    # t2, stopped before the interruption, is marked so that its driver does not train it again if Tune resumes it
    assert json.loads((tmp_path / "trials" / "t2" / STOPPED_FILE).read_text()) == {"stopped_by": "ResumableASHA"}
    assert not (tmp_path / "trials" / "t0" / STOPPED_FILE).exists()
    late = fake_trial("t3")
    before.on_trial_add(CONTROLLER, late)
    after.on_trial_add(CONTROLLER, late)
    again = asha()  # without the state: an empty rung promotes whatever reports first
    again.on_trial_add(CONTROLLER, late)
    result = {"training_iteration": 1, "eer": 0.45}
    assert after.on_trial_result(CONTROLLER, late, result) == before.on_trial_result(CONTROLLER, late, result) == "STOP"
    assert again.on_trial_result(CONTROLLER, late, result) == "CONTINUE"


def test_pbt_trial_states_and_counters_are_restored_by_trial_id():
    pbt = _last_epoch_pbt()

    def scheduler():
        return pbt(last_epoch=3, time_attr="training_iteration", metric="eer", mode="min", perturbation_interval=1,
                   hyperparam_mutations={"optim.lr": [1e-4, 1e-3]})

    before = scheduler()
    trial = fake_trial("t0")
    before.on_trial_add(CONTROLLER, trial)
    before._trial_state[trial].last_score = -0.25
    before._trial_state[trial].last_perturbation_time = 2
    before._num_perturbations = 3
    state = scheduler_state(before).get_state()

    after = scheduler()
    scheduler_state(after).set_state(state)
    restored = fake_trial("t0")  # Tune restores a new Trial object with the same id
    after.on_trial_add(CONTROLLER, restored)
    assert after._trial_state[restored].last_score == -0.25
    assert after._trial_state[restored].last_perturbation_time == 2
    assert after._num_perturbations == 3
    newcomer = fake_trial("t9")
    after.on_trial_add(CONTROLLER, newcomer)
    assert after._trial_state[newcomer].last_score is None
