"""Every private upstream name dist_spk touches, pinned: an upgrade that renames or re-signs one fails here, not
silently in a search. Each has a fallback or a reason in the code that uses it (named in each test)."""

from __future__ import annotations

import inspect

import pytest

pytestmark = pytest.mark.ray  # imports Ray's library; starts no cluster


def parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_pbt_checkpoint_or_exploit_hook():
    """tune/runner.py::_last_epoch_pbt overrides it (a finished trial stays a donor) and reads ``_trial_state``."""
    from ray.tune.schedulers import PopulationBasedTraining

    assert parameters(PopulationBasedTraining._checkpoint_or_exploit) == [
        "self", "trial", "tune_controller", "upper_quantile", "lower_quantile"]
    pbt = PopulationBasedTraining(time_attr="training_iteration", metric="x", mode="min",
                                  hyperparam_mutations={"lr": [1, 2]})
    assert isinstance(pbt._trial_state, dict)
    assert {"_num_checkpoints", "_num_perturbations", "_next_perturbation_sync"} <= set(vars(pbt))


def test_function_trainable_session_stop_event():
    """tune/driver.py::_stop_requested polls the trial session's ``stop_event`` (in-process trials)."""
    from ray.train._internal import session

    assert callable(session.get_session)
    source = inspect.getsource(session._TrainSession)
    assert "self.stop_event = threading.Event()" in source and "self.stop_event.set()" in source


def test_driver_stdstream_dispatcher_and_raylet_printer():
    """launch/worker_logs.py replaces the handler Ray's driver registers for worker output, and the function the
    raylet's messages are printed through."""
    import ray._private.worker as ray_worker
    from ray._private.ray_logging import global_worker_stdstream_dispatcher as dispatcher

    from dist_spk.launch.worker_logs import RAY_HANDLER

    assert parameters(dispatcher.add_handler) == ["name", "handler"]
    assert parameters(dispatcher.remove_handler) == ["name"]
    assert f'"{RAY_HANDLER}"' in inspect.getsource(ray_worker.connect)  # the name Ray registers its printer under
    assert parameters(ray_worker.print_to_stdstream)[:2] == ["data", "ignore_prefix"]


def test_asha_rungs_read_by_the_live_view_test():
    """tests/ray/test_console.py compares our rung formula with ``ASHAScheduler._brackets[0]._rungs``."""
    from ray.tune.schedulers import ASHAScheduler

    asha = ASHAScheduler(time_attr="training_iteration", metric="x", mode="min", max_t=16, grace_period=3,
                         reduction_factor=2)
    assert sorted(milestone for milestone, _ in asha._brackets[0]._rungs) == [3, 6, 12]
