"""``dreamtext serve``: the web page for editing text in photos (see docs/web.md)."""

from __future__ import annotations

from ..web.app import ServeSettings


def register(subparsers) -> None:
    d = ServeSettings()
    p = subparsers.add_parser(
        "serve", help="serve the editing web page on localhost",
        description="Serve a local web page: upload a photo, mark boxes, type new text, get the edited photo. "
                    "Needs the web extra: pip install 'dreamtext[web]'.")
    p.add_argument("--host", default=d.host,
                   help=f"address to bind (default {d.host}: this machine only; 0.0.0.0 exposes the page)")
    p.add_argument("--port", type=int, default=d.port, help=f"TCP port (default {d.port})")
    p.add_argument("--ckpt", default=None,
                   help="pipeline dir, checkpoint dir or training run dir (default: the shipped model)")
    p.add_argument("--device", default="cpu", help="where the model samples: cpu (default), cuda or cuda:N")
    p.add_argument("--max-upload-mb", type=float, default=d.max_upload_mb,
                   help=f"largest accepted upload in MiB (default {d.max_upload_mb:g})")
    p.add_argument("--max-side", type=int, default=d.max_side,
                   help=f"longest accepted image side in pixels (default {d.max_side})")
    p.add_argument("--max-regions", type=int, default=d.max_regions,
                   help=f"most boxes per request (default {d.max_regions})")
    p.add_argument("--max-queue", type=int, default=d.max_queue,
                   help=f"most requests waiting while one runs (default {d.max_queue})")
    p.set_defaults(func=run)


def run(args) -> int:
    import importlib.util

    from ..errors import ConfigError
    from ..evaluation.protocol import check_device
    from ..web.app import serve, settings_from_args

    check_device(args.device)
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be in 1..65535, got {args.port}")
    import math

    if not (math.isfinite(args.max_upload_mb) and 0 < args.max_upload_mb <= 100_000) or args.max_side < 16 \
            or args.max_regions < 1 or args.max_queue < 1:
        raise ConfigError(f"--max-upload-mb must be a number in (0, 100000] (got {args.max_upload_mb:g}), --max-side "
                          f">= 16 (got {args.max_side}), --max-regions and --max-queue >= 1 (got {args.max_regions}, "
                          f"{args.max_queue})")
    # Only looked up, not imported: serve() must set GRADIO_TEMP_DIR before the import.
    if importlib.util.find_spec("gradio") is None:
        raise ConfigError("the web page needs Gradio: pip install 'dreamtext[web]'")
    settings = settings_from_args(host=args.host, port=args.port, max_upload_mb=args.max_upload_mb,
                                  max_side=args.max_side, max_regions=args.max_regions, max_queue=args.max_queue)
    serve(settings, args.ckpt, device=args.device)
    return 0
