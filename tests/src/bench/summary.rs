//! The benchmark's summary: reads the JSON reports of one run directory (pipeline closed and
//! open loop, JetStream and HTTP baselines) and the RSS samples, prints the figures, the ratios
//! to the baselines, the targets met or missed and whether each service's memory stayed flat,
//! and writes it all to `summary.json`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use serde_json::{Value, json};

fn read(dir: &Path, name: &str) -> Value {
    std::fs::read(dir.join(name))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null)
}

fn num(value: &Value, pointer: &str) -> Option<f64> {
    value.pointer(pointer).and_then(Value::as_f64)
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Value {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => json!((a / b * 1000.0).round() / 1000.0),
        _ => Value::Null,
    }
}

/// Memory of each service over a run: RSS at the start of the steady state (the median of
/// the samples between 20 % and 30 % of the run) against the end (median of the last 10 %).
pub fn memory(csv: &str) -> BTreeMap<String, Value> {
    let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for line in csv.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        if let [t, service, rss] = fields[..]
            && let (Ok(t), Ok(rss)) = (t.parse::<f64>(), rss.parse::<f64>())
        {
            series
                .entry(service.to_string())
                .or_default()
                .push((t, rss));
        }
    }
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied()
    };
    series
        .into_iter()
        .filter_map(|(service, samples)| {
            let last = samples.iter().map(|s| s.0).fold(0.0, f64::max);
            let between = |from: f64, to: f64| {
                samples.iter().filter(|s| s.0 >= from * last && s.0 <= to * last).map(|s| s.1).collect::<Vec<_>>()
            };
            let start = median(between(0.2, 0.3))?;
            let end = median(between(0.9, 1.0))?;
            let peak = samples.iter().map(|s| s.1).fold(0.0, f64::max);
            let growth = (end / start - 1.0) * 100.0;
            Some((
                service,
                json!({"start_kib": start, "end_kib": end, "peak_kib": peak, "growth_pct": (growth * 10.0).round() / 10.0,
                       "flat_within_10pct": growth.abs() <= 10.0, "samples": samples.len()}),
            ))
        })
        .collect()
}

/// CPU used per process during a load phase (`cpu-<phase>.csv`: `service,cpu_s`, plus the
/// simulator's own figure from its report): seconds, microseconds per answered event, share.
pub fn cpu(csv: &str, report: &Value) -> BTreeMap<String, Value> {
    let mut seconds: BTreeMap<String, f64> = csv
        .lines()
        .skip(1)
        .filter_map(|line| {
            let (service, cpu) = line.split_once(',')?;
            Some((service.to_string(), cpu.trim().parse().ok()?))
        })
        .collect();
    if let Some(sim) = num(report, "/sim_cpu_s") {
        seconds.insert("saltedcx-sim".into(), sim);
    }
    let answered = num(report, "/answered").unwrap_or(0.0).max(1.0);
    let total: f64 = seconds.values().sum::<f64>().max(1e-9);
    seconds
        .into_iter()
        .map(|(service, cpu)| {
            let us = (cpu * 1e6 / answered).round();
            let share = (cpu / total * 1000.0).round() / 10.0;
            (
                service,
                json!({"cpu_s": cpu, "us_per_event": us, "share_pct": share}),
            )
        })
        .collect()
}

