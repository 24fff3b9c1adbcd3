"""Start-up stamps: the driver's launch, the worker's stages, the first step."""

from __future__ import annotations

import pytest

from dist_spk.runs import startup


def test_breakdown_splits_launch_to_first_step_into_the_stages():
    stamps = {"launched": 100.0, "entered": 109.0, "imported": 116.5, "built": 119.0, "first_step": 127.25}
    seconds = startup.breakdown(stamps)
    assert seconds == {"worker group": 9.0, "imports": 7.5, "data + model": 2.5, "trainer": 8.25, "total": 27.25}
    line = startup.describe(seconds)
    assert line.startswith("[startup] 27.2 s to the first step: worker group 9.0 s, imports 7.5 s")


def test_missing_stamps_leave_their_stages_out():
    assert startup.breakdown({"imported": 1.0, "built": 3.0}) == {"data + model": 2.0}


def test_stamps_keep_the_first_time_and_the_driver_stamp_is_a_copy():
    payload = {"task": "spk"}
    stamped = startup.launched(payload)
    assert startup.KEY not in payload and stamped[startup.KEY]["launched"] > 0
    startup.stamp(stamped, "first_step")
    first = stamped[startup.KEY]["first_step"]
    startup.stamp(stamped, "first_step")  # every batch calls it: only the first counts
    assert stamped[startup.KEY]["first_step"] == first
    with pytest.raises(ValueError, match="unknown start-up mark"):
        startup.stamp(stamped, "launched")


def test_a_restarted_worker_group_reports_stages_but_no_total():
    payload = startup.launched({"task": "seg"})
    for mark in ("entered", "imported", "built", "first_step"):
        startup.stamp(payload, mark)
    startup.forget_launch(payload)
    seconds = startup.breakdown(payload[startup.KEY])
    assert "total" not in seconds and "worker group" not in seconds and "imports" in seconds
