"""Suite-wide settings.

One intra-op thread: the test models are tiny, and on a small shared CPU two
OpenMP threads spin against other processes and make every step several times
slower (measured: docs/model.md, docs/training.md).
"""

import torch

torch.set_num_threads(1)
