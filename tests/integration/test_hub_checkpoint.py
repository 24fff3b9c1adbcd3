"""A gated hub model is downloaded once by the driver, with the token, into shared storage; workers load the file.

The hub is a loopback server speaking the part of the Hugging Face protocol ``hf_hub_download`` uses (HEAD then
GET on ``/{repo}/resolve/{revision}/{file}``, with commit and ETag headers); ``HF_ENDPOINT`` points
huggingface_hub at it, as a user's mirror would. It answers 401 without the right token, as a gated repo does.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TOKEN = "hf_" + "t" * 30

FETCH = textwrap.dedent("""
    import sys
    from pathlib import Path
    from dist_spk.errors import DistSpkError
    from dist_spk.segmentation.model import build_model, fetch_hub_checkpoint, is_hub_id
    assert is_hub_id("acme/segmentation") and not is_hub_id("random")
    try:
        path = fetch_hub_checkpoint("acme/segmentation", token_env="HF_TOKEN", cache_dir=Path(sys.argv[1]))
    except DistSpkError as err:
        print("ERROR:", err)
        raise SystemExit(0)
    print("PATH:", path)
    from dist_spk.config import load_config
    model = build_model(load_config("seg").model, None, local_init=str(path))
    print("MODEL:", type(model).__name__)
""")


def _hub(payload: bytes, seen: list[str]) -> ThreadingHTTPServer:
    etag = hashlib.sha256(payload).hexdigest()

    class Hub(BaseHTTPRequestHandler):
        def _answer(self, body: bool) -> None:
            seen.append(f"{self.command} {self.path} {self.headers.get('Authorization', '')}")
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self.send_response(401)
                self.send_header("X-Error-Code", "GatedRepo")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.path != "/acme/segmentation/resolve/main/pytorch_model.bin":
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("X-Repo-Commit", "a" * 40)
            self.send_header("ETag", f'"{etag}"')
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if body:
                self.wfile.write(payload)

        def do_HEAD(self):  # noqa: N802 - http.server's naming
            self._answer(body=False)

        def do_GET(self):  # noqa: N802
            self._answer(body=True)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _fetch(server, cache, *, token: str | None) -> str:
    env = {"PATH": "/usr/bin:/bin", "HF_ENDPOINT": f"http://127.0.0.1:{server.server_address[1]}",
           "HF_HUB_DISABLE_TELEMETRY": "1", "HOME": str(cache.parent)}
    if token:
        env["HF_TOKEN"] = token
    result = subprocess.run([sys.executable, "-c", FETCH, str(cache)], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_the_driver_downloads_a_gated_checkpoint_once_and_workers_load_the_local_file(seg_run, tmp_path):
    run_dir, _ = seg_run
    payload = (run_dir / "checkpoints" / "best.ckpt").read_bytes()
    seen: list[str] = []
    server = _hub(payload, seen)
    try:
        refused = _fetch(server, tmp_path / "hub-a", token=None)
        assert "ERROR: model.init: cannot download 'acme/segmentation' from the model hub" in refused
        assert "HF_TOKEN is not set" in refused
        fetched = _fetch(server, tmp_path / "hub-b", token=TOKEN)
    finally:
        server.shutdown()
    path = fetched.split("PATH: ")[1].splitlines()[0]
    assert path.startswith(str(tmp_path / "hub-b")) and Path(path).read_bytes() == payload
    assert "MODEL: PyanNet" in fetched
    assert any(line.startswith("GET /acme/segmentation/resolve/main/pytorch_model.bin Bearer hf_")
               for line in seen)
