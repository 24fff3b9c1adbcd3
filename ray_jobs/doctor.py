"""Ray job: check the cluster before a search (`dist-spk doctor`), with the secrets the search would get.

    ray job submit --working-dir . --runtime-env ray_jobs/runtime_env.yaml \
        --metadata-json "{\"wandb_api_key\": \"$WANDB_API_KEY\", \"hf_token\": \"$HF_TOKEN\"}" -- \
        python ray_jobs/doctor.py --out /mnt/efs/exp

Takes exactly the flags of `dist-spk doctor`; exits 1 (the job FAILS) on any blocker.
"""

import sys

from dist_spk.cli import main
from dist_spk.launch.secrets import adopt_submitted_secrets

if __name__ == "__main__":
    adopt_submitted_secrets()  # W&B key and hub token, as a search would get them (README)
    main(["doctor", *sys.argv[1:]], prog_name="doctor.py")
