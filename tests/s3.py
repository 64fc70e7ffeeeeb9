"""An S3-compatible server on loopback for tests: moto's server mode, in this process.

moto's `ThreadedMotoServer` is a real HTTP server speaking the S3 protocol (werkzeug on a
thread), so s3fs, botocore's request signing, presigned URLs and Range requests are all
exercised for real. Nothing leaves the machine: the server binds 127.0.0.1 on a free
port, credentials and region are given explicitly, and the AWS_* environment and config
files are hidden so no profile, endpoint or instance-metadata lookup can point elsewhere.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

KEY_ID = "reelcast-test"
SECRET = "reelcast-test-secret"
REGION = "us-east-1"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str

    def url(self, prefix: str) -> str:
        """`s3://<bucket>/<prefix>`."""
        return f"s3://{self.bucket}/{prefix}"

    def options(self) -> dict[str, str]:
        """RenderStore's keyword arguments for this server."""
        return {"endpoint_url": self.endpoint, "key_id": KEY_ID, "secret": SECRET, "region": REGION}

    def settings_env(self, prefix: str) -> dict[str, str]:
        """REELCAST_* variables that point the render store at `prefix` on this server."""
        return {
            "REELCAST_RENDER_STORE": self.url(prefix),
            "REELCAST_RENDER_STORE_ENDPOINT_URL": self.endpoint,
            "REELCAST_RENDER_STORE_KEY_ID": KEY_ID,
            "REELCAST_RENDER_STORE_SECRET": SECRET,
            "REELCAST_RENDER_STORE_REGION": REGION,
        }


@contextlib.contextmanager
def moto_s3(bucket: str = "reelcast-renders") -> Iterator[S3Server]:
    """A moto S3 server on 127.0.0.1 with one empty bucket; stopped at the end."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    with pytest.MonkeyPatch.context() as env:
        for name in list(os.environ):
            if name.startswith("AWS_"):
                env.delenv(name)
        env.setenv("AWS_CONFIG_FILE", os.devnull)
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        env.setenv("AWS_EC2_METADATA_DISABLED", "true")
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            endpoint = f"http://{host}:{port}"
            boto3.client(
                "s3",
                endpoint_url=endpoint,
                aws_access_key_id=KEY_ID,
                aws_secret_access_key=SECRET,
                region_name=REGION,
            ).create_bucket(Bucket=bucket)
            yield S3Server(endpoint, bucket)
        finally:
            server.stop()
