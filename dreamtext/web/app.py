"""The web page: upload a photo, mark boxes, type the new text, get the edited photo.

``dreamtext serve`` builds this page with Gradio (the ``web`` extra, imported
only here) and serves it on localhost. The page works on one uploaded photo
per browser session:

1. the photo is uploaded as a file and checked here (size in bytes, image
   dimensions read from the header before decoding, decodability), so a
   huge or non-image upload becomes a readable message, never a traceback;
2. boxes are drawn by clicking two opposite corners on the preview, or typed
   as lines ``x0, y0, x1, y1, TEXT`` (the click fills in the same lines, so a
   person can correct a box by editing its numbers);
3. *Edit* runs the pipeline in Gradio's queue with a concurrency of one: the
   model is not thread-safe, and a second request waits in the queue (the
   page shows its position) instead of being dropped; the sampler's tqdm bar
   is mirrored as the page's progress bar.

Everything that can be wrong with the input raises a
:class:`~dreamtext.errors.DreamTextError` inside
:mod:`dreamtext.web_inputs` (``parse_regions``, ``load_upload``) or the pipeline, and :class:`EditService` turns it into the
message shown in the status line; the server keeps serving.

The server writes only into one temporary folder (Gradio's upload cache and
the downloadable results), created by :func:`serve` and removed when it stops.
The logic that does not need Gradio (:mod:`dreamtext.web_inputs`,
:class:`EditService`) is plain Python so it is tested without a browser.
"""


import contextlib
import dataclasses
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..config import BLEND_MODES, MASK_RULES, SAMPLERS
from ..errors import ConfigError, DreamTextError
from .inputs import draw_boxes, format_region, load_upload, parse_regions
from .service import MAX_RESTARTS, MAX_WEB_CANDIDATES, EditFn, EditService, ServeSettings

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


# ----------------------------------------------------------------------------- the page

PAGE_INTRO = """# DreamText: edit the text in a photo
1. Upload a photo (PNG, JPEG or WebP).
2. Click two opposite corners of a word on the preview to add a box for the text below,
   or type boxes as lines `x0, y0, x1, y1, TEXT` (pixels of the photo).
3. Press **Edit**. The result, a before/after slider and the per-character masks appear below.
"""


