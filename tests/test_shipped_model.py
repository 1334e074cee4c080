"""The model shipped inside the package: present, small, self-describing, and it edits."""

import json

import numpy as np

from dreamtext.pipeline import SHIPPED_MODEL_DIR, DreamTextPipeline


def test_shipped_model_files_are_small_fp16_and_carry_their_config():
    from safetensors import safe_open

    weights = SHIPPED_MODEL_DIR / "model.safetensors"
    assert weights.is_file(), "dreamtext/assets/model/ must ship with the package"
    assert weights.stat().st_size < 40 * 2**20
    with safe_open(weights, "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} <= {"F16", "I64", "BOOL"}
    cfg = json.loads((SHIPPED_MODEL_DIR / "config.json").read_text())
    assert cfg["preset"] == "tiny" and cfg["image_size"] == [32, 128]


def test_shipped_model_loads_without_arguments_and_edits():
    from PIL import Image

    from dreamtext.commands.demo import load_samples

    pipe = DreamTextPipeline.from_pretrained()
    spec = next(s for s in load_samples() if s["name"] == "coffee")
    result = pipe.edit(spec["image"], spec["regions"], spec["texts"], steps=2, seed=0)
    src = np.asarray(Image.open(spec["image"]).convert("RGB"))
    out = np.asarray(result.image)
    assert out.shape == src.shape
    assert (out != src).any()  # the region was repainted
    assert [len(r.text) for r in result.regions] == [len(t) for t in spec["texts"]]
