"""``dreamtext convert`` on scaled-down random checkpoints in the released DreamText / UDiffText layouts.

Every weight must arrive bit for bit, and the converted UNet, text encoder and VAE must compute what the
source modules compute (the diffusers modules the checkpoints were written from, and a copy of the release's
LabelEncoder). The error cases name the file, the keys and the shapes.
"""

import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent))
from _released_fixtures import (CONVERT_OVERRIDES, IMAGE, MAX_LEN, TEXT_DIM, ldm_vae_state,  # noqa: E402
                                released_state, source_label_encoder, source_unet, source_vae, write_bundle)

from dreamtext.charset import encode_batch  # noqa: E402
from dreamtext.cli import main  # noqa: E402
from dreamtext.edit.pipeline import DreamTextPipeline  # noqa: E402
from dreamtext.errors import CheckpointError  # noqa: E402
from dreamtext.model.convert_released import convert_release  # noqa: E402
from dreamtext.model.released_keys import RELEASED_CHARSET  # noqa: E402


@pytest.fixture(scope="module")
def sources():
    return source_unet(), source_label_encoder(), source_vae()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, sources):
    return write_bundle(tmp_path_factory.mktemp("release") / "DreamText", *sources)


@pytest.fixture(scope="module")
def converted(tmp_path_factory, bundle):
    out = tmp_path_factory.mktemp("converted") / "dreamtext-release"
    conv = convert_release(bundle, out, overrides=CONVERT_OVERRIDES)
    return out, conv


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_weight_arrives_bit_for_bit(converted, sources):
    out, _ = converted
    unet, encoder, vae = sources
    state = load_file(str(out / "model.safetensors"))
    for k, v in unet.state_dict().items():
        assert torch.equal(state["unet." + k], v), k
    for k, v in vae.state_dict().items():
        assert torch.equal(state["vae." + k], v), k
    src = encoder.state_dict()
    for k, v in src.items():
        if k.startswith("encoder.layers."):
            assert torch.equal(state["text_encoder.blocks." + k[len("encoder."):]], v), k
    # The embedding rows follow our character numbering: our row of "a" is the release's row of "a".
    from dreamtext.charset import CHARSET

    emb, theirs = state["text_encoder.embed.weight"], src["label_embedding.weight"]
    assert torch.equal(emb[0], theirs[0])  # padding
    for i, ch in enumerate(CHARSET):
        assert torch.equal(emb[i + 1], theirs[RELEASED_CHARSET.index(ch) + 1]), ch
    n_source = len(unet.state_dict()) + len(vae.state_dict()) + sum(k.startswith("encoder.layers.") for k in src) + 1
    fresh = [k for k in state if k.split(".")[1] in ("char_head", "pos_head", "text_proj", "visual", "image_proj",
                                                        "logit_scale")]
    assert len(state) == n_source + len(fresh)  # nothing else: no positions, no heads of the release
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors", "state.json"]


