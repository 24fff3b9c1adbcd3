"""Ray job: search segmentation fine-tuning hyper-parameters (`dist-spk tune seg`).

Submitted to a running cluster (see the README, "Run on a cluster")::

    ray job submit --working-dir . --runtime-env ray_jobs/runtime_env.yaml -- \
        python ray_jobs/tune_segmentation.py --help

Takes exactly the flags of `dist-spk tune seg`. `ray job submit` sets RAY_ADDRESS, so the job joins
the cluster it was submitted to; run by hand without it, it starts a local Ray (the test mode).
To log online (and to start from a gated hub model), pass your W&B key (and hub token) as job metadata, never
in the runtime env (Ray logs runtime envs)::

    ray job submit ... --metadata-json "{\"wandb_api_key\": \"$WANDB_API_KEY\", \"hf_token\": \"$HF_TOKEN\"}" \
        -- python ray_jobs/....py
"""

import sys

from dist_spk.cli import main
from dist_spk.launch.secrets import adopt_submitted_secrets

if __name__ == "__main__":
    adopt_submitted_secrets()  # W&B key and hub token, when the submitter passed them as job metadata (README)
    main(["tune", "seg", *sys.argv[1:]], prog_name="tune_segmentation.py")
