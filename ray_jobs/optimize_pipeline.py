"""Ray job: tune the diarization pipeline on dev and score it on test (`dist-spk evaluate pipeline`).

Submitted to a running cluster (see the README, "Run on a cluster")::

    ray job submit --working-dir . --runtime-env ray_jobs/runtime_env.yaml --entrypoint-num-gpus 1 -- \\
        python ray_jobs/optimize_pipeline.py --segmentation /mnt/efs/exp/seg/best \\
        --embedding /mnt/efs/exp/spk/best --data /mnt/efs/ami --tune-on dev --split test \\
        --out /mnt/efs/exp/pipeline/report.json

Takes exactly the flags of `dist-spk evaluate pipeline`. Tuning runs in the job's own process (the
pipeline caches segmentations and embeddings, so each iteration only re-clusters); ask for a GPU for
it with --entrypoint-num-gpus.
"""

import sys

from dist_spk.cli import main

if __name__ == "__main__":
    main(["evaluate", "pipeline", *sys.argv[1:]], prog_name="optimize_pipeline.py")
