"""Turns the shipped deploy/nginx/nginx.conf into a loopback variant for the scale test.

Only what must differ on one machine is rewritten, and every rewrite must match exactly
as often as expected (so a changed nginx.conf fails loudly instead of testing something
else): upstream servers (the Rasa Service's DNS name -> 127.0.0.1 ports, without
`resolve`, which Debian's nginx 1.22 lacks), the DNS resolver include, the two listen
ports, /tmp paths, the widget folders and the log destinations. Limits, routing, rate
limits, headers and timeouts stay as shipped.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping, Sequence

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "nginx.conf"
RASA_HOST = "rasa.hip-triage.svc.cluster.local:5005"
UPSTREAM_SERVER = re.compile(rf"^(\s*)server {re.escape(RASA_HOST)} resolve ([^;]*);$", re.M)


def _replace(text: str, old: str, new: str, count: int) -> str:
    found = text.count(old)
    if found != count:
        raise ValueError(f"nginx.conf: expected {count} x {old!r}, found {found}")
    return text.replace(old, new)


def loopback_variant(
    text: str,
    *,
    rasa_ports: Sequence[int],
    public_port: int,
    internal_port: int,
    workdir: Path,
    widget_dirs: Mapping[str, Path],
) -> str:
    """Returns nginx.conf rewritten to run on 127.0.0.1 from `workdir`.

    `widget_dirs` maps "demo", "src" and "vendor" to the folders nginx serves.
    """
    servers = UPSTREAM_SERVER.findall(text)
    if len(servers) != 2:
        raise ValueError(
            f"nginx.conf: expected 2 upstream `server {RASA_HOST} resolve`, got {servers}"
        )

    def upstreams(match: re.Match) -> str:
        indent, params = match.group(1), match.group(2)
        return "\n".join(f"{indent}server 127.0.0.1:{port} {params};" for port in rasa_ports)

    text = UPSTREAM_SERVER.sub(upstreams, text)
    text = _replace(text, "    include /etc/nginx/resolver.conf;\n", "", 1)
    text = _replace(text, "listen 8080;", f"listen 127.0.0.1:{public_port};", 1)
    text = _replace(text, "listen 8081;", f"listen 127.0.0.1:{internal_port};", 1)
    text = _replace(text, "pid /tmp/nginx.pid;", f"pid {workdir}/nginx.pid;", 1)
    for temp in ("client_temp", "proxy_temp", "fastcgi_temp", "uwsgi_temp", "scgi_temp"):
        text = _replace(text, f" /tmp/{temp};", f" {workdir}/{temp};", 1)
    text = _replace(text, "error_log /dev/stderr warn;", f"error_log {workdir}/error.log warn;", 1)
    text = _replace(
        text,
        "access_log /dev/stdout upstreamlog;",
        f"access_log {workdir}/access.log upstreamlog;",
        1,
    )
    for name in ("demo", "src", "vendor"):
        folder = str(widget_dirs[name]).rstrip("/")
        text = _replace(text, f"/srv/widget/{name}/;", f"{folder}/;", 1 if name != "demo" else 0)
        text = _replace(text, f"/srv/widget/{name};", f"{folder};", 1 if name == "demo" else 0)
    rest = text.replace(str(workdir), "<workdir>")
    for folder in widget_dirs.values():  # the checkout itself may live under /tmp
        rest = rest.replace(str(folder).rstrip("/"), "<widget>")
    if "/tmp/" in rest or "/srv/" in rest or RASA_HOST in rest or "resolve " in rest:
        raise ValueError("nginx.conf: a path or host was left unrewritten")
    return text
