//! Observability checks against the running services: every metric the Grafana dashboard, the
//! alert rules and the autoscaler use is exported, and a real Prometheus server loaded with the
//! project's configuration and rules scrapes the ingress and the worker and answers dashboard
//! queries with data.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;
use testkit::stack::{self, Poster, Service, TOKEN};
use testkit::{EventBuilder, FakeSaltedCx, NatsServer, workspace_root};
use worker::logic::echo::EchoLogic;

struct Running {
    _nats: NatsServer,
    fake: FakeSaltedCx,
    ingress: Service,
    worker: Service,
}

/// NATS, an ingress and a worker that refresh their queue gauges quickly, after some traffic:
/// answered, duplicate and refused events.
async fn running_stack_after_traffic() -> Result<Running> {
    let nats = NatsServer::start().await?;
    let fake = FakeSaltedCx::start(TOKEN).await?;
    let fast_stats = Duration::from_millis(200);
    let ingress =
        stack::start_ingress(&nats.url(), |c| c.http.queue_stats_interval = fast_stats).await?;
    let worker = stack::start_worker(&nats.url(), &fake.base_url(), Arc::new(EchoLogic), |c| {
        c.worker.queue_stats_interval = fast_stats;
    })
    .await?;
    stack::wait_ready(&ingress, Duration::from_secs(15)).await?;
    stack::wait_ready(&worker, Duration::from_secs(15)).await?;
    let poster = Poster::new(&ingress.url());
    for conversation in ["obs-1", "obs-2", "obs-3"] {
        for n in 0..3 {
            let event = EventBuilder::message(conversation, &format!("question {n}")).build();
            poster.post(&event).await?;
            fake.wait_for_request(
                event["requestId"].as_str().unwrap_or_default(),
                Duration::from_secs(10),
            )
            .await?;
        }
    }
    let event = EventBuilder::message("obs-1", "again").build();
    poster.post(&event).await?;
    poster.post(&event).await?;
    poster
        .post_raw(
            b"{".to_vec(),
            Some(&format!("Bearer {TOKEN}")),
            "application/json",
        )
        .await?;
    Ok(Running {
        _nats: nats,
        fake,
        ingress,
        worker,
    })
}

/// Metric family names used by the dashboards, rules and KEDA queries.
fn used_metric_names() -> Result<BTreeSet<String>> {
    let script = workspace_root().join("scripts/used-metric-names.sh");
    let output = Command::new("bash").arg(&script).arg("--base").output()?;
    anyhow::ensure!(output.status.success(), "{} failed", script.display());
    let names: BTreeSet<String> = String::from_utf8(output.stdout)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    anyhow::ensure!(names.len() >= 10, "suspiciously few names: {names:?}");
    Ok(names)
}

/// Metric family names in a `/metrics` page (`# TYPE` lines).
fn exported_families(page: &str) -> BTreeSet<String> {
    page.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboards_alerts_and_autoscaler_use_is_exported_by_the_running_services()
-> Result<()> {
    let running = running_stack_after_traffic().await?;
    let used = used_metric_names()?;
    let ready = testkit::wait_until(
        Duration::from_secs(10),
        Duration::from_millis(100),
        || async {
            let ingress = stack::scrape(&running.ingress).await.unwrap_or_default();
            let worker = stack::scrape(&running.worker).await.unwrap_or_default();
            let exported: BTreeSet<String> = exported_families(&ingress)
                .union(&exported_families(&worker))
                .cloned()
                .collect();
            used.is_subset(&exported)
        },
    )
    .await;
    let ingress = stack::scrape(&running.ingress).await?;
    let exported = exported_families(&ingress);
    let missing: Vec<_> = used.difference(&exported).collect();
    assert!(ready, "used but not exported: {missing:?}");
    Ok(())
}

fn prometheus_binary() -> Result<PathBuf> {
    let tools = workspace_root().join(".tools");
    let found = std::fs::read_dir(&tools)
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("usr/bin/prometheus"))
        .find(|path| path.is_file());
    found.with_context(|| {
        format!(
            "no Prometheus server under {}: run scripts/install-deploy-tools.sh",
            tools.display()
        )
    })
}

