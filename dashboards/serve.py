"""Serve the dashboard: loopback only unless an address is given."""

from __future__ import annotations

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def serve(address: str = "127.0.0.1", port: int = 5006, show: bool = False,
          allow_origin: list[str] | None = None) -> None:
    import panel as pn

    from .app import create_app

    if allow_origin is None:
        if address in LOOPBACK:
            allow_origin = [f"127.0.0.1:{port}", f"localhost:{port}"]
        else:
            print(f"serving on {address}: any origin may connect; pass --allow-websocket-origin "
                  f"HOST:{port} to restrict it")
            allow_origin = ["*"]
    print(f"workbench dashboard on http://{'127.0.0.1' if address == '0.0.0.0' else address}:{port}",
          flush=True)
    pn.serve({"/": create_app}, address=address, port=port, show=show, title="workbench",
             websocket_origin=allow_origin, threaded=False, print_url=False)
