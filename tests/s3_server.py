"""An S3-compatible server on loopback (moto in server mode, as Ray's own storage tests use), and the environment that
points pyarrow, boto3 and every process started with it at that server."""

from __future__ import annotations

import contextlib
import logging
import os
import urllib.request
from collections.abc import Iterator

from tests.ports import free_port

BUCKET = "dist-spk-test"


@contextlib.contextmanager
def s3_server() -> Iterator[dict[str, str]]:
    """Start the server with one bucket; yield the environment variables that reach it (fake credentials)."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret-never-written",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    try:
        # moto keeps its buckets per process, across servers: start empty
        urllib.request.urlopen(urllib.request.Request(f"{env['AWS_ENDPOINT_URL']}/moto-api/reset", method="POST"))
        _client(env).create_bucket(Bucket=BUCKET)
        yield env
    finally:
        server.stop()


def _client(env: dict[str, str]):
    import boto3

    return boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


def keys(env: dict[str, str], prefix: str = "") -> list[str]:
    """Every object key under ``prefix`` in the test bucket."""
    pages = _client(env).get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def read(env: dict[str, str], key: str) -> bytes:
    return _client(env).get_object(Bucket=BUCKET, Key=key)["Body"].read()


def with_env(env: dict[str, str]) -> dict[str, str]:
    """This process's environment plus the server's (for subprocesses)."""
    return {**os.environ, **env}
