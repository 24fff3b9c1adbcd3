"""Full diarization with our two models (trained with the local presets): tuning, DER, RTTMs, the real sample."""

from __future__ import annotations

import json

import pytest
from pyannote.database.util import load_rttm

from dist_spk.pipeline.evaluate import SAMPLE, evaluate_pipeline, pipeline_files
from tests.conftest import run_cli

pytestmark = pytest.mark.slow


def test_tuning_improves_the_objective_on_dev(seg_run, spk_run, small_corpus):
    from dist_spk.pipeline.diarization import build_pipeline, tune_pipeline

    pipeline = build_pipeline(seg_run[0], spk_run[0])
    # start from a poor point (one cluster per few embeddings), so there is something to find
    start = {"segmentation": {"min_duration_off": 0.0}, "clustering": {"min_cluster_size": 1, "threshold": 0.2}}
    params, history = tune_pipeline(pipeline, pipeline_files(small_corpus / "diar", "dev"), iterations=20,
                                    start=start, show_progress=False)
    assert len(history) == 20
    assert all(later <= earlier for earlier, later in zip(history, history[1:], strict=False))
    assert history[-1] < history[0] - 0.05
    assert params["clustering"]["threshold"] != 0.2


def test_evaluate_reports_default_and_tuned_der_and_writes_an_rttm_per_file(seg_run, spk_run, small_corpus,
                                                                            tmp_path):
    report = evaluate_pipeline(seg_run[0], spk_run[0], small_corpus / "diar", split="test", tune_on="dev",
                               iterations=10, rttm_dir=tmp_path / "rttm")
    assert report["final"] == "tuned" and len(report["tuned"]["objective_history"]) == 10
    assert report["default"]["params"]["clustering"]["min_cluster_size"] == 12
    rows = report["tuned"]["files"]
    assert len(rows) == len(pipeline_files(small_corpus / "diar", "test"))  # every test file, one row each
    for row in rows:
        assert 0.0 <= row["collar_0.25"]["der"] <= row["collar_0"]["der"]
        hypothesis = load_rttm(tmp_path / "rttm" / f"{row['uri']}.rttm")[row["uri"]]
        assert len(hypothesis.labels()) == row["hypothesis_speakers"]


@pytest.mark.parametrize("clustering", ["hdbscan", "bisecting_kmeans"])
def test_other_clusterings_diarize_and_tune_their_own_parameters(seg_run, spk_run, small_corpus, clustering):
    report = evaluate_pipeline(seg_run[0], spk_run[0], small_corpus / "diar", split="test", tune_on="dev",
                               iterations=3, clustering=clustering)
    assert report["clustering"] == clustering
    expected = {"min_cluster_size"} if clustering == "hdbscan" else set()
    assert set(report["tuned"]["params"].get("clustering", {})) == expected
    for row in report["tuned"]["files"]:
        assert row["hypothesis_speakers"] >= 1 and row["collar_0"]["der"] >= 0.0


def test_cli_runs_on_pyannotes_real_sample_and_writes_json(seg_run, spk_run, tmp_path):
    out = tmp_path / "sample.json"
    result = run_cli("evaluate", "pipeline", "--segmentation", seg_run[0], "--embedding", spk_run[0],
                     "--data", SAMPLE, "--out", out, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads(out.read_text())
    (row,) = report["default"]["files"]
    assert row["uri"] == "sample" and row["speakers"] == 2 and row["scored_seconds"] == pytest.approx(30.0)
    assert (tmp_path / "sample_rttm" / "sample.rttm").is_file()
    assert "DER" in result.stdout


def test_bad_inputs_are_one_clear_error(spk_run, tmp_path):
    result = run_cli("evaluate", "pipeline", "--segmentation", spk_run[0], "--embedding", spk_run[0],
                     "--data", SAMPLE, "--out", tmp_path / "r.json")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "pyannote" in result.stderr or "segmentation" in result.stderr
    assert not (tmp_path / "r.json").exists()
    missing = run_cli("evaluate", "pipeline", "--segmentation", spk_run[0], "--embedding", spk_run[0],
                      "--data", tmp_path / "nowhere")
    assert missing.returncode == 2 and "no such dataset" in missing.stderr
