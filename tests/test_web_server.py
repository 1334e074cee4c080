"""The web server as a process: queueing, loopback binding, and nothing left behind.

The server runs the real pipeline (a random ``test``-preset model) slowed down
by a fixed delay per request (``tests/_web_fixtures.py``), so two requests
overlap in time the way two users of a large model would. Requests are sent
with ``gradio_client`` (Gradio's own client, over HTTP to 127.0.0.1).
"""

import importlib.util
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _web_fixtures import SIGN_BOX, ServerProcess, free_port, make_photo, make_tiny_pipeline  # noqa: E402

from dreamtext.app import format_region  # noqa: E402

DELAY_S = 1.5  # seconds each request takes at least

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory):
    if importlib.util.find_spec("gradio") is None:
        pytest.skip("Gradio is not installed (pip install '.[web]'; make setup does it)")
    root = tmp_path_factory.mktemp("web_server")
    ckpt = make_tiny_pipeline(root / "tiny_pipeline")
    port = free_port()
    argv = [sys.executable, str(Path(__file__).parent / "_web_fixtures.py"), "--ckpt", str(ckpt),
            "--port", str(port), "--delay", str(DELAY_S)]
    proc = ServerProcess(root / "server", argv, port)
    yield proc
    proc.stop()


def _client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False, analytics_enabled=False)


def test_second_request_waits_in_the_queue_and_both_finish(slow_server, tmp_path):
    from gradio_client import handle_file
    from gradio_client.utils import Status

    photo = make_photo(tmp_path / "street.png")
    users = [_client(slow_server.url) for _ in range(2)]
    for user in users:  # each browser session uploads its own photo
        status = user.predict(handle_file(str(photo)), api_name="/on_upload")
        assert status[-1].startswith("Photo loaded"), status
    spec = format_region(SIGN_BOX, "OPEN")
    first = users[0].submit(spec, 2, 3.0, "ddim", 0, api_name="/edit")
    deadline = time.monotonic() + 30
    while first.status().code != Status.PROCESSING and time.monotonic() < deadline:
        time.sleep(0.05)
    second = users[1].submit(spec, 2, 3.0, "ddim", 1, api_name="/edit")
    seen = set()
    while not first.done():
        seen.add(second.status().code)
        time.sleep(0.05)
    first_done = time.monotonic()
    assert Status.IN_QUEUE in seen and Status.PROCESSING not in seen, seen  # waiting, not running, not dropped
    results = [first.result(timeout=60), second.result(timeout=60)]
    second_done = time.monotonic()
    for message, *images in results:
        assert message.startswith("Done: 1 box edited (2 steps"), message
        assert images[0] is not None  # the edited photo came back
    assert second_done - first_done >= 0.9 * DELAY_S  # it ran after the first, not beside it


def test_server_listens_on_loopback_only(slow_server):
    # /proc/net/tcp lists listening sockets as hex "ADDR:PORT" with state 0A (LISTEN);
    # 0100007F is 127.0.0.1. Read from the kernel so no packet leaves loopback.
    port_hex = f"{slow_server.port:04X}"
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if Path(table).exists():
            for row in Path(table).read_text().splitlines()[1:]:
                local, state = row.split()[1], row.split()[3]
                if state == "0A" and local.endswith(":" + port_hex):
                    listening.append(local.split(":")[0])
    assert listening == ["0100007F"], listening


# Runs last in this module: it stops the shared server.
def test_server_writes_only_into_its_temp_folder_and_removes_it(slow_server, tmp_path):
    from gradio_client import handle_file

    user = _client(slow_server.url)
    user.predict(handle_file(str(make_photo(tmp_path / "street.png"))), api_name="/on_upload")
    assert user.predict(format_region(SIGN_BOX, "OK"), 1, 3.0, "ddim", 0, api_name="/edit")[0].startswith("Done")
    root = slow_server.root
    during = sorted(p.name for p in (root / "tmp").iterdir())
    assert len(during) == 1 and during[0].startswith("dreamtext-serve-"), during
    kept = sorted(p.name for p in (root / "tmp" / during[0]).rglob("*.png"))
    assert "street.png" in kept and "dreamtext_edit.png" in kept, kept  # the upload and the result
    assert slow_server.stop() == 0, slow_server.log()
    assert "temporary files removed" in slow_server.log()
    leftovers = {name: sorted(str(p.relative_to(root / name)) for p in (root / name).rglob("*"))
                 for name in ("tmp", "cwd", "home")}
    assert leftovers == {"tmp": [], "cwd": [], "home": []}, leftovers
