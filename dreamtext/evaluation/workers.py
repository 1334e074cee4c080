"""The evaluation's progress bar and its worker processes (``dreamtext eval --workers N``).

Each worker is a spawned interpreter that loads the model itself and evaluates every N-th record
(:func:`dreamtext.eval_protocol.evaluate_part`); the parent merges their rows in record order and drives one
progress bar from the rows the workers report through a queue. The numbers do not depend on N: record i
is always sampled with seed + i.
"""

from __future__ import annotations

from .protocol import EvalSettings, evaluate_part, load_pipeline, open_records, weights_sha256


def progress_ticker(settings: EvalSettings, progress: bool, total: int):
    """A ``tick(row)`` callable driving a tqdm bar with the running SeqAcc and ceiling (closes itself at the end)."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=f"eval {'ceiling' if settings.ceiling_only else settings.task}", unit="sample",
               disable=not progress)
    acc = {"n": 0, "ceiling": 0.0, "seq": 0.0}

    def tick(row):
        bar.update(1)
        if row is not None:
            acc["n"] += 1
            acc["ceiling"] += row["ocr_ceiling_seq_acc_ci"]
            acc["seq"] += row.get("seq_acc_ci", 0.0)
            postfix = {"ceiling": f"{acc['ceiling'] / acc['n']:.3f}"}
            if not settings.ceiling_only:
                postfix["seq_acc"] = f"{acc['seq'] / acc['n']:.3f}"
            bar.set_postfix(postfix)
        if bar.n >= bar.total:
            bar.close()

    return tick


def _cfg_for(settings: EvalSettings):
    """The model config of ``settings.ckpt`` (the shipped model's when None), without loading weights."""
    from ..model.checkpoint import SHIPPED_MODEL_DIR
    from ..model.checkpoint import read_config, resolve_checkpoint

    return read_config(resolve_checkpoint(settings.ckpt if settings.ckpt is not None else SHIPPED_MODEL_DIR))


_TICKS = None  # a worker's queue to the parent's progress bar (set by _init_worker)


def _init_worker(ticks) -> None:
    """Worker start-up: keep the progress queue, and exit as soon as the parent evaluation is gone.

    A killed ``dreamtext eval`` would otherwise leave its workers computing (or waiting for work) for
    nobody: a spawned process outlives its parent. A daemon thread polls the parent's pid once a second.
    """
    import os
    import threading
    import time

    global _TICKS
    _TICKS = ticks
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="dreamtext-parent-watch", daemon=True).start()


def _worker(settings: EvalSettings, part: int, threads: int) -> dict:
    """One evaluation worker process: its own model, OCR and share of the parent's torch threads."""
    import torch

    torch.set_num_threads(threads)
    pipeline, cfg = load_pipeline(settings, None)
    def tick(row):  # the parent's bar needs only what its postfix shows
        _TICKS.put(None if row is None else {k: row[k] for k in ("ocr_ceiling_seq_acc_ci", "seq_acc_ci") if k in row})

    out = evaluate_part(settings, pipeline, cfg, part, settings.workers, tick)
    out["weights_sha256"] = None if pipeline is None else weights_sha256(pipeline.model)
    return out


def evaluate_in_workers(settings: EvalSettings, progress: bool):
    """``settings.workers`` spawned processes, one part each; their parts merged in record order."""
    import multiprocessing as mp
    import queue
    from concurrent.futures import ProcessPoolExecutor

    import torch

    from ..config import load_config

    threads = max(1, torch.get_num_threads() // settings.workers)
    # The config the data is cut with, read without loading weights (a ceiling-only run without a checkpoint
    # uses the tiny preset's, as load_pipeline does).
    cfg = load_config("tiny") if settings.ceiling_only and settings.ckpt is None else _cfg_for(settings)
    total = open_records(settings, cfg)[1]
    tick = progress_ticker(settings, progress, total)
    ctx = mp.get_context("spawn")  # fresh interpreters: no forked torch / OpenCV thread state
    ticks = ctx.Queue()  # handed over at start-up; no manager process that could outlive this one
    with ProcessPoolExecutor(max_workers=settings.workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(ticks,)) as pool:
        futures = [pool.submit(_worker, settings, k, threads) for k in range(settings.workers)]
        while True:
            finished = all(f.done() for f in futures)
            try:  # one message per record; after the workers end, drain what is left (a queue's feeder
                while True:  # thread may still be flushing it, hence a short wait rather than get_nowait)
                    tick(ticks.get(timeout=0.2 if not finished else 0.5))
            except queue.Empty:
                pass
            if finished:
                break
        parts = [f.result() for f in futures]  # re-raises a worker's error here
    rows = sorted((r for p in parts for r in p["rows"]), key=lambda r: r["index"])
    merged = {
        "rows": rows,
        "strips": {k: v for p in parts for k, v in p["strips"].items()},
        "skipped": sorted((s for p in parts for s in p["skipped"]), key=lambda s: s["index"]),
        "fid_feats": ([], []),
        "lpips_on": parts[0]["lpips_on"], "fid_on": parts[0]["fid_on"],
    }
    # FID features in record order, so the statistic does not depend on the number of workers
    order = sorted((r["index"], k, i) for k, p in enumerate(parts) for i, r in enumerate(p["rows"]))
    for _, k, i in order:
        if parts[k]["fid_feats"][0]:
            merged["fid_feats"][0].append(parts[k]["fid_feats"][0][i])
            merged["fid_feats"][1].append(parts[k]["fid_feats"][1][i])
    return merged, cfg, parts[0]["weights_sha256"], parts[0]["ocr"], parts[0]["notices"]
