"""Run by tests/test_train_distributed.py under ``torchrun --nproc_per_node 2``: train, then dump this rank's summary.

Usage: python -m torch.distributed.run --nproc_per_node 2 tests/_train_dist_worker.py OUT_JSON_PREFIX key=value ...
"""

import json
import os
import sys

from dreamtext.config import load_config
from dreamtext.train.trainer import train

if __name__ == "__main__":
    prefix, overrides = sys.argv[1], sys.argv[2:]
    summary = train(load_config("test", overrides=overrides), progress=False)
    rank = int(os.environ.get("RANK", "0"))
    with open(f"{prefix}.rank{rank}.json", "w") as f:
        json.dump(summary, f)
