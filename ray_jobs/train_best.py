"""Ray job: train a search's best config for longer, from scratch (`dist-spk train best EXP`).

Submitted to a running cluster (see the README, "Run on a cluster")::

    ray job submit --working-dir . --runtime-env ray_jobs/runtime_env.yaml -- \
        python ray_jobs/train_best.py --help

Takes exactly the flags of `dist-spk train best`. `ray job submit` sets RAY_ADDRESS, so the job joins
the cluster it was submitted to; run by hand without it, it starts a local Ray (the test mode).
"""

import sys

from dist_spk.cli import main

if __name__ == "__main__":
    main(["train", "best", *sys.argv[1:]], prog_name="train_best.py", job=True)
