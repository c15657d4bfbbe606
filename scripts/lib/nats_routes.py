"""Runs the rendered production NATS configuration as a three-server cluster on loopback and checks
its routes: they form over mutual TLS, and a server whose certificate comes from another CA is
refused by the members (the stranger itself trusts both CAs, so the refusal is theirs). Called by scripts/check-deploy.py (`nats-routes`); stdlib only.

The configuration is the one scripts/check-deploy.py wrote for `nats-server -t` (the rendered
ConfigMap with its certificate paths moved below a work directory); only what cannot work on one
machine is changed: the ports, the route URLs (localhost instead of nats-N.nats-headless, a name
the certificate also holds), the JetStream and pid paths, and the certificate directory of the
server playing the stranger.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

START_TIMEOUT = 20.0
REFUSAL_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def node_config(base: str, node: dict, routes: list[int], tls_dir: str, certificates: str, work: Path) -> str:
    text = re.sub(r"(?m)^port: \d+", f"port: {node['client']}", base)
    text = re.sub(r"(?m)^http_port: \d+", f"http_port: {node['http']}", text)
    text = re.sub(r"(?m)^(\s+)port: 6222\b", lambda m: f"{m.group(1)}port: {node['cluster']}", text)
    urls = "\n".join(f"    nats://localhost:{port}" for port in routes)
    text, count = re.subn(r"routes: \[[^\]]*\]", lambda _: f"routes: [\n{urls}\n  ]", text)
    if count != 1:
        raise ValueError("the configuration has no `routes: [...]` list")
    text = text.replace(certificates, tls_dir)
    text = re.sub(r"store_dir: \S+", f"store_dir: {work / node['name']}", text)
    return re.sub(r"pid_file: \S+", f"pid_file: {work / (node['name'] + '.pid')}", text)


def get_json(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
        return json.load(response)


def route_names(node: dict) -> set[str]:
    try:
        return {r.get("remote_name") for r in get_json(node["http"], "/routez").get("routes", [])}
    except OSError:
        return set()


def stranger_directory(certificates: Path, other: Path, work: Path) -> str:
    """A certificate and key of another CA, trusting both CAs."""
    target = work / "stranger-tls"
    target.mkdir(exist_ok=True)
    for name in ("tls.crt", "tls.key"):
        (target / name).write_bytes((other / name).read_bytes())
    (target / "ca.crt").write_bytes((certificates / "ca.crt").read_bytes() + (other / "ca.crt").read_bytes())
    return str(target)


def check(config_dir: Path, server: str, certificates: str, other_ca: str, env: dict) -> list[str]:
    """Problems found; empty when the routes behave. `certificates` is the directory the
    configuration names; `other_ca` holds a certificate and key of another CA (and its ca.crt)."""
    base = (config_dir / "nats.conf").read_text(encoding="utf-8")
    work = config_dir.parent / "routes"
    work.mkdir(exist_ok=True)
    stranger_certificates = stranger_directory(Path(certificates), Path(other_ca), work)
    nodes = [{"name": f"node{i}", "client": free_port(), "http": free_port(), "cluster": free_port()} for i in range(4)]
    members, stranger = nodes[:3], nodes[3]
    processes = []
    try:
        for node in nodes:
            tls_dir = stranger_certificates if node is stranger else certificates
            routes = [m["cluster"] for m in members if m is not node]
            path = config_dir / f"{node['name']}.conf"  # beside nats.conf, so its includes resolve
            path.write_text(node_config(base, node, routes, tls_dir, certificates, work), encoding="utf-8")
            log = open(work / f"{node['name']}.log", "w", encoding="utf-8")
            processes.append(subprocess.Popen([server, "-c", str(path)], stdout=log, stderr=subprocess.STDOUT,
                                              env={**os.environ, **env, "SERVER_NAME": node["name"]}))
            if node is members[-1]:
                problems = wait_for_mesh(members, processes, work)
                if problems:
                    return problems
        return wait_for_refusal(members, stranger, work)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_for_mesh(members: list[dict], processes: list, work: Path) -> list[str]:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        for member, process in zip(members, processes):
            if process.poll() is not None:
                log = (work / f"{member['name']}.log").read_text(encoding="utf-8", errors="replace")
                return [f"{member['name']} exited: {log.strip()[-500:]}"]
        if all(route_names(m) >= {o["name"] for o in members if o is not m} for m in members):
            cluster = get_json(members[0]["http"], "/varz").get("cluster", {})
            if cluster.get("tls_required") and cluster.get("tls_verify"):
                return []
            return [f"routes formed without mutual TLS: {cluster}"]
        time.sleep(0.2)
    return [f"the three servers did not form their routes within {START_TIMEOUT:.0f}s: "
            + ", ".join(f"{m['name']} sees {sorted(route_names(m))}" for m in members)]


def wait_for_refusal(members: list[dict], stranger: dict, work: Path) -> list[str]:
    """Every member refuses the stranger's certificate (a failed TLS handshake in its log) and
    none routes to it."""
    deadline = time.monotonic() + REFUSAL_TIMEOUT
    refused: set[str] = set()
    while time.monotonic() < deadline:
        joined = [m["name"] for m in members if stranger["name"] in route_names(m)]
        if joined:
            return [f"{stranger['name']}, with another CA's certificate, joined {joined}"]
        for member in members:
            log = (work / f"{member['name']}.log").read_text(encoding="utf-8", errors="replace")
            if re.search(r"TLS route handshake error: .*(certificate|unknown authority)", log):
                refused.add(member["name"])
        if len(refused) == len(members):
            return []
        time.sleep(0.2)
    missing = sorted({m["name"] for m in members} - refused)
    return [f"{', '.join(missing)} logged no refusal of {stranger['name']}'s certificate within {REFUSAL_TIMEOUT:.0f}s"]
