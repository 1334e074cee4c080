"""``dreamtext serve`` as a user meets it: a real browser, two users at once, a clean exit.

One server process runs the real command with a randomly initialised ``test``
model on a free port of 127.0.0.1 (small upload limits set with its options),
for every test of this module:

- Debian's headless Chromium, driven through Playwright, uploads a photo,
  draws a box by clicking two corners, types a word, presses Edit and
  downloads the result, exactly as a person would; a second test feeds the
  page bad input. Screenshots are kept in ``out/test-artifacts/web/``
  (``DREAMTEXT_ARTIFACTS`` overrides). They need ``pip install
  '.[web,browser-test]'`` and ``apt-get install chromium`` (``make setup`` does
  both); without them they are skipped and say why.
- Two users submit at once through ``gradio_client`` (Gradio's own client):
  the second request waits in the queue and both finish.
- The server listens on loopback only and, once stopped, has left nothing
  outside the temp folder it removed.
"""

import importlib.util
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _web_fixtures import (PHOTO_WH, REPO, SIGN_BOX, ServerProcess, free_port, make_photo,  # noqa: E402
                           make_tiny_pipeline, serve_command)

from dreamtext.web.inputs import format_region  # noqa: E402

CHROMIUM = os.environ.get("DREAMTEXT_CHROMIUM", "/usr/bin/chromium")  # Debian's; no downloaded browser
MAX_UPLOAD_MB = 0.5  # the server's limits in these tests (set with serve's options)
MAX_SIDE = 1000
ARTIFACTS = Path(os.environ.get("DREAMTEXT_ARTIFACTS", REPO / "out" / "test-artifacts")) / "web"

pytestmark = pytest.mark.timeout(300)  # includes the server start on the first test


def _browser_missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "Playwright is not installed (pip install '.[browser-test]'; make setup does it)"
    if not Path(CHROMIUM).is_file():
        return f"no browser at {CHROMIUM} (apt-get install chromium; make setup does it)"
    return None


@pytest.fixture(scope="module")
def server_starting(tmp_path_factory):
    """The server process, started but perhaps not answering yet (it imports for a while)."""
    if importlib.util.find_spec("gradio") is None:
        reason = "Gradio is not installed (pip install '.[web]'; make setup does it)"
        print(f"\nweb server tests skipped: {reason}", file=sys.stderr)
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("web_server")
    ckpt = make_tiny_pipeline(root / "tiny_pipeline")
    port = free_port()
    argv = serve_command(ckpt, port, "--max-upload-mb", str(MAX_UPLOAD_MB), "--max-side", str(MAX_SIDE))
    proc = ServerProcess(root / "server", argv, port, wait=False)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def browser(server_starting):
    """Headless Chromium, launched while the server is still importing."""
    reason = _browser_missing()
    if reason:
        print(f"\nbrowser tests skipped: {reason}", file=sys.stderr)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(server_starting):
    return server_starting.wait_ready()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 1100}, accept_downloads=True)
    pg = context.new_page()
    outside = []
    pg.on("request", lambda r: outside.append(r.url) if not r.url.startswith(server.url) else None)
    pg.goto(server.url)
    pg.wait_for_selector("#run", timeout=30_000)
    yield pg
    context.close()
    # Offline machines must get a complete page: nothing may be fetched from the internet.
    assert not [u for u in outside if not u.startswith(("data:", "blob:"))], outside


def _status(pg) -> str:
    """The status line's text only (not the timer Gradio overlays on it while a request runs)."""
    return pg.inner_text("#status .prose").strip()


