"""Fixtures of the web tests: a photo, a tiny random pipeline on disk, a server process.

The server always runs in its own process (as a user runs it) on a free port
of 127.0.0.1, with its working directory, HOME and TMPDIR pointed into the
test's temp folder so the tests can see everything it writes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PHOTO_WH = (320, 192)
# The word on the fixture photo's sign, in photo pixels (x0, y0, x1, y1).
SIGN_BOX = (96, 72, 224, 120)


def make_photo(path: Path) -> Path:
    """A photo-like PNG: a sky-to-street gradient, a wall, and a sign with the word SALE."""
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    w, h = PHOTO_WH
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(7)
    base = np.stack([90 + 80 * yy / h, 120 + 60 * xx / w, 200 - 90 * yy / h], -1)
    base += rng.normal(0, 6, base.shape)  # sensor-like noise so JPEG/PNG paths see texture
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    draw.rectangle((20, 140, 300, 190), fill=(120, 110, 100))  # a wall
    x0, y0, x1, y1 = SIGN_BOX
    draw.rectangle((x0 - 8, y0 - 8, x1 + 8, y1 + 8), fill=(240, 236, 220), outline=(60, 40, 30), width=3)
    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", 34)
    draw.text(((x0 + x1) / 2, (y0 + y1) / 2), "SALE", fill=(180, 20, 30), font=font, anchor="mm")
    img = img.filter(ImageFilter.GaussianBlur(0.6))
    img.save(path)
    return path


def make_tiny_pipeline(directory: Path) -> Path:
    """A randomly initialised ``test``-preset pipeline saved with ``save_pretrained``."""
    import torch

    from dreamtext.config import load_config
    from dreamtext.edit.pipeline import DreamTextPipeline
    from dreamtext.model.network import DreamTextModel

    torch.manual_seed(0)
    cfg = load_config("test")
    return DreamTextPipeline(DreamTextModel(cfg), cfg).save_pretrained(directory)


def free_port() -> int:
    """A TCP port nobody listens on at 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``dreamtext serve`` (or this module's slowed-down server) in a child process.

    ``root`` receives ``cwd/``, ``home/`` and ``tmp/``: the server's working
    directory, HOME and TMPDIR, all empty at the start. With ``wait=False`` the
    caller does other set-up while the server imports, then calls :meth:`wait_ready`.
    """

    def __init__(self, root: Path, argv: list[str], port: int, startup_timeout: float = 120.0, wait: bool = True):
        self.root = Path(root)
        self.port = port
        self.url = f"http://127.0.0.1:{port}/"
        for name in ("cwd", "home", "tmp"):
            (self.root / name).mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GRADIO_", "HF_", "MPLCONFIGDIR"))}
        env.update(HOME=str(self.root / "home"), TMPDIR=str(self.root / "tmp"), PYTHONUNBUFFERED="1",
                   XDG_CACHE_HOME=str(self.root / "home" / ".cache"),
                   PYTHONPATH=str(REPO), PYTHONDONTWRITEBYTECODE="1")
        self.log_path = self.root / "server.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(argv, cwd=self.root / "cwd", env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        self.startup_timeout = startup_timeout
        self.started_at = time.monotonic()
        if wait:
            self.wait_ready()

    def wait_ready(self) -> "ServerProcess":
        """Block until the page answers 200 (or raise with the server's log)."""
        timeout = self.startup_timeout - (time.monotonic() - self.started_at)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url, timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"server did not answer within {timeout:.0f} s:\n{self.log()}")

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (what a service manager sends), then wait; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def serve_command(ckpt: Path, port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "dreamtext.cli", "serve", "--ckpt", str(ckpt), "--port", str(port), *extra]
