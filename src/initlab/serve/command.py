"""Explore initialisation in the browser: a local web page that trains as you watch.

`initlab serve [--host 127.0.0.1] [--port 8765] [--open]` starts the explorer (initlab.serve.app)
and prints its address. It listens on 127.0.0.1, this computer only, unless --host says otherwise.
The web stack (Starlette, uvicorn) is imported only here, when the command runs, so that the
`initlab` command stays light: `pip install -e ".[explore]"` installs it.
"""

import errno
import ipaddress
import socket
import sys
import threading
import time
import webbrowser

from initlab import checks

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def add_arguments(parser):
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help="the address to listen on (default 127.0.0.1: this computer only; "
        "0.0.0.0 lets other computers reach it)",
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="the port (default 8765; 0 picks a free one)"
    )
    parser.add_argument("--open", action="store_true", help="open the page in the web browser")


def run(args):
    port = checks.integer("--port", args.port, minimum=0)
    if port > 65535:
        raise ValueError(f"--port must be an integer from 0 to 65535, got {port}")
    host = args.host
    try:
        import uvicorn

        from initlab.serve.app import LOOPBACK_HOSTS, create_app
    except ImportError as error:
        print(
            f"initlab serve: error: the explorer needs its web stack ({error.name} is missing): "
            f"pip install 'initlab[explore]'",
            file=sys.stderr,
        )
        return 2
    listener = _listen(host, port)  # bound here, so a busy port fails before anything starts
    port = listener.getsockname()[1]
    url = f"http://{_url_host(host)}:{port}/"
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(allowed_hosts(host, LOOPBACK_HOSTS)),
            log_level="warning",
            ws_max_size=64 * 1024,
            lifespan="off",
        )
    )
    print(f"initlab explorer: {url}", flush=True)
    print(_audience(host) + " Ctrl-C stops it.", flush=True)
    if args.open:
        threading.Thread(target=_open_when_started, args=(server, url), daemon=True).start()
    server.run(sockets=[listener])
    return 0


def _listen(host, port):
    """A listening socket on (host, port); ValueError in words if the address cannot be used."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
    except OSError as error:
        reason = error.strerror or error
        if error.errno == errno.EADDRINUSE:
            advice = "choose another port (0 picks a free one)"
        elif error.errno in (errno.EACCES, errno.EPERM):  # a port below 1024, for most users
            advice = "choose a port of 1024 or above (0 picks a free one)"
        else:
            advice = "expected an address of this computer, such as 127.0.0.1 (the default)"
        raise ValueError(
            f"cannot listen on --host {host!r} --port {port}: {reason}; {advice}"
        ) from None
    listener.listen(64)
    return listener


def _url_host(host):
    if host in ("0.0.0.0", "::", ""):  # every address: this computer's own is one of them
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def is_loopback(host):
    """Whether `host` is an address (or name) only this computer reaches."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def allowed_hosts(host, loopback_names):
    """The names (Host headers) a server listening on `host` answers to: on a loopback address,
    this computer's `loopback_names` and `host`; on any other, every name ("*"), since whoever
    reaches the server may use it anyway."""
    if not is_loopback(host):
        return ("*",)
    return tuple(dict.fromkeys((*loopback_names, _url_host(host))))


def _audience(host):
    """Who can reach the page, in words."""
    if is_loopback(host):
        return f"Listening on {host} only: this computer can open it, no other."
    where = host or "every address"
    return f"Listening on {where}: any computer that can reach this one can open it and train here."


def _open_when_started(server, url):
    for _ in range(200):
        if server.started:
            webbrowser.open(url)
            return
        time.sleep(0.05)
