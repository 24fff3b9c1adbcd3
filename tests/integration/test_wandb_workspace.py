"""The experiment's W&B workspace, saved by W&B's own client (wandb-workspaces over wandb.Api's GraphQL) to a
server on loopback that answers as W&B's does: the view it receives is what a user would open."""

from __future__ import annotations

import json

import pytest

from tests.wandb_server import SWEEP_ID, start

KEY = "k" * 40


@pytest.fixture
def wandb_server(monkeypatch):
    server, seen = start()
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("WANDB_API_KEY", KEY)
    yield seen
    server.shutdown()
    server.server_close()


def _panels(spec: dict) -> dict[str, list[dict]]:
    return {section["name"]: section["panels"] for section in spec["section"]["panelBankConfig"]["sections"]}


def test_experiment_workspace_is_saved_with_the_search_panels(wandb_server):
    from dist_spk.tune.wandb_workspace import per_epoch_metrics, save_workspace

    history = [{"epoch": 0, "eer": 0.3, "loss/val": 2.0, "accuracy/val": 0.5, "loss/train": 2.5, "lr": 1e-3,
                "epoch_seconds": 3.0}]
    url = save_workspace(entity="speech-team", project="dist-spk", group="exp1-20261203-abc123", objective="eer",
                         params=["optim.lr", "head.margin"], metrics=per_epoch_metrics(history, "eer"))
    assert url.endswith("/speech-team/dist-spk?nw=dist-spk")
    (upsert,) = [r for r in wandb_server if "UpsertView2" in r.get("query", "")]
    assert upsert["auth"] and "Basic" in upsert["auth"]  # the key went to W&B's server, nowhere else
    variables = upsert["variables"]
    assert (variables["entityName"], variables["projectName"]) == ("speech-team", "dist-spk")
    assert variables["displayName"] == "dist-spk exp1-20261203-abc123"
    spec = json.loads(variables["spec"])
    panels = _panels(spec)
    assert list(panels) == ["Search", "Learning curves", "Worker"]
    parallel, importance, scatter = panels["Search"]
    assert parallel["viewType"] == "Parallel Coordinates Plot"
    columns = [c["accessor"] for c in parallel["config"]["columns"]]
    assert len(columns) == 3 and columns[-1] == "summary:best/eer"
    assert importance["viewType"] == "Parameter Importance" and importance["config"]["targetKey"] == "best/eer"
    curves = {p["config"]["chartTitle"]: p["config"] for p in panels["Learning curves"]}
    assert list(curves)[:3] == ["eer per epoch", "loss/val per epoch", "accuracy/val per epoch"]
    assert all(c["xAxis"] == "epoch" for c in curves.values()) and "loss/train per epoch" not in curves
    assert curves["training loss per step"]["metrics"] == ["train_step/loss"]
    worker = [p["config"]["metrics"] for p in panels["Worker"]]
    assert ["worker/gpu_utilization_percent"] in worker
    # only this experiment's trial runs, best first
    runset = json.dumps(spec)
    assert "exp1-20261203-abc123" in runset and "best/eer" in runset


def test_an_online_search_registers_its_sweep_once(wandb_server, tmp_path):
    """The search as a sweep W&B does not schedule (Ray Tune is the controller), created through wandb.sweep;
    the id is kept for --resume."""
    import yaml

    from dist_spk.tune.space import parse_space, to_wandb_sweep
    from dist_spk.tune.wandb_logging import register_sweep

    params = parse_space({"optim.lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-2}}, "spk")
    sweep = to_wandb_sweep(params, metric="eer", method="random")
    assert register_sweep(tmp_path, sweep, project="dist-spk") == SWEEP_ID
    assert register_sweep(tmp_path, sweep, project="dist-spk") == SWEEP_ID  # --resume: the same sweep
    (upsert,) = [r for r in wandb_server if "UpsertSweep" in r.get("query", "")]
    sent = yaml.safe_load(upsert["variables"]["config"])
    assert sent["controller"] == {"type": "local"} and sent["metric"] == {"name": "eer", "goal": "minimize"}
    assert upsert["variables"]["projectName"] == "dist-spk"
    assert json.loads((tmp_path / "wandb" / "experiment.json").read_text())["sweep_id"] == SWEEP_ID
