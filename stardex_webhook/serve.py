"""Run the function locally with safe defaults: ``python -m stardex_webhook.serve [--host H] [--port P]``.

- No Stardex key configured → ``DRY_RUN=1``: webhooks are verified, mapped and validated, and the
  answer shows the body that would have been sent; Stardex is never called.
- A source without a signing key gets the published local demo key, so
  ``python -m stardex_webhook.send_sample <source>`` works at once. Real keys in the environment win.

The settings are checked first (a bad one is named and nothing starts), then the port (one in use
is named, with the process holding it when this machine tells); then it runs the same server
Cloud Functions runs, ``functions-framework --source=main.py --target=handle_webhook``, on
127.0.0.1 (only this machine can reach it; ``--host 0.0.0.0`` opens it) and ``$PORT`` or 8080.
"""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys
from pathlib import Path

from .config import signing_key_name
from .send_sample import with_local_signing_keys

MAIN_PY = Path(__file__).resolve().parent.parent / "main.py"


def local_environment(environ: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The environment for a local run and a note for each default it filled in."""
    env = dict(environ)
    notes = []
    if not (env.get("STARDEX_API_KEY") or env.get("STARDEX_API_KEY_SECRET")) and not env.get("DRY_RUN"):
        env["DRY_RUN"] = "1"
        notes.append("no STARDEX_API_KEY: running with DRY_RUN=1 (nothing is sent to Stardex)")
    env, filled = with_local_signing_keys(env)
    notes += [f"no {signing_key_name(source)}: using the local demo key (never use it in production)" for source in filled]
    return env, notes


def port_taken(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on, or None when it can. Checked before the server
    starts, so that ``serve`` never announces a URL it cannot serve (gunicorn would only print a
    traceback per worker)."""
    if port == 0:
        return None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds: TIME_WAIT is no obstacle
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                return f"{host}:{port} cannot be listened on ({error.strerror})"
            holder = listening_process(port)
            return f"{host}:{port} is already in use" + (f" by {holder}" if holder else "") + \
                " (stop it, or choose another port with --port)"
    return None


def free_port(host: str) -> int:
    """A port nothing listens on now, for ``--port 0``: the server would take one without saying which."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def listening_process(port: int) -> str | None:
    """``PID n (command)`` of the process listening on ``port``, read from /proc (Linux), when it
    is one this user may see; None elsewhere."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(_link(fd) in inodes for fd in fd_dir.iterdir()):
                command = (fd_dir.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                return f"PID {fd_dir.parent.name} ({command[:120]})"
        except OSError:  # another user's process, or one that just ended
            continue
    return None


def _link(fd: Path) -> str | None:
    """Where ``fd`` points; None for one closed while the directory was read (the process goes on)."""
    try:
        return os.readlink(fd)
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=os.environ.get("PORT", "8080"), help="default: $PORT or 8080")
    args = parser.parse_args(argv)
    env, notes = local_environment(dict(os.environ))

    from .pipeline import Pipeline
    from .errors import ConfigurationError

    try:
        Pipeline.from_environment(env)  # the same checks as the server's start, before any promise
    except ConfigurationError as error:
        print(f"serve: cannot start: {error}", file=sys.stderr)
        return 2
    taken = port_taken(args.host, int(args.port))
    if taken:
        print(f"serve: cannot start: {taken}", file=sys.stderr)
        return 2
    args.port = int(args.port) or free_port(args.host)  # 0: a free one, chosen here so that it can be named
    for note in notes:
        print(f"serve: {note}", file=sys.stderr)
    print(f"serve: webhooks at http://{args.host}:{args.port}/<source>, health at /healthz", file=sys.stderr)
    command = [
        sys.executable, "-m", "functions_framework", f"--source={MAIN_PY}", "--target=handle_webhook",
        f"--host={args.host}", f"--port={args.port}",
    ]
    os.execvpe(sys.executable, command, env)


if __name__ == "__main__":
    sys.exit(main())
