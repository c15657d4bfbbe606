#!/usr/bin/env python3
"""Checks that scripts/compose-e2e.sh runs against the containerised stack (stdlib only; every
HTTP request is bounded by a 5 s timeout). Exit status 0 = pass, 1 = fail with the reason on
stderr, 2 = usage.

    load-report FILE                      the `saltedcx-sim load --report-json` report: events
                                          accepted and answered, lost = 0, ordering violations = 0
    dashboard PROMETHEUS_URL              every query of the Grafana dashboard runs in Prometheus
                                          and returns data (see NEEDS_AN_INCIDENT)
    scrape-targets PROMETHEUS_URL JOB=N…  at least N targets of each job are up (one look)
    stream MONITOR_URL STREAM             prints `messages last_seq` of a JetStream stream, from
                                          the NATS monitoring endpoint
    counter METRICS_URL NAME [L=V…]       prints the sum of a Prometheus counter's samples that
                                          carry the given labels (0 when there are none)
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HTTP_TIMEOUT_S = 5

# Dashboard panels whose query has no series in a healthy run of this stack: until something has
# gone wrong, or because the stack runs the playbook and not the generative logic.
ONLY_WITH_GENERATIVE = "has data only while workers run LOGIC=generative; this stack runs the playbook"
NEEDS_AN_INCIDENT = {
    "Callback errors (non-2xx)": "has series only once a callback was refused or failed",
    "Generative fallbacks (1h)": ONLY_WITH_GENERATIVE,
    "Generative latency": ONLY_WITH_GENERATIVE,
}


class CheckFailed(Exception):
    """A check did not pass; the message says what was expected and what was found."""


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as response:
        return response.read()


def get_json(url: str) -> dict:
    return json.loads(get(url))


def prometheus_query(base_url: str, expr: str) -> list[dict]:
    """The result vector of an instant query; raises CheckFailed when Prometheus refuses it."""
    url = f"{base_url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    try:
        answer = get_json(url)
    except urllib.error.HTTPError as err:
        raise CheckFailed(f"Prometheus refused `{expr}`: {err.code} {err.read().decode(errors='replace')}") from err
    if answer.get("status") != "success":
        raise CheckFailed(f"Prometheus refused `{expr}`: {answer}")
    return answer["data"]["result"]


def cmd_load_report(args: list[str]) -> None:
    report = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    print(
        "load report: {accepted} accepted, {answered} answered in time, {deadline_misses} deadline misses, "
        "{not_accepted} not accepted, lost {lost}, ordering violations {ordering_violations}, "
        "duplicate callbacks {duplicate_callbacks}, errors {errors}".format(**report)
    )
    problems = []
    if report["accepted"] == 0 or report["answered"] == 0:
        problems.append("no event was accepted and answered: the run proves nothing")
    if report["lost"] != 0:
        problems.append(f"lost = {report['lost']} (accepted events never answered nor counted as expired)")
    if report["ordering_violations"] != 0:
        problems.append(f"ordering violations = {report['ordering_violations']}")
    if problems:
        raise CheckFailed("; ".join(problems))


def dashboard_queries() -> list[dict]:
    """The dashboard's queries with sample values for Grafana's variables (check-deploy.py)."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts/check-deploy.py"), "dashboard-queries"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def panel_title(where: str) -> str:
    match = re.search(r"panel '(.*)' [A-Z]+$", where)
    return match.group(1) if match else where


def cmd_dashboard(args: list[str]) -> None:
    base_url = args[0]
    queries = dashboard_queries()
    if not queries:
        raise CheckFailed("the dashboard has no queries")
    empty, expected_empty = [], []
    for query in queries:
        result = prometheus_query(base_url, query["expr"])
        values = [float(sample["value"][1]) for sample in result]
        if values and not all(math.isnan(v) for v in values):
            continue
        if panel_title(query["where"]) in NEEDS_AN_INCIDENT:
            expected_empty.append(query)
        else:
            empty.append(query)
    with_data = len(queries) - len(empty) - len(expected_empty)
    print(f"dashboard queries: {len(queries)} run, {with_data} with data, "
          f"{len(expected_empty)} empty as expected in a healthy run, {len(empty)} without data")
    for query in expected_empty:
        print(f"  empty as expected: {query['where']} ({NEEDS_AN_INCIDENT[panel_title(query['where'])]})")
    if empty:
        raise CheckFailed("queries without data (no series, or only NaN):\n" + "\n".join(
            f"  {q['where']}: {q['expr']}" for q in empty))


def cmd_scrape_targets(args: list[str]) -> None:
    base_url, wanted = args[0], dict(arg.split("=", 1) for arg in args[1:])
    up = {}
    for sample in prometheus_query(base_url, "sum by (job) (up == 1)"):
        up[sample["metric"].get("job", "")] = int(float(sample["value"][1]))
    missing = {job: f"{up.get(job, 0)} of {count}" for job, count in wanted.items() if up.get(job, 0) < int(count)}
    if missing:
        raise CheckFailed(f"targets up: {missing}")
    print("targets up: " + ", ".join(f"{job} {up[job]}" for job in sorted(wanted)))


def cmd_stream(args: list[str]) -> None:
    monitor_url, name = args
    jsz = get_json(f"{monitor_url}/jsz?streams=true")
    for account in jsz.get("account_details", []) or []:
        for stream in account.get("stream_detail", []) or []:
            if stream.get("name") == name:
                state = stream.get("state", {})
                print(state.get("messages", 0), state.get("last_seq", 0))
                return
    raise CheckFailed(f"stream {name} not found at {monitor_url}/jsz")


def cmd_counter(args: list[str]) -> None:
    url, name, labels = args[0], args[1], dict(arg.split("=", 1) for arg in args[2:])
    total = 0.0
    line_re = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
    for line in get(url).decode().splitlines():
        match = line_re.match(line)
        if not match or match.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(match.group(3))
    print(int(total) if total.is_integer() else total)


COMMANDS = {
    "load-report": (cmd_load_report, 1),
    "dashboard": (cmd_dashboard, 1),
    "scrape-targets": (cmd_scrape_targets, 2),
    "stream": (cmd_stream, 2),
    "counter": (cmd_counter, 2),
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS or len(sys.argv) - 2 < COMMANDS[sys.argv[1]][1]:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    command, _ = COMMANDS[sys.argv[1]]
    try:
        command(sys.argv[2:])
    except CheckFailed as err:
        print(f"{sys.argv[1]}: {err}", file=sys.stderr)
        sys.exit(1)
    except (OSError, ValueError, KeyError) as err:
        print(f"{sys.argv[1]}: {type(err).__name__}: {err}", file=sys.stderr)
        sys.exit(1)