def build_app(service: EditService):
    """The Gradio ``Blocks`` of the page (not launched). Element ids are what the browser tests use."""
    import gradio as gr

    settings = service.settings
    d = service.defaults
    # System fonts only: the default theme would fetch web fonts from the internet.
    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                              font_mono=["ui-monospace", "monospace"])

    def on_upload(file):
        path = getattr(file, "name", file)
        try:
            image = load_upload(path, settings)
        except DreamTextError as e:  # clear the file so the drop zone is back for another try
            return None, None, None, "", None, status_markdown(f"Error: {e}")
        h, w = image.shape[:2]
        return (gr.update(), image, image, "", None,
                status_markdown(f"Photo loaded ({w}×{h}). Click two opposite corners of a word."))

    def on_clear():
        return None, None, "", None, "Upload a photo to start."

    def on_click(image, spec, pending, new_text, evt: gr.SelectData):
        if image is None:
            return spec, None, None, status_markdown("Error: no photo uploaded yet: upload a PNG or JPEG first")
        x, y = (float(v) for v in evt.index[:2])
        if pending is None:
            quads, texts = _boxes_for_preview(spec, image)
            return spec, (x, y), draw_boxes(image, quads, texts, (x, y)), "First corner set; click the opposite corner."
        line = format_region((pending[0], pending[1], x, y), (new_text or "").strip())
        spec = (spec.rstrip("\n") + "\n" if spec and spec.strip() else "") + line
        quads, texts = _boxes_for_preview(spec, image)
        return spec, None, draw_boxes(image, quads, texts), status_markdown(f"Box added: {line}")

    def on_spec_change(image, spec, pending):
        if image is None:
            return None
        quads, texts = _boxes_for_preview(spec, image)
        return draw_boxes(image, quads, texts, pending)

    def on_edit(image, spec, steps, guidance, sampler, seed, restarts, blend, mask_rule, candidates, style_ref,
                progress=gr.Progress(track_tqdm=True)):
        progress(0.0, desc="sampling")
        # One server-log line as a request leaves the queue and one as it ends: what an operator reads to
        # see the queue at work (and how the web test checks that requests never overlap).
        started = time.monotonic()
        log_event(f"edit started ({int(steps)} steps)")
        out = service.run(image, spec, steps=steps, guidance=guidance, sampler=sampler, seed=seed, restarts=restarts,
                          blend=blend, mask_rule=mask_rule, candidates=candidates, style_ref=bool(style_ref))
        log_event(f"edit finished in {time.monotonic() - started:.2f} s: {out.message}")
        if not out.ok:
            return status_markdown(out.message), None, None, None, gr.update(value=None, visible=False)
        return (status_markdown(out.message), out.image, (out.before, out.image), out.overlay,
                gr.update(value=out.download, visible=True))

    with gr.Blocks(title="DreamText", analytics_enabled=False, delete_cache=(1800, 3600)) as demo:
        gr.Markdown(PAGE_INTRO)
        photo = gr.State(None)  # uint8 (H, W, 3) of this session's upload
        pending = gr.State(None)  # first corner (x, y) of a box being drawn
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(label=f"Photo (at most {settings.max_upload_mb:g} MiB, {settings.max_side} px a side)",
                                 file_types=["image"], type="filepath", elem_id="upload")
                new_text = gr.Textbox(label="Text for the next box you draw", value="TEXT", max_lines=1,
                                      elem_id="new_text")
                spec = gr.Textbox(label="Boxes, one per line: x0, y0, x1, y1, TEXT", lines=4,
                                  placeholder="40, 30, 200, 80, HELLO", elem_id="regions")
                with gr.Accordion("Sampling", open=True):
                    steps = gr.Slider(1, settings.max_steps, value=int(d["steps"]), step=1, label="steps",
                                      elem_id="steps")
                    guidance = gr.Slider(0.0, 15.0, value=float(d["guidance"]), step=0.5,
                                         label="guidance (classifier-free)", elem_id="guidance")
                    sampler = gr.Dropdown(list(SAMPLERS), value=d["sampler"], label="sampler", elem_id="sampler")
                    seed = gr.Number(value=int(d["seed"]), precision=0, label="seed", elem_id="seed")
                    restarts = gr.Slider(0, MAX_RESTARTS, value=int(d.get("restarts", 0)), step=1,
                                         label="restarts (each re-samples the last 60 % of the steps)",
                                         elem_id="restarts")
                    blend = gr.Radio(list(BLEND_MODES), value=d.get("blend", "feather"), elem_id="blend",
                                     label="paste-back (poisson: the photo's colours at the box's edge; "
                                           "inpaint: only the new letters, on the photo's own background; "
                                           "recolor: the crop in the old letters' and the photo's colours)")
                    mask_rule = gr.Radio(list(MASK_RULES), value=d.get("mask_rule", "attention"),
                                         elem_id="mask_rule",
                                         label="character masks (strokes: narrowed to the generated letters)")
                    candidates = gr.Slider(1, MAX_WEB_CANDIDATES, value=int(d.get("candidates", 1)), step=1,
                                           label="candidates (best of N: the word verifier keeps the one it reads "
                                                 "best; N times the time)", elem_id="candidates")
                    style_ref = gr.Checkbox(value=True, elem_id="style_ref",
                                            label="keep the old word's look (the model sees the region's original "
                                                  "pixels; models with the style reference, version 7 on)")
                run = gr.Button("Edit", variant="primary", elem_id="run")
                status = gr.Markdown("Upload a photo to start.", elem_id="status")
            with gr.Column(scale=2):
                preview = gr.Image(label="Photo and boxes (click two corners to add a box)", interactive=False,
                                   elem_id="preview", format="png", height=320)
                with gr.Row():
                    result = gr.Image(label="Edited photo", interactive=False, elem_id="result", format="png",
                                      height=240)
                    overlay = gr.Image(label="Per-character masks", interactive=False, elem_id="overlay",
                                       format="png", height=240)
                download = gr.DownloadButton("Download the edited photo (PNG)", visible=False, elem_id="download")
                slider = gr.ImageSlider(label="Before / after (drag the handle)", interactive=False,
                                        elem_id="before_after", format="png", max_height=360)

        # .upload / .clear fire on the user's actions only, so clearing the file after a bad
        # upload does not overwrite the message.
        upload.upload(on_upload, [upload], [upload, photo, preview, spec, pending, status], queue=False)
        upload.clear(on_clear, None, [photo, preview, spec, pending, status], queue=False)
        preview.select(on_click, [photo, spec, pending, new_text], [spec, pending, preview, status], queue=False)
        spec.change(on_spec_change, [photo, spec, pending], [preview], queue=False)
        run.click(on_edit, [photo, spec, steps, guidance, sampler, seed, restarts, blend, mask_rule, candidates,
                            style_ref],
                  [status, result, slider, overlay, download], concurrency_limit=1, api_name="edit")
    demo.queue(default_concurrency_limit=1, max_size=settings.max_queue)
    return demo, theme


# What turns plain text into emphasis, code, links or HTML in Markdown (parentheses alone do not).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")


