"""Ray job: search segmentation fine-tuning hyper-parameters (`dist-spk tune seg`).

Submitted to a running cluster (see the README, "Run on a cluster")::

    ray job submit --working-dir . --runtime-env ray_jobs/runtime_env.yaml -- \
        python ray_jobs/tune_segmentation.py --help

Takes exactly the flags of `dist-spk tune seg`. `ray job submit` sets RAY_ADDRESS, so the job joins
the cluster it was submitted to; run by hand without it, it starts a local Ray (the test mode).
To log online (and to start from a gated hub model), the cluster's owner logs the head node in once (`wandb login`,
`hf auth login`; on Kubernetes a Secret in the head pod's environment): never pass a credential as job metadata or in
the runtime env, where Ray shows or logs it (README, "Secrets"). A job whose metadata holds one is refused.
"""

import sys

from dist_spk.cli import main

if __name__ == "__main__":
    main(["tune", "seg", *sys.argv[1:]], prog_name="tune_segmentation.py", job=True)
