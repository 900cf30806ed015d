"""Serve the dashboard: loopback only unless an address is given, and then not without
restrictions.

On 127.0.0.1 (the default) only this machine can connect. On any other address the server
needs the browser origins it will accept (``--allow-websocket-origin HOST:PORT``) and a password:
``--token`` (or ``WORKBENCH_DASHBOARD_TOKEN``), else one generated and printed at start; the login
page takes any user name with it (Panel's basic auth).
"""

from __future__ import annotations

import os
import secrets

from workbench.errors import InputError

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def serve(address: str = "127.0.0.1", port: int = 5006, *, show: bool = False,
          allow_origin: list[str] | None = None, token: str | None = None) -> None:
    import panel as pn

    from .app import create_app

    auth: dict = {}
    if address in LOOPBACK:
        allow_origin = allow_origin or [f"127.0.0.1:{port}", f"localhost:{port}"]
    else:
        if not allow_origin:
            raise InputError("allow_websocket_origin",
                             f"serving on {address} needs --allow-websocket-origin HOST:{port} for each "
                             "address browsers will use (any origin would let every page on the web in)")
        token = token or os.environ.get("WORKBENCH_DASHBOARD_TOKEN") or secrets.token_urlsafe(18)
        auth = {"basic_auth": token, "cookie_secret": secrets.token_urlsafe(32)}
        print(f"dashboard password (any user name): {token}", flush=True)
    host = "127.0.0.1" if address in ("0.0.0.0", "::") else address
    print(f"workbench dashboard on http://{host}:{port}", flush=True)
    pn.serve({"/": create_app}, address=address, port=port, show=show, title="workbench",
             websocket_origin=allow_origin, threaded=False, print_url=False, **auth)