def log_event(message: str) -> None:
    """A timestamped line on the server's stderr."""
    print(f"dreamtext serve [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def status_markdown(message: str) -> str:
    """The status line: the message with Markdown escaped (user text may hold ``*`` or ``_``),
    a leading ``Error:`` / ``Internal error`` in bold so it stands out."""
    for lead in ("Error:", "Internal error"):
        if message.startswith(lead):
            return f"**{lead}**" + _MARKDOWN_SPECIAL.sub(r"\\\1", message[len(lead):])
    return _MARKDOWN_SPECIAL.sub(r"\\\1", message)


def _boxes_for_preview(spec: str, image: np.ndarray) -> tuple[list[np.ndarray], list[str]]:
    """The boxes of the lines that parse (the others are reported when Edit is pressed)."""
    quads, texts = [], []
    for line in (spec or "").splitlines():
        with contextlib.suppress(DreamTextError):
            q, t = parse_regions(line, (image.shape[1], image.shape[0]), max_len=10**6, max_regions=1)
            quads += q
            texts += t
    return quads, texts


# ----------------------------------------------------------------------------- serving


def pipeline_edit_fn(ckpt: str | None, device: str = "cpu") -> tuple[EditFn, int, dict[str, Any]]:
    """Load the pipeline (on ``device``): its ``edit``, the model's ``max_len`` and its sampling defaults."""
    from ..edit.pipeline import DreamTextPipeline

    pipe = DreamTextPipeline.from_pretrained(ckpt, device=device)
    cfg = pipe.cfg
    defaults = {"steps": cfg.sample.steps, "guidance": cfg.sample.guidance, "sampler": cfg.sample.sampler,
                "restarts": cfg.sample.restarts, "blend": cfg.sample.blend, "mask_rule": cfg.sample.mask_rule,
                "candidates": cfg.sample.candidates}

    def edit(image, regions, texts, **options):
        return pipe.edit(image, regions, texts, progress=True, **options)  # tqdm bar → the page's progress bar

    return edit, cfg.max_len, defaults


def serve(settings: ServeSettings, ckpt: str | None = None, *, edit_fn: EditFn | None = None,
          max_len: int | None = None, defaults: dict[str, Any] | None = None,
          stop: threading.Event | None = None, device: str = "cpu") -> None:
    """Serve the page until SIGINT/SIGTERM (or ``stop`` is set); remove the temp folder after. The model
    samples on ``device`` (cpu, cuda, cuda:N).

    The model is loaded first (a bad ``ckpt`` fails before anything is
    created). Gradio's upload cache is pointed into the temp folder through
    ``GRADIO_TEMP_DIR`` (and matplotlib's cache, which Gradio imports, through
    ``MPLCONFIGDIR`` unless the user set it), which are read at import, so this must
    run before anything imports ``gradio`` in this process; the environment is
    restored on return.
    """
    if "gradio" in sys.modules:
        raise RuntimeError("serve() must run before gradio is imported (GRADIO_TEMP_DIR is read at import)")
    if edit_fn is None:
        edit_fn, max_len, defaults = pipeline_edit_fn(ckpt, device)
    if settings.host not in LOOPBACK_HOSTS:
        print(f"warning: serving on {settings.host}: anyone who can reach this address can use the page",
              file=sys.stderr)
    temp = Path(tempfile.mkdtemp(prefix="dreamtext-serve-"))
    env = {"GRADIO_TEMP_DIR": str(temp / "gradio"), "GRADIO_ANALYTICS_ENABLED": "False"}  # no calls home
    if not os.environ.get("MPLCONFIGDIR"):  # Gradio imports matplotlib when present: keep its font cache here too
        env["MPLCONFIGDIR"] = str(temp / "matplotlib")
    saved_env = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    stop = stop or threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():  # signals can only be caught there
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    demo = None
    try:
        service = EditService(edit_fn, max_len=max_len or 12, settings=settings, results_dir=temp / "results",
                              defaults=defaults)
        demo, theme = build_app(service)
        try:
            demo.launch(server_name=settings.host, server_port=settings.port, prevent_thread_lock=True,
                        quiet=True, max_file_size=settings.max_upload_bytes, footer_links=[], run_history=False,
                        enable_monitoring=False, mcp_server=False, ssr_mode=False, pwa=False, share=False,
                        allowed_paths=[str(temp / "results")], theme=theme,
                        state_session_capacity=settings.max_sessions)
        except OSError as e:  # Gradio's "Cannot find empty port" and bind errors
            reason = str(e).split(". ")[0]  # Gradio's advice that follows names its own env variables
            raise ConfigError(f"cannot listen on {settings.host}:{settings.port}: {reason}") from None
        url = f"http://{settings.host}:{settings.port}/"
        print(f"dreamtext serve: the page is at {url} (Ctrl+C stops it)", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        if demo is not None:
            with contextlib.suppress(Exception):
                demo.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        shutil.rmtree(temp, ignore_errors=True)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        print("dreamtext serve: stopped; temporary files removed", flush=True)


def settings_from_args(**kwargs) -> ServeSettings:
    """A :class:`ServeSettings` from the command's options (``None`` keeps the default)."""
    fields = {f.name for f in dataclasses.fields(ServeSettings)}
    return ServeSettings(**{k: v for k, v in kwargs.items() if k in fields and v is not None})
