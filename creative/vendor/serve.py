"""Serving a small ASGI app on loopback with uvicorn: in a thread, or as an asyncio task."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp

_START_TIMEOUT_S = 10.0


def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket (port 0: a free port chosen by the OS)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def make_server(app: ASGIApp) -> uvicorn.Server:
    """A quiet uvicorn server that leaves the process's logging configuration alone."""
    config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=1
    )
    return uvicorn.Server(config)


class ServerThread:
    """Runs `app` on `host:port` in a daemon thread; a context manager.

    `url` is known once started (port 0 picks a free port).
    """

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self) -> ServerThread:
        """Bind, start serving, and return once the server accepts connections."""
        sock = bind(self._host, self._port)
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        self._server = make_server(self._app)
        server = self._server
        self._thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])),
            name=f"asgi-{port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True  # loopback test servers: do not linger
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ServerTask:
    """Runs `app` on `host:port` as a task of the running event loop."""

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.url = ""

    async def start(self) -> ServerTask:
        """Bind, start serving, and return once the server accepts connections."""
        sock = bind(self._host, self._port)
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        self._server = make_server(self._app)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        async with asyncio.timeout(_START_TIMEOUT_S):
            while not self._server.started:
                if self._task.done():
                    self._task.result()  # raises what stopped it
                    raise RuntimeError(f"the server on {self.url} stopped at start")
                await asyncio.sleep(0.01)
        return self

    async def stop(self) -> None:
        """Stop serving and wait for the task to end."""
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True  # loopback test servers: do not linger
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, timeout=5)
        self._server = self._task = None