def test_converted_modules_compute_what_the_sources_compute(converted, sources):
    out, _ = converted
    unet, encoder, vae = sources
    pipe = DreamTextPipeline.from_pretrained(out)
    model, cfg = pipe.model, pipe.cfg
    g = torch.Generator().manual_seed(0)
    labels = ["Hello", "x9#Q", "ABCDEFGHIJKL", "a"]
    with torch.no_grad():
        # ψ: the same strings through each side's own tokenizer
        ours = model.text_encoder(torch.as_tensor(encode_batch(labels, MAX_LEN), dtype=torch.long))
        theirs = encoder(labels)
        assert ours.shape == (4, MAX_LEN, TEXT_DIM) and torch.allclose(ours, theirs, atol=1e-5)
        # the UNet, through the model's forward (our attention processors, no padding mask, as the release)
        z = torch.randn(4, 4, IMAGE // 8, IMAGE // 8, generator=g)
        cond = {"context": theirs, "context_mask": torch.ones(4, MAX_LEN, dtype=torch.bool),
                "mask": (torch.rand(4, 1, IMAGE // 8, IMAGE // 8, generator=g) > 0.5).float(),
                "masked": torch.randn(4, 4, IMAGE // 8, IMAGE // 8, generator=g)}
        t = torch.tensor([999, 500, 20, 1])
        eps = model(z, t, cond)
        ref = unet(torch.cat([z, cond["mask"], cond["masked"]], 1), t, encoder_hidden_states=theirs).sample
        assert eps.abs().max() > 0.01 and torch.allclose(eps, ref, atol=1e-5)
        # the VAE: encode (posterior mean × scaling factor) and decode
        x = torch.rand(2, 3, IMAGE, IMAGE, generator=g) * 2 - 1
        latent = model.encode_image(x)
        assert torch.allclose(latent, vae.encode(x).latent_dist.mean * 0.18215, atol=1e-5)
        assert torch.allclose(model.decode_latent(latent), vae.decode(latent / 0.18215).sample, atol=1e-5)


def test_config_samples_as_the_release_and_state_names_the_sources(converted, bundle):
    out, conv = converted
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["preset"] == "sd2" and cfg["unet"]["base_path"] is None and cfg["unet"]["mask_padding"] is False
    assert (cfg["sample"]["sampler"], cfg["sample"]["steps"], cfg["sample"]["guidance"]) == ("euler-edm", 50, 5.0)
    assert cfg["diffusion"] == {"num_train_timesteps": 1000, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
                                "beta_end": 0.012, "prediction_type": "epsilon"}
    assert cfg["text"]["norm_first"] is False and cfg["text"]["activation"] == "relu" and cfg["text"]["ff_dim"] == 48
    assert cfg["text"]["heads"] == 8 and cfg["unet"]["linear_projection"] is True and cfg["max_len"] == 12
    state = json.loads((out / "state.json").read_text())
    assert state["kind"] == "pipeline"
    files = state["source"]["files"]
    main_ckpt = bundle / "checkpoints" / "pre_trained.ckpt"
    assert files["checkpoints/pre_trained.ckpt"]["sha256"] == _sha256(main_ckpt)
    assert files["checkpoints/pre_trained.ckpt"]["parts"] == ["unet", "text_encoder", "vae"]
    assert "sha256" not in files["checkpoints/predictors/parseq-bb5792a6.pt"]  # never opened
    dropped = state["source"]["dropped"]
    for head in ("cls_head", "pos_head", "text_head", "visual_head", "visual_encoder", "logit_scale"):
        assert "conditioner.embedders.0." + head in dropped
    assert "denoiser" in dropped and any(k.startswith("conditioner.embedders.2.model") for k in dropped)


def test_cli_converts_and_edit_runs_with_the_converted_directory(tmp_path, bundle, capsys):
    out = tmp_path / "model"
    assert main(["convert", str(bundle), "--out", str(out), *CONVERT_OVERRIDES]) == 0
    printed = capsys.readouterr().out
    assert "euler-edm, 50 steps, CFG 5" in printed and "cls_head" in printed and "sha256" in printed
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (80, 120, 3), dtype=np.uint8)).save(photo)
    edited = tmp_path / "edited.png"
    rc = main(["edit", str(photo), "--box", "20,20,100,50", "--text", "Hi", "-o", str(edited), "--ckpt", str(out),
               "--steps", "2"])
    assert rc == 0 and Image.open(edited).size == (120, 80)
    # an earlier conversion is replaced; a user's folder is refused (one line, exit 2) unless --force
    assert main(["convert", str(bundle), "--out", str(out), "--half", *CONVERT_OVERRIDES]) == 0
    assert load_file(str(out / "model.safetensors"))["unet.conv_in.weight"].dtype == torch.float16
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("x")
    capsys.readouterr()
    assert main(["convert", str(bundle), "--out", str(mine), *CONVERT_OVERRIDES]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "--force" in err and "Traceback" not in err
    assert main(["convert", str(bundle), "--out", str(mine), "--force", *CONVERT_OVERRIDES]) == 0
    assert (mine / "notes.txt").read_text() == "x" and (mine / "model.safetensors").is_file()


def test_separate_bundle_files_are_used_where_the_checkpoint_lacks_them(tmp_path, sources):
    unet, encoder, vae = sources
    bundle = write_bundle(tmp_path / "b", unet, encoder, vae, encoder_in_ckpt=False, vae_in_ckpt=False,
                          latent_copy=False)
    out = tmp_path / "out"
    conv = convert_release(bundle, out, overrides=CONVERT_OVERRIDES)
    assert conv.files["checkpoints/AEs/AE_inpainting_2.safetensors"]["parts"] == ["vae"]
    assert conv.files["checkpoints/encoders/LabelEncoder/epoch=19-step=7820.ckpt"]["parts"] == ["text_encoder"]
    state = load_file(str(out / "model.safetensors"))
    assert all(torch.equal(state["vae." + k], v) for k, v in vae.state_dict().items())
    assert "cls_head" in conv.dropped  # the LabelEncoder file's own heads, unprefixed


@pytest.mark.parametrize("names", [("t_attn", "t_norm"), ("add_attn", "add_norm")])
def test_a_single_udifftext_checkpoint_converts(tmp_path, sources, names):
    unet, encoder, vae = sources
    state = released_state(unet, encoder, vae, latent_copy=False, names=names)
    if names[0] == "add_attn":  # UDiffText's first code kept an unused LayerNorm norm2 beside add_norm
        for k in [k for k in state if ".add_norm." in k]:
            state[k.replace(".add_norm.", ".norm2.")] = torch.ones_like(state[k])
    ckpt = tmp_path / "st-step=100000+la-step=100000-v1.ckpt"
    torch.save({"state_dict": state}, ckpt)
    conv = convert_release(ckpt, tmp_path / "out", overrides=CONVERT_OVERRIDES)
    assert conv.kind == "UDiffText checkpoint" and list(conv.files) == [ckpt.name]
    got = load_file(str(tmp_path / "out" / "model.safetensors"))
    assert all(torch.equal(got["unet." + k], v) for k, v in unet.state_dict().items())


# ----------------------------------------------------------------------------- errors that name the problem


def _convert_state(tmp_path, state, **kwargs):
    ckpt = tmp_path / "model.ckpt"
    torch.save({"state_dict": state}, ckpt)
    return convert_release(ckpt, tmp_path / "out", overrides=CONVERT_OVERRIDES, **kwargs)


def test_missing_bundle_files_are_named(tmp_path, bundle, sources):
    with pytest.raises(CheckpointError, match=r"missing checkpoints/pre_trained\.ckpt"):
        convert_release(tmp_path, tmp_path / "out")
    with pytest.raises(CheckpointError, match="does not exist"):
        convert_release(tmp_path / "nowhere", tmp_path / "out")
    partial = tmp_path / "partial"
    write_bundle(partial, *sources, vae_in_ckpt=False, latent_copy=False)
    (partial / "checkpoints" / "AEs" / "AE_inpainting_2.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"no VAE .*missing checkpoints/AEs/AE_inpainting_2\.safetensors"):
        convert_release(partial, tmp_path / "out", overrides=CONVERT_OVERRIDES)
    single = {k: v for k, v in released_state(*sources).items() if not k.startswith("conditioner.embedders.0.")}
    with pytest.raises(CheckpointError, match=r"no LabelEncoder .*a single checkpoint must hold it"):
        _convert_state(tmp_path, single)
    assert not (tmp_path / "out").exists()


def test_unexpected_and_missing_keys_list_the_first_few_and_the_count(tmp_path, sources):
    state = released_state(*sources)
    extra = {f"model.diffusion_model.input_blocks.1.1.transformer_blocks.0.lora_{i}.weight": torch.ones(2)
             for i in range(5)}
    with pytest.raises(CheckpointError, match=r"5 unexpected weight\(s\).*lora_0.*lora_1.*lora_2.*5 in all"):
        _convert_state(tmp_path, {**state, **extra})
    gone = [k for k in state if k.startswith("model.diffusion_model.output_blocks.2.0.out_layers.3.")]
    with pytest.raises(CheckpointError, match=r"2 missing: 'unet\.up_blocks\.0\.resnets\.2\.conv2\.bias', "
                                              r"'unet\.up_blocks\.0\.resnets\.2\.conv2\.weight'"):
        _convert_state(tmp_path, {k: v for k, v in state.items() if k not in gone})
    with pytest.raises(CheckpointError, match=r"unexpected weight\(s\).*'surprise\.weight'"):
        _convert_state(tmp_path, {**state, "surprise.weight": torch.ones(1)})


def test_a_shape_mismatch_names_key_expected_and_found(tmp_path, sources):
    state = released_state(*sources)
    key = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.t_attn.to_q.weight"
    state[key] = torch.zeros(7, 32)
    with pytest.raises(CheckpointError, match=r"wrong shape \(e\.g\. 'unet\.down_blocks\.0\.attentions\.0\."
                                              r"transformer_blocks\.0\.attn2\.to_q\.weight': expected \(32, 32\), "
                                              r"found \(7, 32\)\)"):
        _convert_state(tmp_path, state)


def test_checkpoints_of_other_models_are_refused(tmp_path, sources):
    unet, encoder, vae = sources
    sd = released_state(unet, encoder, vae, names=("attn2", "norm2"))  # SD's own text cross-attention
    with pytest.raises(CheckpointError, match="Stable Diffusion UNet"):
        _convert_state(tmp_path, sd)
    with pytest.raises(CheckpointError, match="no model.diffusion_model"):
        _convert_state(tmp_path, {"encoder.weight": torch.ones(3)})
    bad = released_state(unet, encoder, vae)
    bad["denoiser.sigmas"] = torch.linspace(0.01, 80, 1000)  # an EDM / other schedule
    with pytest.raises(CheckpointError, match="denoiser.sigmas"):
        _convert_state(tmp_path, bad)
    narrow = released_state(unet, encoder, vae)
    narrow["conditioner.embedders.0.label_embedding.weight"] = torch.zeros(95, 32)
    narrow["conditioner.embedders.0.pos_embedding.pe"] = torch.zeros(12, 32)
    with pytest.raises(CheckpointError, match="different models"):
        _convert_state(tmp_path, narrow)
    copy_differs = released_state(unet, encoder, vae)
    k = "conditioner.embedders.2.model.encoder.conv_in.weight"
    copy_differs[k] = copy_differs[k] + 1
    with pytest.raises(CheckpointError, match="masked-image encoder"):
        _convert_state(tmp_path, copy_differs)
    assert not (tmp_path / "out").exists()


def test_cli_reports_a_bad_source_in_one_line(tmp_path, capsys):
    assert main(["convert", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pre_trained.ckpt" in err and "Traceback" not in err


def test_vae_state_has_the_released_attention_shapes(sources):
    """The fixture itself: LDM's mid-block attention keeps 1×1-conv weights (what the converter reshapes)."""
    state = ldm_vae_state(sources[2])
    assert state["first_stage_model.encoder.mid.attn_1.q.weight"].ndim == 4
    assert "first_stage_model.decoder.up.0.block.2.conv1.weight" in state  # bottom-up numbering, lpb + 1 blocks


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
@pytest.mark.parametrize("command", [["edit", "photo.png", "--box", "1,1,9,9", "--text", "a", "-o", "o.png"],
                                     ["serve"]])
def test_edit_and_serve_take_a_device_and_refuse_a_missing_one_in_one_line(tmp_path, capsys, command):
    assert main([*command, "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "CUDA is not available" in err
