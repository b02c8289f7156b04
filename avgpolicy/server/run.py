"""``avgpolicy serve``: load the policy folder, bind the socket, run uvicorn until SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Sequence
from typing import Any, TextIO

log = logging.getLogger("avgpolicy.server")


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free port chosen by the system)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def open_export_log(target: str) -> Any:
    """``avgpolicy.ExportLog(target)``: an SQLite file or a postgresql:// URL."""
    import avgpolicy

    try:
        export_log = avgpolicy.ExportLog
    except AttributeError:
        raise ValueError("this avgpolicy has no export log (avgpolicy.ExportLog) yet; drop --export-log") from None
    return export_log(target)


def serve(paths: Sequence[str | os.PathLike[str]], *, host: str = "127.0.0.1", port: int = 8181,
          export_log: str | None = None, token_file: str | None = None, pseudonym_key_file: str | None = None,
          timezone: str | None = None, reload_interval: float = 2.0, max_body: int | None = None,
          offload_bytes: int | None = None, public_url: str | None = None, access_log: bool = False,
          announce: TextIO | None = None) -> None:
    """Serve the policy set in ``paths`` until interrupted (see docs/sidecar.md).

    Raises ``PolicyError`` when the set does not load, ``OSError`` when the address cannot be bound,
    ``ValueError`` for a bad setting; all before anything is served.
    """
    import uvicorn

    from ..store import PolicyStore
    from .app import DEFAULT_MAX_BODY, DEFAULT_OFFLOAD_BYTES, create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    load: dict[str, Any] = {}
    if timezone is not None:
        load["timezone"] = timezone
    if pseudonym_key_file is not None:
        with open(pseudonym_key_file, "rb") as fh:
            load["pseudonym_key"] = fh.read().strip()
    store = PolicyStore(*paths, **load)
    del load
    log_target = open_export_log(export_log) if export_log is not None else None
    app = create_app(store, token_file=token_file, export_log=log_target,
                     max_body=DEFAULT_MAX_BODY if max_body is None else max_body,
                     offload_bytes=DEFAULT_OFFLOAD_BYTES if offload_bytes is None else
                     (None if offload_bytes < 0 else offload_bytes),
                     public_url=public_url)
    sock = bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    config = uvicorn.Config(app, log_level="info", access_log=access_log, server_header=False,
                            lifespan="off", timeout_keep_alive=30)
    server = uvicorn.Server(config)
    if reload_interval > 0:
        store.start(reload_interval)
    print(f"avgpolicy serve: listening on http://{shown}:{bound_port} (policy {store.version}"
          f"{', token required' if token_file else ''})", file=announce or sys.stderr, flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        store.stop()
        sock.close()
