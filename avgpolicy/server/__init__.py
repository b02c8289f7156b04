"""The sidecar: avgpolicy as an HTTP service (OpenID AuthZEN 1.0 and avgpolicy's own endpoints).

Needs the ``server`` extra (FastAPI and uvicorn): ``pip install 'avgpolicy[server]'``. Start it with
``avgpolicy serve POLICIES/``; build the ASGI app yourself with ``create_app(PolicyStore(...))``.
See docs/sidecar.md.
"""

from __future__ import annotations

from .app import create_app as create_app
from .run import serve as serve

__all__ = ["create_app", "serve"]
