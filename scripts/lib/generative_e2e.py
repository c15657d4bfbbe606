#!/usr/bin/env python3
"""The question/answer part of scripts/generative-e2e.sh: sends each question of
tests/generative-e2e/questions.json through the running pipeline with `saltedcx-sim send --json`
(one event, one conversation), reads what the worker's metrics counted for it, and reports
answer latency, tokens per second, the share answered by the model and the fallbacks by reason,
answers after `expires`, and groundedness.

Groundedness: an answer the model wrote is grounded when it states the passage's fact (the
case's `fact` pattern) or admits not knowing; the playbook's own answers (fallbacks) are its
texts, grounded by construction, and are counted apart.

    generative_e2e.py --sim BIN --ingress-url URL --listen ADDR --metrics URL
                      --cases FILE [--smoke] [--budget 20s] [--report FILE]

Exit status 1 when an event was not answered before its deadline (late, expired or refused).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ADMITS = re.compile(
    r"don'?t know|do not know|not sure|no information|can'?t help|cannot help|unable to|"
    r"colleague|not able to|couldn'?t find|don'?t have|do not have|can'?t answer|cannot answer|"
    r"no sé|nevím|weiß (ich )?nicht|je ne sais pas",
    re.IGNORECASE,
)
METRIC = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def scrape(url: str) -> dict[str, float]:
    """The worker's metrics as {'name{labels}': value}."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        match = METRIC.match(line)
        if match and match.group(1).startswith("yourlogic_generative"):
            values[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return values


def delta(before: dict[str, float], after: dict[str, float], prefix: str) -> dict[str, float]:
    """What changed for the series starting with `prefix`."""
    return {
        key: after[key] - before.get(key, 0.0)
        for key in after
        if key.startswith(prefix) and after[key] - before.get(key, 0.0) > 0
    }


def label(key: str, name: str) -> str:
    match = re.search(name + r'="([^"]*)"', key)
    return match.group(1) if match else "?"


def event(case: dict) -> dict:
    """A customer message of a new conversation whose greeting is already done."""
    now = datetime.now(timezone.utc)
    stamp = lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"  # noqa: E731
    return {
        "requestId": str(uuid.uuid4()),
        "accountId": "e2e",
        "time": stamp(now),
        "expires": stamp(now + timedelta(seconds=20)),
        "region": "eu",
        "trigger": {
            "type": "MESSAGE",
            "participantType": "CUSTOMER",
            "content": case["question"],
            "contentCustomer": case["question"],
            "languageCustomer": case["language"],
        },
        "conversation": {
            "pid": f"e2e-{case['id']}-{uuid.uuid4().hex[:8]}",
            "status": "IN_PROGRESS",
            "needsHelp": False,
            "custom": {"yl": {"p": "a"}},
        },
        "engagements": [],
        "turns": [],
    }


def run_case(args, case: dict, work: Path) -> dict:
    path = work / f"{case['id']}.json"
    path.write_text(json.dumps(event(case)))
    before = scrape(args.metrics)
    out = subprocess.run(
        [args.sim, "send", "--json", "--listen", args.listen, "--ingress-url", args.ingress_url,
         "--budget", args.budget, str(path)],
        capture_output=True, text=True, timeout=120,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    sent = json.loads(lines[-1]) if lines else {"outcome": "invalid", "error": out.stderr[-500:]}
    # The worker counts after it answered: give the scrape a moment to see it.
    for _ in range(20):
        after = scrape(args.metrics)
        if delta(before, after, "yourlogic_generative_requests_total"):
            break
        time.sleep(0.1)
    requests = delta(before, after, "yourlogic_generative_requests_total")
    fallbacks = delta(before, after, "yourlogic_generative_fallbacks_total")
    outcome = label(next(iter(requests), ""), "outcome") if requests else "not_asked"
    reason = label(next(iter(fallbacks), ""), "reason") if fallbacks else None
    tokens = delta(before, after, "yourlogic_generative_tokens_total")
    completion = sum(v for k, v in tokens.items() if 'kind="completion"' in k)
    seconds = delta(before, after, "yourlogic_generative_seconds_sum")
    callback = sent.get("callback") or {}
    body = callback.get("body", callback) if isinstance(callback, dict) else {}
    actions = body.get("actions", []) if isinstance(body, dict) else []
    answer = " ".join(a.get("content", "") for a in actions if a.get("type") == "MESSAGE")
    grounded = None
    if outcome == "answered":
        fact = case.get("fact")
        grounded = bool(ADMITS.search(answer)) or bool(fact and re.search(fact, answer, re.I))
    return {
        "id": case["id"],
        "question": case["question"],
        "sent": sent.get("outcome"),
        "latency_ms": sent.get("latencyMs"),
        "model": outcome,
        "fallback": reason,
        "completion_tokens": completion,
        "model_seconds": sum(seconds.values()),
        "answer": answer,
        "grounded": grounded,
        "error": sent.get("error"),
    }


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * len(values) + 0.5) - 1))]


def summary(results: list[dict]) -> dict:
    latencies = [r["latency_ms"] for r in results if r["latency_ms"] is not None]
    model_seconds = [r["model_seconds"] for r in results if r["model_seconds"] > 0]
    answered = [r for r in results if r["model"] == "answered"]
    tokens = sum(r["completion_tokens"] for r in answered)
    seconds = sum(r["model_seconds"] for r in answered)
    shares: dict[str, int] = {}
    for r in results:
        key = r["model"] if r["model"] != "fallback" else f"fallback:{r['fallback']}"
        shares[key] = shares.get(key, 0) + 1
    return {
        "events": len(results),
        "answered_in_time": sum(r["sent"] == "answered" for r in results),
        "after_expires": sum(r["sent"] in ("late", "expired") for r in results),
        "not_answered": sum(r["sent"] not in ("answered", "late") for r in results),
        "latency_ms_p50": percentile(latencies, 0.50),
        "latency_ms_p99": percentile(latencies, 0.99),
        "model_seconds_p50": percentile(model_seconds, 0.50),
        "model_seconds_p99": percentile(model_seconds, 0.99),
        "completion_tokens_per_s": round(tokens / seconds, 1) if seconds else None,
        "outcomes": shares,
        "model_answers": len(answered),
        "model_answers_grounded": sum(bool(r["grounded"]) for r in answered),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sim", required=True)
    parser.add_argument("--ingress-url", required=True)
    parser.add_argument("--listen", required=True)
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--cases", required=True)
    parser.add_argument("--budget", default="20s")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--report")
    args = parser.parse_args()
    cases = json.loads(Path(args.cases).read_text())["cases"]
    if args.smoke:
        cases = [c for c in cases if c.get("smoke")]
    results = []
    with tempfile.TemporaryDirectory() as work:
        for case in cases:
            result = run_case(args, case, Path(work))
            results.append(result)
            verdict = {True: "grounded", False: "NOT GROUNDED", None: ""}[result["grounded"]]
            print(
                f"  {result['id']:<18} {result['sent']:<8} {result['latency_ms'] or 0:7.0f} ms  "
                f"{result['model']}{':' + result['fallback'] if result['fallback'] else '':<14} "
                f"{verdict:<12} {result['answer'][:90]!r}",
                flush=True,
            )
    report = {"summary": summary(results), "cases": results}
    s = report["summary"]
    print(json.dumps(s, indent=2))
    ungrounded = [r for r in results if r["grounded"] is False]
    for r in ungrounded:
        print(f"not grounded: {r['question']!r} -> {r['answer']!r}")
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2, ensure_ascii=False))
    return 0 if s["after_expires"] == 0 and s["not_answered"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
