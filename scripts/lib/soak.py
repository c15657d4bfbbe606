#!/usr/bin/env python3
"""Helpers of scripts/soak.sh (standard library only).

  soak.py sample OUT_CSV INTERVAL_S URL...   scrape each URL's /metrics every INTERVAL_S and
                                             append the end-to-end latency histogram buckets
  soak.py summary DIR                        write DIR/summary.txt from DIR/{rss,latency}.csv,
                                             DIR/report.json and DIR/chaos.log; exit 1 when the
                                             run lost or reordered anything
"""

import csv
import json
import os
import re
import sys
import time
import urllib.request

BUCKET = re.compile(r'^yourlogic_end_to_end_seconds_bucket\{(?P<labels>[^}]*)\} (?P<value>\S+)$')
LE = re.compile(r'le="(?P<le>[^"]+)"')


def sample(out, interval, urls):
    with open(out, "a", newline="") as handle:
        writer = csv.writer(handle)
        if handle.tell() == 0:
            writer.writerow(["t", "url", "le", "count"])
        start = time.time()
        while True:
            now = round(time.time() - start, 1)
            for url in urls:
                try:
                    page = urllib.request.urlopen(url + "/metrics", timeout=5).read().decode()
                except OSError:
                    continue  # a worker being restarted
                for line in page.splitlines():
                    match = BUCKET.match(line)
                    if match:
                        le = LE.search(match["labels"])
                        if le:
                            writer.writerow([now, url, le["le"], match["value"]])
            handle.flush()
            time.sleep(interval)


def quantile(buckets, q):
    """Upper bound of the bucket holding quantile q of a {le: count} (non-cumulative) map."""
    total = sum(buckets.values())
    if total == 0:
        return None
    seen = 0
    for le in sorted(buckets, key=lambda v: float("inf") if v == "+Inf" else float(v)):
        seen += buckets[le]
        if seen >= q * total:
            return le
    return "+Inf"


def latency_windows(path):
    """Per-scrape-window latency buckets summed over the workers (counter resets handled)."""
    rows = {}
    with open(path) as handle:
        for row in csv.DictReader(handle):
            rows.setdefault((row["url"], row["le"]), []).append((float(row["t"]), float(row["count"])))
    windows = {}
    for (url, le), points in rows.items():
        for (t0, c0), (t1, c1) in zip(points, points[1:]):
            delta = c1 - c0 if c1 >= c0 else c1  # a restarted worker starts from zero
            windows.setdefault(t1, {}).setdefault(le, 0.0)
            windows[t1][le] += delta
    result = []
    for t in sorted(windows):
        cumulative = windows[t]
        ordered = sorted(cumulative, key=lambda v: float("inf") if v == "+Inf" else float(v))
        plain, previous = {}, 0.0
        for le in ordered:
            plain[le] = max(cumulative[le] - previous, 0.0)
            previous = cumulative[le]
        result.append((t, sum(plain.values()), quantile(plain, 0.5), quantile(plain, 0.99)))
    return result


def rss_trend(path):
    series = {}
    with open(path) as handle:
        for row in csv.DictReader(handle):
            series.setdefault(row["service"], []).append((float(row["elapsed_s"]), int(row["rss_kib"])))
    out = {}
    for service, points in series.items():
        end = points[-1][0]
        first = [kib for t, kib in points if 60 <= t < 120] or [points[0][1]]
        last = [kib for t, kib in points if t > end - 60] or [points[-1][1]]
        out[service] = (sum(first) / len(first), sum(last) / len(last), max(k for _, k in points))
    return out


def summary(directory):
    report = json.load(open(os.path.join(directory, "report.json")))
    lines = []
    keys = [
        "mode", "target_rate", "conversations", "budget_s", "duration_s", "posts", "accepted",
        "answered", "events_per_s", "deadline_misses", "late_answers", "lost", "not_accepted",
        "ordering_violations", "duplicate_callbacks", "unknown_callbacks",
    ]
    lines.append("load (saltedcx-sim report.json):")
    for key in keys:
        lines.append(f"  {key:<22} {report.get(key)}")
    lat = report.get("latency", {})
    lines.append(
        f"  latency (whole run)    p50 {lat.get('p50_ms', 0):.1f} ms  "
        f"p99 {lat.get('p99_ms', 0):.1f} ms  max {lat.get('max_ms', 0):.1f} ms"
    )
    lines.append(f"  errors                 {report.get('errors')}")
    chaos = os.path.join(directory, "chaos.log")
    if os.path.exists(chaos):
        events = open(chaos).read().strip().splitlines()
        kills = sum("kill -9" in event for event in events)
        lines.append(f"chaos: {kills} worker kills (kill -9, then restart)")
        lines.extend("  " + event for event in events)
    lines.append("memory (RSS, MiB): second minute avg -> last minute avg (max)")
    for service, (first, last, peak) in sorted(rss_trend(os.path.join(directory, "rss.csv")).items()):
        lines.append(f"  {service:<10} {first / 1024:7.1f} -> {last / 1024:7.1f}  ({peak / 1024:.1f})")
    lines.append("end-to-end latency per window (workers' histograms, bucket upper bounds):")
    for t, count, p50, p99 in latency_windows(os.path.join(directory, "latency.csv")):
        lines.append(f"  t={t:6.0f}s  n={count:8.0f}  p50<={p50}s  p99<={p99}s")
    clean = report.get("lost", 1) == 0 and report.get("ordering_violations", 1) == 0
    lines.append("verdict: " + ("nothing lost or reordered" if clean else "LOSS OR REORDERING"))
    text = "\n".join(lines) + "\n"
    open(os.path.join(directory, "summary.txt"), "w").write(text)
    print(text)
    return 0 if clean else 1


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "sample":
        sample(sys.argv[2], float(sys.argv[3]), sys.argv[4:])
    elif len(sys.argv) == 3 and sys.argv[1] == "summary":
        sys.exit(summary(sys.argv[2]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