/// The project's Prometheus configuration with the targets pointed at this test's services.
fn test_config(
    ingress: &Service,
    worker: &Service,
    prometheus: &str,
    dir: &Path,
) -> Result<PathBuf> {
    let deploy = workspace_root().join("deploy/prometheus");
    let text = std::fs::read_to_string(deploy.join("prometheus.yml"))?;
    let mut config: serde_norway::Value = serde_norway::from_str(&text)?;
    config["global"]["scrape_interval"] = "1s".into();
    config["global"]["scrape_timeout"] = "900ms".into();
    config["global"]["evaluation_interval"] = "1s".into();
    let rules = deploy.join("rules/*.yaml").display().to_string();
    config["rule_files"] = serde_norway::Value::Sequence(vec![rules.into()]);
    let Some(jobs) = config["scrape_configs"].as_sequence_mut() else {
        bail!("prometheus.yml has no scrape_configs");
    };
    let mut kept = Vec::new();
    for job in jobs.drain(..) {
        let target = match job["job_name"].as_str() {
            Some("ingress") => ingress.admin_addr().to_string(),
            Some("worker") => worker.admin_addr().to_string(),
            Some("prometheus") => prometheus.to_string(),
            // The NATS exporter is not part of this test.
            _ => continue,
        };
        let mut job = job;
        if let Some(map) = job.as_mapping_mut() {
            map.remove("dns_sd_configs");
            let targets: serde_norway::Value =
                serde_norway::from_str(&format!("- targets: [\"{target}\"]"))?;
            map.insert("static_configs".into(), targets);
        }
        kept.push(job);
    }
    *jobs = kept;
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, serde_norway::to_string(&config)?)?;
    Ok(path)
}

struct Prometheus {
    child: Child,
    url: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn query(client: &reqwest::Client, url: &str, expr: &str) -> Result<Vec<Value>> {
    let body: Value = client
        .get(format!("{url}/api/v1/query"))
        .query(&[("query", expr)])
        .send()
        .await?
        .json()
        .await?;
    anyhow::ensure!(body["status"] == "success", "query {expr} failed: {body}");
    Ok(body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// Dashboard panel queries, with Grafana's variables given test values.
fn dashboard_queries() -> Result<Vec<(String, String)>> {
    let path = workspace_root().join("deploy/grafana/dashboards/yourlogic.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                let expr = expr
                    .replace("$__rate_interval", "20s")
                    .replace("$__range", "5m")
                    .replace("$deadline_budget", "15");
                queries.push((
                    panel["title"].as_str().unwrap_or_default().to_string(),
                    expr,
                ));
            }
        }
    }
    Ok(queries)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_with_the_project_config_scrapes_the_services_and_dashboard_queries_return_data()
-> Result<()> {
    let binary = prometheus_binary()?;
    let running = running_stack_after_traffic().await?;
    let dir = tempfile::tempdir()?;
    let port = testkit::free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let config = test_config(&running.ingress, &running.worker, &listen, dir.path())?;
    let log = std::fs::File::create(dir.path().join("prometheus.log"))?;
    let child = Command::new(binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={listen}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    let prometheus = Prometheus {
        child,
        url: format!("http://{listen}"),
    };
    let client = reqwest::Client::new();

    // Keep answering events while Prometheus collects a few scrapes, so rates are non-zero.
    let poster = Poster::new(&running.ingress.url());
    let queries = dashboard_queries()?;
    let wanted = [
        "Events answered /s",
        "p99 end-to-end",
        "Ingress outcomes",
        "Queue pending per partition",
        "Workers",
    ];
    let mut n = 0;
    let all_have_data =
        testkit::wait_until(Duration::from_secs(40), Duration::from_millis(500), || {
            n += 1;
            let event = EventBuilder::message("obs-prom", &format!("tick {n}")).build();
            let poster = poster.clone();
            let client = client.clone();
            let queries = queries.clone();
            let url = prometheus.url.clone();
            async move {
                let _ = poster.post(&event).await;
                for (title, expr) in queries.iter().filter(|(t, _)| wanted.contains(&t.as_str())) {
                    match query(&client, &url, expr).await {
                        Ok(result) if !result.is_empty() => {}
                        _ => {
                            println!("waiting for data: {title}: {expr}");
                            return false;
                        }
                    }
                }
                true
            }
        })
        .await;
    let log = std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
    assert!(
        all_have_data,
        "dashboard queries returned no data; prometheus log:\n{log}"
    );

    let answered = query(
        &client,
        &prometheus.url,
        "sum(yourlogic_events_processed_total{outcome=\"answered\"})",
    )
    .await?;
    let value: f64 = answered
        .first()
        .and_then(|r| r["value"][1].as_str())
        .and_then(|v| v.parse().ok())
        .unwrap_or_default();
    assert!(value >= 9.0, "answered events seen by Prometheus: {value}");

    // The alert rules were loaded and evaluate.
    let rules: Value = client
        .get(format!("{}/api/v1/rules", prometheus.url))
        .send()
        .await?
        .json()
        .await?;
    let groups = rules["data"]["groups"].as_array().map_or(0, Vec::len);
    assert!(groups > 0, "no rule groups loaded: {rules}");
    drop(running.fake);
    Ok(())
}