def _wait_status(pg, expected: str, timeout: float = 60.0) -> str:
    """Wait until the status line contains ``expected``; return the whole line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = _status(pg)
        if expected in text:
            return text
        time.sleep(0.1)
    raise AssertionError(f"status never said {expected!r}; it says {_status(pg)!r}")


def _upload(pg, path: Path) -> None:
    pg.locator("#upload input[type=file]").set_input_files(str(path))


def _click_photo(pg, x: float, y: float) -> None:
    """Click the preview at photo pixel (x, y), wherever and at whatever scale the page draws it.

    The <img> box is larger than the picture drawn in it (``object-fit``
    contain / scale-down centres it), so the drawn rectangle is computed.
    """
    img = pg.locator("#preview img").first
    box = img.bounding_box()
    nw, nh, fit = pg.evaluate("e => [e.naturalWidth, e.naturalHeight, getComputedStyle(e).objectFit]",
                              img.element_handle())
    scale = min(box["width"] / nw, box["height"] / nh)
    if fit == "scale-down":
        scale = min(scale, 1.0)
    elif fit not in ("contain",):
        raise AssertionError(f"unexpected object-fit {fit!r} on the preview")
    left = box["x"] + (box["width"] - nw * scale) / 2
    top = box["y"] + (box["height"] - nh * scale) / 2
    pg.mouse.click(left + (x + 0.5) * scale, top + (y + 0.5) * scale)


def _shot(pg, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    pg.screenshot(path=str(path), full_page=True)
    return path


@pytest.mark.browser
def test_browser_edit_changes_the_word_and_downloads_the_result(page, server, tmp_path):
    from PIL import Image

    photo_path = make_photo(tmp_path / "street.png")
    photo = np.asarray(Image.open(photo_path).convert("RGB"))
    _upload(page, photo_path)
    assert _wait_status(page, "Photo loaded") == f"Photo loaded ({PHOTO_WH[0]}×{PHOTO_WH[1]}). " \
                                                 "Click two opposite corners of a word."
    page.fill("#new_text input, #new_text textarea", "OPEN")
    x0, y0, x1, y1 = SIGN_BOX
    page.locator("#preview img").first.wait_for()
    _click_photo(page, x0, y0)
    _wait_status(page, "First corner set")
    _click_photo(page, x1, y1)
    _wait_status(page, "Box added")
    line = page.input_value("#regions textarea")
    numbers = [float(v) for v in line.split(",")[:4]]
    assert np.abs(np.subtract(numbers, SIGN_BOX)).max() <= 2, line  # the clicks landed on the photo's pixels
    assert line.endswith(", OPEN")
    assert page.input_value("#steps input[type=number]") == "4"  # the model's own default (test preset)
    assert page.input_value("#restarts input[type=number]") == "0"
    assert page.locator("#blend input[value=feather]").is_checked()  # the model's defaults
    assert page.locator("#mask_rule input[value=attention]").is_checked()
    assert page.input_value("#candidates input[type=number]") == "1"  # one sample unless asked for more

    page.click("#run")
    message = _wait_status(page, "Done", timeout=90)
    assert message.startswith("Done: 1 box edited (4 steps")
    for elem in ("#result", "#overlay", "#before_after"):
        assert page.locator(f"{elem} img").count() >= 1, f"{elem} shows no image"
    _shot(page, "edit_done.png")

    with page.expect_download() as download_info:
        page.click("#download")
    download = tmp_path / "downloaded.png"
    download_info.value.save_as(download)
    edited = np.asarray(Image.open(download).convert("RGB"))
    assert edited.shape == photo.shape

    changed = np.abs(edited.astype(int) - photo).max(-1) > 8  # (H, W)
    bx0, by0, bx1, by1 = (int(round(v)) for v in numbers)
    assert changed[by0:by1, bx0:bx1].mean() > 0.5, "the box was not repainted"
    margin = by1 - by0  # the paste-back feathers over a band well under one box height
    near = np.zeros_like(changed)
    near[max(0, by0 - margin):by1 + margin, max(0, bx0 - margin):bx1 + margin] = True
    assert not changed[~near].any(), "pixels far outside the box changed"


@pytest.mark.browser
def test_browser_bad_input_shows_a_message_and_the_server_keeps_serving(page, server, tmp_path):
    not_an_image = tmp_path / "holiday.png"
    not_an_image.write_bytes(b"%PDF-1.4 this is a document, not a photo\n" * 20)
    _upload(page, not_an_image)
    assert _wait_status(page, "is not an image").startswith("Error: 'holiday.png' is not an image this page can read")

    from PIL import Image

    noise = np.random.default_rng(0).integers(0, 256, (600, 600, 3), dtype=np.uint8)
    huge = tmp_path / "huge.png"
    Image.fromarray(noise).save(huge)  # ~1 MiB of incompressible pixels > the 0.5 MiB limit
    assert huge.stat().st_size > MAX_UPLOAD_MB * 2**20
    _upload(page, huge)  # refused by the page before it is sent, with Gradio's own notice
    page.get_by_text("exceed the maximum allowed size").first.wait_for(timeout=10_000)

    wide = tmp_path / "panorama.png"
    Image.new("RGB", (MAX_SIDE + 200, 40), (90, 120, 200)).save(wide)  # small file, too many pixels a side
    page.locator("#upload input[type=file]").wait_for(state="attached")
    _upload(page, wide)
    assert _wait_status(page, "longest side").startswith(
        f"Error: the photo is {MAX_SIDE + 200}×40 px; the longest side may be at most {MAX_SIDE} px")

    _upload(page, make_photo(tmp_path / "street.png"))
    _wait_status(page, "Photo loaded")
    page.click("#run")  # no box yet
    assert _wait_status(page, "no box given").startswith("Error: no box given")

    page.fill("#regions textarea", "96, 72, 224, 120, Grüße")
    page.click("#run")
    message = _wait_status(page, "Error: text 'Grüße'")
    assert "outside the charset" in message and "'ß'" in message and "'ü'" in message

    page.fill("#regions textarea", "96, 72, 224, 120, FAR  TOO")  # a phrase may not hold a double space
    page.click("#run")
    assert "Error: text 'FAR" in _wait_status(page, "leading, trailing or double spaces")  # HTML shows one space
    _shot(page, "bad_input.png")

    # The same page still edits afterwards: the errors did not break the server or the session.
    page.fill("#regions textarea", "96, 72, 224, 120, OK")
    page.click("#run")
    _wait_status(page, "Done", timeout=90)
    assert server.proc.poll() is None


def _client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False, analytics_enabled=False)


def test_progress_is_shown_and_a_second_request_waits_in_the_queue(server, tmp_path):
    from gradio_client import handle_file
    from gradio_client.utils import Status

    photo = make_photo(tmp_path / "street.png")
    users = [_client(server.url) for _ in range(2)]
    for user in users:  # each browser session uploads its own photo
        status = user.predict(handle_file(str(photo)), api_name="/on_upload")
        assert status[-1].startswith("Photo loaded"), status
    spec = format_region(SIGN_BOX, "OPEN")
    # The first request samples 16 steps so it is still running when the second arrives.
    first = users[0].submit(spec, 16, 3.0, "ddim", 0, 0, api_name="/edit")
    deadline = time.monotonic() + 60
    running = (Status.PROCESSING, Status.PROGRESS)  # PROGRESS: the sampler's progress bar is updating
    while first.status().code not in running and time.monotonic() < deadline:
        time.sleep(0.02)
    assert first.status().code in running
    second = users[1].submit(spec, 2, 3.0, "ddim", 1, 0, api_name="/edit")
    seen, progress = set(), []
    while not first.done():
        code = second.status().code
        first_status = first.status()
        if first_status.code in running:
            seen.add(code)
        progress += first_status.progress_data or []
        time.sleep(0.02)
    # The sampler's tqdm bar reached the page as a progress bar counting the 16 steps.
    assert any(p.desc == "sampling" and p.length == 16 for p in progress), progress
    # While the first ran, the second waited in the queue (not dropped).
    assert Status.IN_QUEUE in seen, seen
    results = [first.result(timeout=60), second.result(timeout=60)]
    for (message, *images), steps in zip(results, (16, 2)):
        assert message.startswith(f"Done: 1 box edited ({steps} steps"), message
        assert images[0] is not None  # the edited photo came back
    # ... and never ran beside it. The clients' status streams lag one another, so the order is read from
    # the server's own log: each edit finished before the next one started.
    events = re.findall(r"edit (started|finished)", server.log())
    assert events[-4:] == ["started", "finished", "started", "finished"], events


def test_server_listens_on_loopback_only(server):
    # /proc/net/tcp lists listening sockets as hex "ADDR:PORT" with state 0A (LISTEN);
    # 0100007F is 127.0.0.1. Read from the kernel so no packet leaves loopback.
    port_hex = f"{server.port:04X}"
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if Path(table).exists():
            for row in Path(table).read_text().splitlines()[1:]:
                local, state = row.split()[1], row.split()[3]
                if state == "0A" and local.endswith(":" + port_hex):
                    listening.append(local.split(":")[0])
    assert listening == ["0100007F"], listening


# Runs last in this module: it stops the shared server.
def test_server_writes_only_into_its_temp_folder_and_removes_it(server, tmp_path):
    from gradio_client import handle_file

    user = _client(server.url)
    user.predict(handle_file(str(make_photo(tmp_path / "street.png"))), api_name="/on_upload")
    done = user.predict(format_region(SIGN_BOX, "OK"), 1, 3.0, "ddim", 0, 1, api_name="/edit")[0]
    assert done.startswith("Done") and "1 steps + 1 restarts" in done
    root = server.root
    during = sorted(p.name for p in (root / "tmp").iterdir())
    assert len(during) == 1 and during[0].startswith("dreamtext-serve-"), during
    kept = sorted(p.name for p in (root / "tmp" / during[0]).rglob("*.png"))
    assert "street.png" in kept and "dreamtext_edit.png" in kept, kept  # the upload and the result
    assert server.stop() == 0, server.log()
    assert "temporary files removed" in server.log()
    leftovers = {name: sorted(str(p.relative_to(root / name)) for p in (root / name).rglob("*"))
                 for name in ("tmp", "cwd", "home")}
    assert leftovers == {"tmp": [], "cwd": [], "home": []}, leftovers
