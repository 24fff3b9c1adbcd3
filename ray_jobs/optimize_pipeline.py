"""Ray job: tune the diarization pipeline on dev and score it on test (`dist-spk evaluate pipeline`).

Submitted to a running cluster (see the README, "Run on a cluster")::

    ray job submit --working-dir . --runtime-env ray_jobs/runtime_env.yaml --entrypoint-num-gpus 1 -- \\
        python ray_jobs/optimize_pipeline.py --segmentation /mnt/efs/exp/seg/best \\
        --embedding /mnt/efs/exp/spk/best --data /mnt/efs/ami --tune-on dev --split test \\
        --out /mnt/efs/exp/pipeline/report.json --export /mnt/efs/exp/pipeline/ship

Takes exactly the flags of `dist-spk evaluate pipeline`. Tuning runs in the job's own process (the
pipeline caches segmentations and embeddings, so each iteration only re-clusters). With
--entrypoint-num-gpus 1 Ray gives the job a GPU (CUDA_VISIBLE_DEVICES), and `--device auto`, the default, runs both
models on it; --export writes the tuned pipeline as a folder pyannote loads (`dist-spk diarize --pipeline DIR`).
"""

import sys

from dist_spk.cli import main

if __name__ == "__main__":
    main(["evaluate", "pipeline", *sys.argv[1:]], prog_name="optimize_pipeline.py", job=True)
