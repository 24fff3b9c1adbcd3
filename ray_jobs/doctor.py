"""Ray job: check the cluster before a search (`dist-spk doctor`), with the credentials the search would find.

    ray job submit --working-dir . --runtime-env ray_jobs/runtime_env.yaml -- \
        python ray_jobs/doctor.py --out /mnt/efs/exp

The W&B and hub credentials it checks are the cluster's (the head node's logins or environment; README, "Secrets"),
never the job's metadata.

Takes exactly the flags of `dist-spk doctor`; exits 1 (the job FAILS) on any blocker.
"""

import sys

from dist_spk.cli import main

if __name__ == "__main__":
    main(["doctor", *sys.argv[1:]], prog_name="doctor.py", job=True)