/// Summarises the run in `dir`; returns the printed text.
pub fn summarize(dir: &Path) -> Result<String> {
    let closed = read(dir, "closed.json");
    let open = read(dir, "open.json");
    let raw = read(dir, "jetstream-raw.json");
    let ordered = read(dir, "jetstream-ordered.json");
    let http = read(dir, "http.json");
    let machine = std::fs::read_to_string(dir.join("machine.txt")).unwrap_or_default();
    let rss = std::fs::read_to_string(dir.join("rss.csv")).unwrap_or_default();
    let memory = memory(&rss);
    let cpu_closed = cpu(
        &std::fs::read_to_string(dir.join("cpu-closed.csv")).unwrap_or_default(),
        &closed,
    );
    let closed_rate = num(&closed, "/events_per_s");
    let targets = json!({
        "closed_loop_10k_events_per_s": closed_rate.map(|r| r >= 10_000.0),
        "closed_loop_zero_lost": num(&closed, "/lost").map(|v| v == 0.0),
        "closed_loop_zero_ordering_violations": num(&closed, "/ordering_violations").map(|v| v == 0.0),
        "closed_loop_zero_deadline_misses": num(&closed, "/deadline_misses").map(|v| v == 0.0),
        "open_loop_p99_10ms": num(&open, "/latency/p99_ms").map(|v| v <= 10.0),
        "open_loop_p999_50ms": num(&open, "/latency/p999_ms").map(|v| v <= 50.0),
        "memory_flat_within_10pct": (!memory.is_empty()).then(|| memory.values().all(|m| m["flat_within_10pct"] == true)),
    });
    let summary = json!({
        "machine": machine.lines().collect::<Vec<_>>(),
        "pipeline_closed": closed,
        "pipeline_open": open,
        "jetstream_raw": raw,
        "jetstream_ordered": ordered,
        "http_trivial": http,
        "ratios": {
            "closed_vs_jetstream_raw": ratio(closed_rate, num(&raw, "/consumed_per_s")),
            "closed_vs_jetstream_ordered": ratio(closed_rate, num(&ordered, "/consumed_per_s")),
            "closed_vs_trivial_http": ratio(closed_rate, num(&http, "/requests_per_s")),
        },
        "memory": memory,
        "cpu_closed_loop": cpu_closed,
        "targets": targets,
    });
    super::write_json(&dir.join("summary.json"), &summary)?;
    let mut out = String::new();
    let _ = writeln!(out, "\n=== benchmark summary ({}) ===", dir.display());
    for line in machine.lines() {
        let _ = writeln!(out, "  {line}");
    }
    let f = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.0}"));
    let ms =
        |v: &Value, p: &str| num(v, p).map_or_else(|| "-".to_string(), |v| format!("{v:.2} ms"));
    let _ = writeln!(
        out,
        "  pipeline closed loop     {} events/s  p50 {}  p99 {}  p99.9 {}  lost {}  order {}  misses {}",
        f(closed_rate),
        ms(&closed, "/latency/p50_ms"),
        ms(&closed, "/latency/p99_ms"),
        ms(&closed, "/latency/p999_ms"),
        f(num(&closed, "/lost")),
        f(num(&closed, "/ordering_violations")),
        f(num(&closed, "/deadline_misses"))
    );
    let _ = writeln!(
        out,
        "  pipeline open loop       {} events/s (target {})  p50 {}  p99 {}  p99.9 {}  max {}  not sustained {}",
        f(num(&open, "/events_per_s")),
        f(num(&open, "/target_rate")),
        ms(&open, "/latency/p50_ms"),
        ms(&open, "/latency/p99_ms"),
        ms(&open, "/latency/p999_ms"),
        ms(&open, "/latency/max_ms"),
        f(num(&open, "/rate_not_sustained"))
    );
    let mut extra_open: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    extra_open.retain(|name| name.starts_with("open-") && name.ends_with(".json"));
    extra_open.sort();
    for name in &extra_open {
        let report = read(dir, name);
        let _ = writeln!(
            out,
            "  pipeline open loop       {} events/s (target {})  p50 {}  p99 {}  p99.9 {}  max {}  not sustained {}",
            f(num(&report, "/events_per_s")),
            f(num(&report, "/target_rate")),
            ms(&report, "/latency/p50_ms"),
            ms(&report, "/latency/p99_ms"),
            ms(&report, "/latency/p999_ms"),
            ms(&report, "/latency/max_ms"),
            f(num(&report, "/rate_not_sustained"))
        );
    }
    let _ = writeln!(
        out,
        "  JetStream raw            {} msgs/s consumed ({} published/s)",
        f(num(&raw, "/consumed_per_s")),
        f(num(&raw, "/published_per_s"))
    );
    let _ = writeln!(
        out,
        "  JetStream ordered        {} msgs/s consumed (one unacked per partition)",
        f(num(&ordered, "/consumed_per_s"))
    );
    let _ = writeln!(
        out,
        "  trivial axum endpoint    {} requests/s  p99 {}",
        f(num(&http, "/requests_per_s")),
        ms(&http, "/latency/p99_ms")
    );
    let _ = writeln!(out, "  ratios                   {}", summary["ratios"]);
    for (service, c) in &summary["cpu_closed_loop"]
        .as_object()
        .cloned()
        .unwrap_or_default()
    {
        let _ = writeln!(
            out,
            "  CPU {service:<20} {:.1} s, {:.0} µs per event ({:.1} % of all)",
            num(c, "/cpu_s").unwrap_or(0.0),
            num(c, "/us_per_event").unwrap_or(0.0),
            num(c, "/share_pct").unwrap_or(0.0)
        );
    }
    for (service, m) in &summary["memory"].as_object().cloned().unwrap_or_default() {
        let _ = writeln!(
            out,
            "  memory {service:<17} {:.0} → {:.0} KiB ({:+.1} %), peak {:.0} KiB",
            num(m, "/start_kib").unwrap_or(0.0),
            num(m, "/end_kib").unwrap_or(0.0),
            num(m, "/growth_pct").unwrap_or(0.0),
            num(m, "/peak_kib").unwrap_or(0.0)
        );
    }
    let _ = writeln!(out, "  targets                  {}", summary["targets"]);
    let _ = writeln!(out, "  written to {}", dir.join("summary.json").display());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_growth_compares_the_steady_start_with_the_end() {
        let mut csv = String::from("elapsed_s,service,rss_kib\n");
        for t in 0..=100 {
            let flat = 1000 + t % 3;
            let growing = 1000 + t * 10;
            csv.push_str(&format!("{t},ingress,{flat}\n{t},worker-1,{growing}\n"));
        }
        let m = memory(&csv);
        assert_eq!(m["ingress"]["flat_within_10pct"], true);
        assert_eq!(m["worker-1"]["flat_within_10pct"], false);
    }
}
