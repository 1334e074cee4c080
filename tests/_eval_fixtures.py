"""Helpers for the evaluation tests: weights in the standard LPIPS key layouts, an FID-Inception stand-in."""

import torch

from dreamtext.evaluation import metrics


def random_lpips_weights(tmp_path, fmt):
    """Weights in the standard key layouts (torchvision AlexNet `features.*`, lpips `lin{k}.model.1.weight`)."""
    from safetensors.torch import save_file

    model = metrics._lpips_module()()
    torch.manual_seed(0)
    trunk = {f"features.{k}": torch.randn_like(v) * 0.05 for k, v in model.features.state_dict().items()}
    trunk["classifier.1.weight"] = torch.zeros(4, 4)  # present in torchvision's file, ignored
    lins = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate(model.channels)}
    if fmt == "pth":
        torch.save(trunk, tmp_path / "alexnet-owt-7be5be79.pth")
        torch.save(lins, tmp_path / "alex.pth")
    else:
        save_file(trunk, str(tmp_path / "alexnet.safetensors"))
        save_file(lins, str(tmp_path / "alex.safetensors"))
    return trunk, lins


class PoolFeatures(torch.nn.Module):
    """A stand-in network with the FID Inception's TorchScript call signature (uint8 NCHW in, (N, D) out)."""

    def forward(self, x: torch.Tensor, return_features: bool = True) -> torch.Tensor:
        x = x.float() / 255.0
        return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1)


def save_pool_features(path) -> None:
    """Save :class:`PoolFeatures` as TorchScript, the file format of the FID Inception."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(PoolFeatures()).save(str(path))


