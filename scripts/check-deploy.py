#!/usr/bin/env python3
"""Offline checks of the deployment files, called by scripts/check-deploy.sh (one subcommand per
check; exit 0 = pass, 1 = fail with the reasons on stdout).

    k8s RENDERED.yaml OVERLAY     schema (strict, Kubernetes 1.30 and 1.37 + bundled CRD schemas)
                                  and policy checks of one rendered kustomize overlay
    compose CONFIG.json           semantics of `docker compose config --format json`
    dockerfile                    build targets, users and health checks of the Dockerfile
    dashboard PROMQL_OUT.yaml     structure of the Grafana dashboard and provisioning; writes every
                                  PromQL query (dashboard + KEDA) as a rules file for promtool
    dashboard-queries             prints every dashboard query as a JSON line, Grafana variables
                                  replaced by sample values (stdlib only; scripts/compose-e2e.sh)
    metrics OUT.txt               every yourlogic_* name used by dashboards, rules and KEDA is
                                  exported by the services; writes the names to OUT.txt
    used-metric-names [--base]    prints the used names, one per line (stdlib only)
    compose-tls CONFIG.json       the compose stack with compose.tls.yaml: NATS requires TLS, the
                                  services connect with tls:// and trust the mounted CA
    nats-pod-config RENDERED.yaml OUT
                                  writes the rendered production NATS configuration as its pod
                                  sees it under OUT (certificate paths moved below OUT), for
                                  `nats-server -t` with throwaway secrets
    nats-routes OUT NATS_SERVER SECRETS OTHER
                                  runs the configuration nats-pod-config wrote as three servers on
                                  loopback (certificates and passwords from SECRETS): their routes
                                  form over mutual TLS; a fourth with OTHER's certificate (another
                                  CA) is refused
    nats-values                   sanity of deploy/k8s/nats/values.yaml (Helm chart values)
    docs                          docs/deploy.md covers what the manifests point to
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts/lib"))
import nats_routes  # noqa: E402  (scripts/lib, stdlib only)
import nats_security  # noqa: E402

DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "docker/Dockerfile"
DASHBOARD_DIR = DEPLOY / "grafana/dashboards"
RULES_DIR = DEPLOY / "prometheus/rules"
PROMETHEUS_CONFIG = DEPLOY / "prometheus/prometheus.yml"
KEDA_SCALEDOBJECT = DEPLOY / "k8s/components/keda/scaledobject.yaml"
SCHEMA_DIR = DEPLOY / "k8s/schemas"
TELEMETRY_RS = ROOT / "shared/src/telemetry.rs"
K8S_VERSIONS = ["1.30", "1.37"]

# The metric contract (DESIGN.md section 3 and shared/src/telemetry.rs). Used when telemetry.rs
# cannot be read; otherwise the names declared there are authoritative.
CONTRACT_METRICS = {
    "yourlogic_ingress_requests_total": "counter",
    "yourlogic_ingress_request_seconds": "histogram",
    "yourlogic_publish_seconds": "histogram",
    "yourlogic_events_processed_total": "counter",
    "yourlogic_end_to_end_seconds": "histogram",
    "yourlogic_deadline_slack_seconds": "histogram",
    "yourlogic_callback_requests_total": "counter",
    "yourlogic_callback_seconds": "histogram",
    "yourlogic_logic_seconds": "histogram",
    "yourlogic_queue_pending": "gauge",
    "yourlogic_queue_in_flight": "gauge",
    "yourlogic_redeliveries_total": "counter",
    "yourlogic_dead_letters_total": "counter",
    "yourlogic_already_answered_total": "counter",
    "yourlogic_worker_in_flight": "gauge",
    "yourlogic_worker_partitions": "gauge",
    "yourlogic_nats_connected": "gauge",
    "yourlogic_up": "gauge",
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
METRIC_RE = re.compile(r"\byourlogic_[a-zA-Z0-9_]+")


class Failures:
    """Collects problems so one run reports all of them."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, message: str) -> None:
        self.items.append(message)

    def check(self, condition: bool, message: str) -> None:
        if not condition:
            self.add(message)

    def finish(self, ok_message: str) -> int:
        if self.items:
            for item in self.items:
                print(f"- {item}")
            return 1
        print(ok_message)
        return 0


def rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def load_yaml_docs(path: Path) -> list[dict]:
    import yaml

    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


# ------------------------------------------------------------------------------------------------
# PromQL sources and metric names (stdlib only: used-metric-names.sh runs without the venv)
# ------------------------------------------------------------------------------------------------


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARD_DIR.glob("*.json"))


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable of every dashboard."""
    queries = []
    for path in dashboard_files():
        dash = json.loads(path.read_text(encoding="utf-8"))
        for panel in iter_panels(dash.get("panels", [])):
            for target in panel.get("targets", []) or []:
                if target.get("expr"):
                    queries.append((f"{path.name}: panel '{panel.get('title')}' {target.get('refId')}", target["expr"]))
        for var in dash.get("templating", {}).get("list", []):
            if var.get("type") == "query":
                query = var.get("query")
                text = query.get("query") if isinstance(query, dict) else query
                if text:
                    queries.append((f"{path.name}: variable {var.get('name')}", text))
    return queries


def iter_panels(panels: list[dict]):
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels", []) or [])


def yaml_text_without_comments(path: Path) -> str:
    """The file without its comment lines (YAML-free, so names in prose comments don't count)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("#"))


def rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.yaml")) + sorted(RULES_DIR.glob("*.yml"))


def used_metric_names() -> dict[str, set[str]]:
    """Every yourlogic_* series name used, mapped to the files that use it."""
    used: dict[str, set[str]] = {}

    def note(text: str, where: str) -> None:
        for name in METRIC_RE.findall(text):
            used.setdefault(name, set()).add(where)

    for where, expr in dashboard_queries():
        note(expr, where.split(":")[0])
    for path in rule_files():
        note(yaml_text_without_comments(path), rel(path))
    if KEDA_SCALEDOBJECT.exists():
        for line in yaml_text_without_comments(KEDA_SCALEDOBJECT).splitlines():
            if line.strip().startswith("query:"):
                note(line, rel(KEDA_SCALEDOBJECT))
    return used


def base_name(name: str, histograms: set[str]) -> str:
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in histograms:
            return name[: -len(suffix)]
    return name


def exported_metrics() -> tuple[dict[str, str], str]:
    """Metric name -> kind, and where the list came from."""
    if TELEMETRY_RS.exists():
        text = TELEMETRY_RS.read_text(encoding="utf-8")
        names = re.findall(r'"(yourlogic_[a-z0-9_]+)"', text)
        if names:
            kinds = {}
            for name in names:
                kinds[name] = CONTRACT_METRICS.get(name) or ("histogram" if name.endswith("_seconds") else "other")
            return kinds, rel(TELEMETRY_RS)
    return dict(CONTRACT_METRICS), "the contract list in scripts/check-deploy.py"


def cmd_used_metric_names(args: list[str]) -> int:
    kinds, _ = exported_metrics()
    histograms = {n for n, k in kinds.items() if k == "histogram"}
    names = sorted(used_metric_names())
    if "--base" in args:
        names = sorted({base_name(n, histograms) for n in names})
    for name in names:
        print(name)
    return 0


def cmd_metrics(args: list[str]) -> int:
    out = Path(args[0]) if args else None
    fails = Failures()
    kinds, source = exported_metrics()
    histograms = {n for n, k in kinds.items() if k == "histogram"}
    used = used_metric_names()
    fails.check(bool(used), "no yourlogic_* metric found in dashboards, rules or KEDA queries")
    for name, files in sorted(used.items()):
        base = base_name(name, histograms)
        if base not in kinds:
            fails.add(f"{name} (used in {', '.join(sorted(files))}) is not exported (not in {source})")
        elif kinds[base] == "histogram" and base == name:
            fails.add(f"{name} is a histogram: query {name}_bucket/_sum/_count (used in {', '.join(sorted(files))})")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(f"{n}\n" for n in sorted(used)), encoding="utf-8")
    bases = {base_name(n, histograms) for n in used}
    return fails.finish(
        f"{len(used)} series names ({len(bases)} metrics) used, all exported per {source}"
        + (f"; list in {rel(out)}" if out else "")
    )


# ------------------------------------------------------------------------------------------------
# Grafana
# ------------------------------------------------------------------------------------------------

GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "${__rate_interval}": "5m",
    "$__interval": "1m",
    "${__interval}": "1m",
    "$__range": "1h",
    "${__range}": "1h",
    "$deadline_budget": "15",
    "${deadline_budget}": "15",
}


def with_sample_variables(expr: str) -> str:
    """The query with Grafana's variables replaced by the sample values above."""
    for var, value in sorted(GRAFANA_VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(var, value)
    return expr


def cmd_dashboard_queries(_args: list[str]) -> int:
    """Prints every dashboard query as JSON lines `{"where", "expr"}`, variables replaced."""
    for where, expr in dashboard_queries():
        print(json.dumps({"where": where, "expr": with_sample_variables(expr)}))
    return 0


def cmd_dashboard(args: list[str]) -> int:
    import yaml

    promql_out = Path(args[0])
    fails = Failures()
    files = dashboard_files()
    fails.check(bool(files), f"no dashboard JSON in {rel(DASHBOARD_DIR)}")
    panel_count = 0
    for path in files:
        try:
            dash = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            fails.add(f"{rel(path)} is not valid JSON: {err}")
            continue
        for key in ("uid", "title", "panels", "schemaVersion"):
            fails.check(key in dash, f"{rel(path)}: missing top-level `{key}`")
        variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
        ds_var = variables.get("datasource")
        fails.check(
            ds_var is not None and ds_var.get("type") == "datasource" and ds_var.get("query") == "prometheus",
            f"{rel(path)}: needs a `datasource` variable of type datasource for prometheus",
        )
        ids = set()
        for panel in iter_panels(dash.get("panels", [])):
            where = f"{rel(path)}: panel {panel.get('id')} '{panel.get('title')}'"
            fails.check(panel.get("id") not in ids, f"{where}: duplicate id")
            ids.add(panel.get("id"))
            fails.check("gridPos" in panel, f"{where}: no gridPos")
            if panel.get("type") == "row":
                continue
            panel_count += 1
            fails.check(bool(panel.get("title")), f"{where}: no title")
            ds = panel.get("datasource")
            fails.check(
                isinstance(ds, dict) and ds.get("type") == "prometheus" and ds.get("uid"),
                f"{where}: no Prometheus datasource",
            )
            targets = panel.get("targets") or []
            fails.check(bool(targets), f"{where}: no query")
            for target in targets:
                fails.check(bool((target.get("expr") or "").strip()), f"{where} {target.get('refId')}: empty query")
                tds = target.get("datasource")
                fails.check(
                    tds is None or (isinstance(tds, dict) and tds.get("uid") == (ds or {}).get("uid")),
                    f"{where} {target.get('refId')}: target datasource differs from the panel's",
                )
            for text in [ds.get("uid") if isinstance(ds, dict) else ""] + [t.get("expr", "") for t in targets]:
                for var in re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", text or ""):
                    fails.check(
                        var.startswith("__") or var in variables,
                        f"{where}: uses undefined variable ${var}",
                    )
    fails.check(panel_count >= 9, f"only {panel_count} panels; the issue asks for at least 9 views")

    # Provisioning: the datasource and dashboard provider Grafana loads in compose.
    ds_files = sorted((DEPLOY / "grafana/provisioning/datasources").glob("*.yaml"))
    fails.check(bool(ds_files), "no Grafana datasource provisioning file")
    for path in ds_files:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for ds in data.get("datasources", []):
            fails.check(ds.get("type") == "prometheus" and ds.get("url"), f"{rel(path)}: datasource without type/url")
    prov_files = sorted((DEPLOY / "grafana/provisioning/dashboards").glob("*.yaml"))
    fails.check(bool(prov_files), "no Grafana dashboard provider file")
    for path in prov_files:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for provider in data.get("providers", []):
            fails.check(
                (provider.get("options") or {}).get("path"), f"{rel(path)}: provider {provider.get('name')} has no path"
            )

    # Every PromQL query (dashboards and KEDA triggers) as recording rules, for `promtool check
    # rules` to parse. Grafana's variables are replaced by sample values first.
    queries = dashboard_queries()
    for doc in load_yaml_docs(KEDA_SCALEDOBJECT) if KEDA_SCALEDOBJECT.exists() else []:
        for trig in doc.get("spec", {}).get("triggers", []):
            if trig.get("type") == "prometheus":
                queries.append((f"{rel(KEDA_SCALEDOBJECT)}: trigger {trig.get('name')}", trig["metadata"]["query"]))
    rules = []
    for i, (where, expr) in enumerate(queries):
        expr = with_sample_variables(expr)
        leftover = re.findall(r"\$\{?[A-Za-z_]\w*", expr)
        fails.check(not leftover, f"{where}: unknown Grafana variable(s) {leftover}")
        rules.append({"record": f"check:query_{i}", "expr": expr, "labels": {"where": where[:200]}})
    promql_out.parent.mkdir(parents=True, exist_ok=True)
    promql_out.write_text(yaml.safe_dump({"groups": [{"name": "queries", "rules": rules}]}, sort_keys=False))
    return fails.finish(f"{len(files)} dashboard(s), {panel_count} panels, each with a datasource and a query; "
                        f"{len(queries)} queries written for promtool")


# ------------------------------------------------------------------------------------------------
# Dockerfile and compose
# ------------------------------------------------------------------------------------------------

# Where each service answers /readyz (the ingress's admin port: its events port serves only events).
SERVICE_PORTS = {"ingress": 9091, "worker": 9090}


def dockerfile_stages() -> dict[str, list[str]]:
    """Stage name -> its instruction lines (continuations joined)."""
    stages: dict[str, list[str]] = {}
    current = None
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"FROM\s+\S+(?:\s+AS\s+(\S+))?", line, re.IGNORECASE)
        if match:
            current = match.group(1) or f"stage{len(stages)}"
            stages[current] = [line]
        elif current:
            stages[current].append(line)
    return stages


def cmd_dockerfile(_args: list[str]) -> int:
    fails = Failures()
    stages = dockerfile_stages()
    runtime = stages.get("runtime", [])
    fails.check(
        any(re.match(r"USER\s+(65532|nonroot)", l) for l in runtime), "the runtime stage does not switch to a non-root USER"
    )
    fails.check(any("distroless" in l or "RUNTIME_IMAGE" in l for l in runtime), "runtime stage is not the distroless base")
    for target, binary in (("ingress", "ingress"), ("worker", "worker"), ("saltedcx-sim", "saltedcx-sim")):
        lines = stages.get(target)
        if lines is None:
            fails.add(f"no `{target}` build target")
            continue
        fails.check(lines[0].split()[1] == "runtime", f"target {target} is not built FROM runtime")
        fails.check(
            any(l.startswith("ENTRYPOINT") and f"/usr/local/bin/{binary}" in l for l in lines),
            f"target {target} has no ENTRYPOINT /usr/local/bin/{binary}",
        )
        fails.check(not any(re.match(r"USER\s+(0|root)\b", l) for l in lines), f"target {target} runs as root")
        if target in SERVICE_PORTS:
            port = SERVICE_PORTS[target]
            health = [l for l in lines if l.startswith("HEALTHCHECK")]
            fails.check(
                bool(health) and "healthcheck" in health[0] and f"127.0.0.1:{port}/readyz" in health[0],
                f"target {target} needs HEALTHCHECK `{binary} healthcheck --url http://127.0.0.1:{port}/readyz`",
            )
    builder = " ".join(stages.get("builder", []))
    fails.check("cargo chef cook" in builder, "the builder stage does not cook dependencies with cargo-chef")
    # The runtime stages copy from `binaries`, which is `builder` unless BINARIES=prebuilt.
    binaries = stages.get("binaries", [""])[0]
    fails.check(re.match(r"FROM\s+\$\{BINARIES\}\s+AS\s+binaries", binaries, re.I) is not None,
                "no `FROM ${BINARIES} AS binaries` stage")
    fails.check(re.search(r"^ARG BINARIES=builder$", DOCKERFILE.read_text(), re.M) is not None,
                "BINARIES must default to `builder` (the users' build)")
    fails.check("prebuilt" in stages, "no `prebuilt` stage for release binaries built elsewhere")
    for target in ("ingress", "worker", "saltedcx-sim"):
        fails.check(any(l.startswith("COPY --from=binaries ") for l in stages.get(target, [])),
                    f"target {target} does not copy its binary from the `binaries` stage")
    ignore = DOCKERFILE.with_name(DOCKERFILE.name + ".dockerignore")
    fails.check(ignore.exists() and "target" in ignore.read_text(), f"{rel(ignore)} must exclude target/")
    return fails.finish(f"targets {', '.join(t for t in stages if t in ('ingress', 'worker', 'saltedcx-sim'))} "
                        "non-root with health checks; cargo-chef dependency layer")


def duration_seconds(text: str | int | float) -> float:
    if isinstance(text, (int, float)):
        return float(text)
    total = 0.0
    for number, unit in re.findall(r"([0-9.]+)(ms|h|m|s)", str(text)):
        total += float(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


def cmd_compose(args: list[str]) -> int:
    import yaml

    config = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    services = config.get("services", {})
    fails = Failures()
    for name in ("nats", "nats-exporter", "ingress", "worker", "prometheus", "grafana", "saltedcx-sim", "saltedcx-sim-load",
                 "jaeger"):
        fails.check(name in services, f"service `{name}` missing")
    if fails.items:
        return fails.finish("")
    stages = dockerfile_stages()
    for name in ("ingress", "worker", "saltedcx-sim", "saltedcx-sim-load"):
        svc = services[name]
        build = svc.get("build") or {}
        fails.check(build.get("target") in stages, f"{name}: build target {build.get('target')} not in the Dockerfile")
        fails.check(svc.get("read_only") is True, f"{name}: root filesystem not read-only")
        fails.check("ALL" in (svc.get("cap_drop") or []), f"{name}: capabilities not dropped")
        fails.check(svc.get("environment", {}).get("SALTEDCX_TOKEN"), f"{name}: SALTEDCX_TOKEN not set")
    fails.check(services["saltedcx-sim"].get("profiles") == ["demo"], "saltedcx-sim must be in profile demo only")
    fails.check(services["saltedcx-sim-load"].get("profiles") == ["load"], "saltedcx-sim-load must be in profile load only")
    fails.check((services["saltedcx-sim"].get("command") or [None])[0] == "demo", "saltedcx-sim must run `demo`")
    fails.check((services["saltedcx-sim-load"].get("command") or [None])[0] == "load", "saltedcx-sim-load must run `load`")
    aliases = ((services["saltedcx-sim-load"].get("networks") or {}).get("default") or {}).get("aliases") or []
    fails.check("saltedcx-sim" in aliases, "saltedcx-sim-load needs the network alias saltedcx-sim")
    for name in ("ingress", "worker", "prometheus", "grafana", "nats-exporter"):
        fails.check(not services[name].get("profiles"), f"{name} must run without a profile")
    # Traces: Jaeger only with --profile tracing; the services export only when told where to.
    fails.check(services["jaeger"].get("profiles") == ["tracing"], "jaeger must be in profile tracing only")
    jaeger_ports = {str(p.get("target")) for p in services["jaeger"].get("ports", [])}
    fails.check({"16686", "4318"} <= jaeger_ports, "jaeger must publish its UI (16686) and OTLP/HTTP (4318)")
    for name in ("ingress", "worker"):
        fails.check("OTEL_EXPORTER_OTLP_ENDPOINT" in services[name].get("environment", {}),
                    f"{name}: OTEL_EXPORTER_OTLP_ENDPOINT must be passed through (empty: traces off)")

    worker = services["worker"]
    env = worker.get("environment", {})
    replicas = (worker.get("deploy") or {}).get("replicas", 1)
    fails.check(int(replicas) >= 2, f"worker runs {replicas} replica(s); the stack wants two")
    fails.check(env.get("SALTEDCX_API_URL", "").startswith("http://saltedcx-sim:"), "workers must call back the simulator")
    fails.check(env.get("NATS_URL") == "nats://nats:4222", "worker NATS_URL must be nats://nats:4222")
    grace = duration_seconds(worker.get("stop_grace_period", "10s"))
    drain = duration_seconds(env.get("SHUTDOWN_TIMEOUT", "20s"))
    fails.check(grace > drain, f"worker stop_grace_period {grace}s must exceed SHUTDOWN_TIMEOUT {drain}s")
    nats_cmd = " ".join(services["nats"].get("command") or [])
    fails.check("-js" in nats_cmd and "-m 8222" in nats_cmd, "nats must run with -js and -m 8222")
    fails.check(
        any(v.get("target") == "/data" and v.get("type") == "volume" for v in services["nats"].get("volumes", [])),
        "nats needs a named volume at /data",
    )
    for name, dep in (("ingress", "nats"), ("worker", "nats")):
        cond = (services[name].get("depends_on") or {}).get(dep, {}).get("condition")
        fails.check(cond == "service_healthy", f"{name} must wait for {dep} to be healthy")
    check_compose_nats(services, fails, require_tls=False)

    # Prometheus scrapes ingress, every worker and the NATS exporter, and loads the rules.
    prom = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in prom.get("scrape_configs", [])}
    targets = lambda job: [t for sc in job.get("static_configs", []) for t in sc.get("targets", [])]
    fails.check("ingress:9091" in targets(jobs.get("ingress", {})),
                "prometheus.yml does not scrape the ingress's admin port ingress:9091")
    ingress_ports = [str(p) for p in services.get("ingress", {}).get("ports", [])]
    fails.check(not any(p.endswith(":9091") and not p.startswith("127.0.0.1:") for p in ingress_ports),
                "compose publishes the ingress's admin port 9091 beyond 127.0.0.1")
    worker_sd = [n for sd in jobs.get("worker", {}).get("dns_sd_configs", []) for n in sd.get("names", [])]
    fails.check("worker" in worker_sd, "prometheus.yml does not discover the worker replicas")
    fails.check("nats-exporter:7777" in targets(jobs.get("nats", {})), "prometheus.yml does not scrape the NATS exporter")
    fails.check(any("rules/" in f for f in prom.get("rule_files", [])), "prometheus.yml does not load rules/")
    mounts = {v.get("target"): v.get("source", "") for v in services["prometheus"].get("volumes", [])}
    fails.check(mounts.get("/etc/prometheus/rules", "").endswith("deploy/prometheus/rules"), "prometheus must mount the rules")
    fails.check(
        mounts.get("/etc/prometheus/prometheus.yml", "").endswith("deploy/prometheus/prometheus.yml"),
        "prometheus must mount deploy/prometheus/prometheus.yml",
    )

    # Grafana: provisioning mounted, the dashboard provider path is where the dashboards are.
    graf = services["grafana"]
    gmounts = {v.get("target"): v.get("source", "") for v in graf.get("volumes", [])}
    fails.check(gmounts.get("/etc/grafana/provisioning", "").endswith("deploy/grafana/provisioning"),
                "grafana must mount deploy/grafana/provisioning")
    for path in sorted((DEPLOY / "grafana/provisioning/dashboards").glob("*.yaml")):
        for provider in (yaml.safe_load(path.read_text()) or {}).get("providers", []):
            ppath = provider["options"]["path"]
            fails.check(gmounts.get(ppath, "").endswith("deploy/grafana/dashboards"),
                        f"grafana provider path {ppath} is not the mounted deploy/grafana/dashboards")
    genv = graf.get("environment", {})
    fails.check(genv.get("GF_AUTH_ANONYMOUS_ENABLED") == "true", "grafana anonymous access is off")
    fails.check(genv.get("GF_AUTH_ANONYMOUS_ORG_ROLE") == "Viewer", "grafana anonymous role must be Viewer")
    ports = {str(p.get("published")): p.get("target") for p in graf.get("ports", [])}
    fails.check(ports.get("3000") == 3000, "grafana must be published on port 3000")
    return fails.finish(f"{len(services)} services: pipeline, {replicas} workers, Prometheus, Grafana, simulator and tracing profiles")


# ------------------------------------------------------------------------------------------------
# Kubernetes
# ------------------------------------------------------------------------------------------------

CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobject-keda-v1alpha1.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor-monitoring-v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule-monitoring-v1.json",
}
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")


def validate_schema(doc: dict, fails: Failures) -> str:
    import jsonschema
    import kubernetes_validate.utils as kv

    key = (doc.get("apiVersion"), doc.get("kind"))
    name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
    if key in CRD_SCHEMAS:
        schema = json.loads((SCHEMA_DIR / CRD_SCHEMAS[key]).read_text(encoding="utf-8"))
        validator = jsonschema.Draft202012Validator(schema)
        for err in sorted(validator.iter_errors(doc), key=lambda e: list(e.path)):
            fails.add(f"{name}: {'.'.join(map(str, err.path)) or '(root)'}: {err.message} (bundled CRD schema)")
        return "crd"
    for version in K8S_VERSIONS:
        try:
            kv.validate(doc, version, strict=True)
        except kv.SchemaNotFoundError:
            fails.add(f"{name}: no schema for {key[0]} {key[1]} in Kubernetes {version} (and no bundled CRD schema)")
            return "missing"
        except kv.ValidationError as err:
            fails.add(f"{name}: {'.'.join(map(str, err.path)) or '(root)'}: {err.message} (Kubernetes {version}, strict)")
    return "core"


def pod_spec(doc: dict) -> dict:
    return doc.get("spec", {}).get("template", {}).get("spec", {})


def pod_labels(doc: dict) -> dict:
    return doc.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})


def selector_matches(selector: dict, labels: dict) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        present, value = expr["key"] in labels, labels.get(expr["key"])
        op = expr["operator"]
        if op == "In" and value not in expr.get("values", []):
            return False
        if op == "NotIn" and value in expr.get("values", []):
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def check_workload(doc: dict, fails: Failures) -> None:
    name = f"{doc['kind']}/{doc['metadata']['name']}"
    spec = pod_spec(doc)
    psc = spec.get("securityContext", {})
    fails.check(psc.get("runAsNonRoot") is True, f"{name}: pod securityContext.runAsNonRoot must be true")
    fails.check((psc.get("seccompProfile") or {}).get("type") == "RuntimeDefault", f"{name}: seccompProfile must be RuntimeDefault")
    fails.check(spec.get("automountServiceAccountToken") is False, f"{name}: automountServiceAccountToken should be false")
    for container in spec.get("containers", []) + spec.get("initContainers", []):
        cname = f"{name} container {container['name']}"
        image = container.get("image", "")
        fails.check(":" in image.split("/")[-1] or "@" in image, f"{cname}: image {image} has no tag")
        fails.check(not image.endswith(":latest"), f"{cname}: image {image} uses :latest")
        sc = container.get("securityContext", {})
        fails.check(sc.get("allowPrivilegeEscalation") is False, f"{cname}: allowPrivilegeEscalation must be false")
        fails.check(sc.get("readOnlyRootFilesystem") is True, f"{cname}: readOnlyRootFilesystem must be true")
        fails.check("ALL" in ((sc.get("capabilities") or {}).get("drop") or []), f"{cname}: must drop ALL capabilities")
        fails.check(sc.get("privileged") is not True, f"{cname}: privileged")
        res = container.get("resources", {})
        for section in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                fails.check(resource in (res.get(section) or {}), f"{cname}: no {section}.{resource}")


def env_of(doc: dict, container: str, configmaps: dict) -> dict:
    """The container's environment: envFrom ConfigMaps, then env literals."""
    result = {}
    for c in pod_spec(doc).get("containers", []):
        if c["name"] != container:
            continue
        for source in c.get("envFrom", []):
            ref = (source.get("configMapRef") or {}).get("name")
            result.update(configmaps.get(ref, {}).get("data", {}))
        for item in c.get("env", []):
            result[item["name"]] = item.get("value", "<ref>")
    return result


def probe_path(container: dict, probe: str) -> str | None:
    return ((container.get(probe) or {}).get("httpGet") or {}).get("path")


def check_work_triggers(triggers: list[dict], worker: dict, fails: Failures) -> None:
    """The worker ScaledObject measures the work the workers hold (up to IN_FLIGHT_PER_PARTITION events per partition):
    events in flight, or the workers' CPU (which needs a CPU request on the container)."""
    in_flight = [t for t in triggers if t["type"] == "prometheus"
                 and re.search(r"sum\(max by \(partition\) \(yourlogic_queue_in_flight", t["metadata"].get("query", ""))]
    cpu = [t for t in triggers if t["type"] == "cpu"]
    fails.check(bool(in_flight or cpu),
                "ScaledObject worker must also scale on the work the workers hold: "
                "sum(max by (partition) (yourlogic_queue_in_flight)) or a cpu trigger")
    containers = {c["name"]: c for c in pod_spec(worker).get("containers", [])}
    for trig in cpu:
        name = trig["metadata"].get("containerName", "worker")
        request = ((containers.get(name) or {}).get("resources") or {}).get("requests", {}).get("cpu")
        fails.check(bool(request), f"ScaledObject worker cpu trigger: container {name} needs a CPU request")


# Secrets the production overlay expects to exist (created from your secret store; docs/deploy.md).
PRODUCTION_SECRETS = {"yourlogic-saltedcx-token", "yourlogic-nats-tls", "yourlogic-nats-ca",
                      "yourlogic-nats-ingress", "yourlogic-nats-worker", "yourlogic-nats-admin"}


NATS_SECRETS_EXAMPLE = DEPLOY / "k8s/overlays/production/nats-secrets.example.yaml"


def check_example_secrets(fails: Failures) -> None:
    """The example NATS Secrets: valid Secrets, exactly the NATS ones production expects, with
    placeholder values only."""
    docs = load_yaml_docs(NATS_SECRETS_EXAMPLE)
    for doc in docs:
        validate_schema(doc, fails)
        for key, value in (doc.get("stringData") or {}).items():
            fails.check("replace" in value.lower(), f"{rel(NATS_SECRETS_EXAMPLE)}: {doc['metadata']['name']}.{key} is not a placeholder")
    names = {d["metadata"]["name"] for d in docs}
    expected = {n for n in PRODUCTION_SECRETS if n.startswith("yourlogic-nats-")}
    fails.check(names == expected, f"{rel(NATS_SECRETS_EXAMPLE)} shows {sorted(names)}, production expects {sorted(expected)}")


def env_sources(doc: dict, container: str) -> dict:
    """The container's env entries by name: the literal value, or the secretKeyRef (name, key)."""
    result = {}
    for c in pod_spec(doc).get("containers", []):
        if c["name"] == container:
            for item in c.get("env", []):
                ref = (item.get("valueFrom") or {}).get("secretKeyRef")
                result[item["name"]] = (ref["name"], ref["key"]) if ref else item.get("value")
    return result


def secret_mounts(doc: dict, container: str) -> list[str]:
    """Mount paths of the container's Secret volumes."""
    secret_volumes = {v["name"] for v in pod_spec(doc).get("volumes", []) if "secret" in v}
    return [m["mountPath"] for c in pod_spec(doc).get("containers", []) if c["name"] == container
            for m in c.get("volumeMounts", []) if m["name"] in secret_volumes]


def under_any(path: str, dirs: list[str]) -> bool:
    return any(path.startswith(d.rstrip("/") + "/") for d in dirs)


def nats_conf_of(configmaps: dict) -> dict:
    """The rendered NATS configuration (nats-config's nats.conf with its includes, which must be
    keys of the same ConfigMap since it is mounted as one directory)."""
    data = next((cm.get("data", {}) for n, cm in configmaps.items() if n.startswith("nats-config")), {})
    def include(path: str) -> str:
        name = Path(path).name
        if name not in data:
            raise nats_security.ParseError(f"include {path}: no key {name} in the nats-config ConfigMap")
        return data[name]
    return nats_security.parse(data.get("nats.conf", ""), include)


def check_nats_locked_down(nats: dict, services: dict, configmaps: dict, wenv: dict, fails: Failures) -> None:
    """Production NATS: authentication and permissions, TLS for clients and routes, the secrets
    wired from Secrets, and each service logging in as its own user over TLS."""
    try:
        conf = nats_conf_of(configmaps)
    except nats_security.ParseError as err:
        fails.add(f"nats.conf: {err}")
        return
    layout_shards = int(wenv.get("SHARDS", "1"))
    stream = wenv.get("STREAM_NAME", "YOURLOGIC_EVENTS")
    streams = [stream] if layout_shards == 1 else [f"{stream}_{i}" for i in range(layout_shards)]
    for problem in nats_security.locked_down(conf, streams, cluster_routes=nats["spec"].get("replicas", 1) > 1,
                                             require_tls=True):
        fails.add(f"production NATS: {problem}")
    nenv = env_sources(nats, "nats")
    for name in sorted(nats_security.env_references(conf) - {"SERVER_NAME"}):
        fails.check(isinstance(nenv.get(name), tuple), f"production NATS: ${name} must come from a Secret (env secretKeyRef)")
    mounted = secret_mounts(nats, "nats")
    tls_files = [(conf.get("tls") or {}).get(k) for k in ("cert_file", "key_file")]
    tls_files += [((conf.get("cluster") or {}).get("tls") or {}).get(k) for k in ("cert_file", "key_file")]
    for path in sorted(set(filter(None, tls_files))):
        fails.check(under_any(path, mounted), f"production NATS: {path} is not on a mounted Secret")
    users = nats_security.users(conf)
    for service, doc in services.items():
        senv = {**env_of(doc, service, configmaps), **env_sources(doc, service)}
        fails.check(senv.get("NATS_USER") == service, f"{service}: NATS_USER must be `{service}` (its own NATS user)")
        password = senv.get("NATS_PASSWORD")
        fails.check(isinstance(password, tuple), f"{service}: NATS_PASSWORD must come from a Secret")
        user_password = (users.get(service, ("", {}))[1].get("password") or {})
        server_side = nenv.get(user_password.get("$env", "")) if isinstance(user_password, dict) else None
        fails.check(password is None or password == server_side,
                    f"{service}: NATS_PASSWORD ({password}) is not the Secret NATS checks user {service} against ({server_side})")
        uses_tls = str(senv.get("NATS_URL", "")).startswith("tls://") or str(senv.get("NATS_TLS", "")).lower() == "true"
        fails.check(uses_tls, f"{service}: must connect to NATS over TLS (NATS_URL tls://... or NATS_TLS=true)")
        ca = senv.get("NATS_TLS_CA_FILE")
        fails.check(isinstance(ca, str) and under_any(ca, secret_mounts(doc, service)),
                    f"{service}: NATS_TLS_CA_FILE ({ca}) must be a file of a mounted Secret (the cluster's CA)")


MONITORING_NAMESPACE = {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
OPEN_CIDRS = {"0.0.0.0/0", "::/0"}


def check_ingress_port_sources(pols: dict, ingress: dict, service: dict | None, fails: Failures) -> None:
    """Only the ingress controller's pods (a namespace and pod labels) may reach the ingress's
    port 8080; Prometheus's namespace too while /metrics is served on that port (the Service has
    no port of its own for it). A load balancer's source ranges (ipBlock) are allowed, the
    whole Internet is not."""
    labels = pod_labels(ingress)
    metrics_elsewhere = any(p.get("name") in ("metrics", "admin") for p in (service or {}).get("spec", {}).get("ports", []))
    entry_points = 0
    for name, pol in pols.items():
        spec = pol["spec"]
        if "Ingress" not in spec.get("policyTypes", []) or not selector_matches(spec.get("podSelector") or {}, labels):
            continue
        for rule in spec.get("ingress") or []:
            ports = rule.get("ports")
            if ports and not any(p.get("port") in (8080, "http") for p in ports):
                continue
            if not rule.get("from"):
                fails.add(f"NetworkPolicy/{name}: lets any source reach the ingress's port 8080")
                continue
            for peer in rule["from"]:
                namespaces, pods, block = peer.get("namespaceSelector"), peer.get("podSelector"), peer.get("ipBlock")
                if block:
                    fails.check(block.get("cidr") not in OPEN_CIDRS, f"NetworkPolicy/{name}: {block.get('cidr')} may reach the ingress's port 8080")
                    entry_points += 1
                elif namespaces and pods and (namespaces.get("matchLabels") or namespaces.get("matchExpressions")) \
                        and (pods.get("matchLabels") or pods.get("matchExpressions")):
                    entry_points += 1
                elif namespaces == MONITORING_NAMESPACE and not pods and not metrics_elsewhere:
                    continue
                else:
                    fails.add(f"NetworkPolicy/{name}: {peer} may reach the ingress's port 8080; only the ingress "
                              "controller's pods (a namespace and pod labels in one peer) may")
    fails.check(entry_points > 0, "no NetworkPolicy lets the ingress controller reach the ingress's port 8080")


def cmd_k8s(args: list[str]) -> int:
    rendered, overlay = Path(args[0]), args[1]
    docs = load_yaml_docs(rendered)
    fails = Failures()
    fails.check(bool(docs), f"{rendered} holds no objects")
    by_kind: dict[str, dict[str, dict]] = {}
    kinds_seen = {"core": 0, "crd": 0, "missing": 0}
    for doc in docs:
        kinds_seen[validate_schema(doc, fails)] += 1
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
        fails.check(
            doc["kind"] == "Namespace" or doc["metadata"].get("namespace") == "yourlogic",
            f"{doc['kind']}/{doc['metadata']['name']}: not in namespace yourlogic",
        )
    # ScaledObject: KEDA turns `advanced.horizontalPodAutoscalerConfig.behavior` into an HPA;
    # validate it with the Kubernetes HPA schema.
    for so in by_kind.get("ScaledObject", {}).values():
        behavior = so["spec"].get("advanced", {}).get("horizontalPodAutoscalerConfig", {}).get("behavior")
        if behavior:
            hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                   "metadata": {"name": f"keda-hpa-{so['metadata']['name']}"},
                   "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
                            "minReplicas": max(1, so["spec"].get("minReplicaCount", 1)),
                            "maxReplicas": so["spec"].get("maxReplicaCount", 100), "behavior": behavior}}
            validate_schema(hpa, fails)

    configmaps = by_kind.get("ConfigMap", {})
    secrets = by_kind.get("Secret", {})
    deployments = by_kind.get("Deployment", {})
    statefulsets = by_kind.get("StatefulSet", {})
    workloads = {**deployments, **statefulsets}
    for kind in WORKLOAD_KINDS:
        for doc in by_kind.get(kind, {}).values():
            check_workload(doc, fails)

    # References between objects resolve (kustomize renames generated ConfigMaps consistently).
    external_secrets = PRODUCTION_SECRETS if overlay == "production" else set()
    for wname, doc in workloads.items():
        spec = pod_spec(doc)
        for c in spec.get("containers", []):
            for source in c.get("envFrom", []):
                ref = (source.get("configMapRef") or {}).get("name")
                if ref:
                    fails.check(ref in configmaps, f"{wname}: envFrom ConfigMap {ref} not rendered")
            for item in c.get("env", []):
                sref = (item.get("valueFrom") or {}).get("secretKeyRef")
                if sref:
                    fails.check(sref["name"] in secrets or sref["name"] in external_secrets,
                                f"{wname}: Secret {sref['name']} not rendered")
        for vol in spec.get("volumes", []):
            if "configMap" in vol:
                fails.check(vol["configMap"]["name"] in configmaps, f"{wname}: volume ConfigMap {vol['configMap']['name']} missing")
            if "secret" in vol:
                sname = vol["secret"]["secretName"]
                fails.check(sname in secrets or sname in external_secrets, f"{wname}: volume Secret {sname} not rendered")
    for sname, svc in by_kind.get("Service", {}).items():
        sel = svc["spec"].get("selector") or {}
        matched = [w for w in workloads.values() if selector_matches({"matchLabels": sel}, pod_labels(w))]
        fails.check(bool(matched), f"Service/{sname}: selector {sel} matches no pods")
        for port in svc["spec"].get("ports", []):
            tp = port.get("targetPort")
            if isinstance(tp, str) and matched:
                names = {p.get("name") for w in matched for c in pod_spec(w).get("containers", []) for p in c.get("ports", [])}
                fails.check(tp in names, f"Service/{sname}: targetPort {tp} is no container port name")
    for kind in ("PodDisruptionBudget", "NetworkPolicy"):
        for oname, obj in by_kind.get(kind, {}).items():
            sel = obj["spec"].get("selector") if kind == "PodDisruptionBudget" else obj["spec"].get("podSelector")
            if sel:
                fails.check(any(selector_matches(sel, pod_labels(w)) for w in workloads.values()),
                            f"{kind}/{oname}: selector matches no pods")
    for hname, hpa in by_kind.get("HorizontalPodAutoscaler", {}).items():
        fails.check(hpa["spec"]["scaleTargetRef"]["name"] in deployments, f"HPA/{hname}: target missing")
    for mname, sm in by_kind.get("ServiceMonitor", {}).items():
        svcs = [s for s in by_kind.get("Service", {}).values()
                if selector_matches(sm["spec"]["selector"], s["metadata"].get("labels", {}))]
        fails.check(bool(svcs), f"ServiceMonitor/{mname}: selects no Service")
        for ep in sm["spec"]["endpoints"]:
            fails.check(any(ep.get("port") in {p.get("name") for p in s["spec"].get("ports", [])} for s in svcs),
                        f"ServiceMonitor/{mname}: no selected Service has port {ep.get('port')}")
    ing = by_kind.get("Ingress", {})
    for iname, obj in ing.items():
        for rule in obj["spec"].get("rules", []):
            for p in rule.get("http", {}).get("paths", []):
                fails.check(p["backend"]["service"]["name"] in by_kind.get("Service", {}),
                            f"Ingress/{iname}: backend Service missing")

    # The pipeline's own requirements.
    ingress, worker = deployments.get("ingress"), deployments.get("worker")
    fails.check(ingress is not None and worker is not None, "ingress and worker Deployments are required")
    if ingress and worker:
        for doc, ports in ((ingress, (8080, 9091)), (worker, (9090,))):
            c = pod_spec(doc)["containers"][0]
            dname = doc["metadata"]["name"]
            fails.check(probe_path(c, "livenessProbe") == "/healthz", f"{dname}: liveness probe must be /healthz")
            fails.check(probe_path(c, "readinessProbe") == "/readyz", f"{dname}: readiness probe must be /readyz")
            for port in ports:
                fails.check(any(p.get("containerPort") == port for p in c.get("ports", [])), f"{dname}: must expose {port}")
        fails.check("ingress" in by_kind.get("HorizontalPodAutoscaler", {}), "ingress needs a HorizontalPodAutoscaler")
        for dname in ("ingress", "worker"):
            fails.check(any(selector_matches(p["spec"]["selector"], pod_labels(deployments[dname]))
                            for p in by_kind.get("PodDisruptionBudget", {}).values()), f"{dname} needs a PodDisruptionBudget")
        fails.check("replicas" not in worker["spec"], "worker Deployment must not set replicas (KEDA owns them)")
        fails.check("replicas" not in ingress["spec"], "ingress Deployment must not set replicas (the HPA owns them)")
        wenv = env_of(worker, "worker", configmaps)
        ienv = env_of(ingress, "ingress", configmaps)
        drain = duration_seconds(wenv.get("SHUTDOWN_TIMEOUT", "20s"))
        grace = pod_spec(worker).get("terminationGracePeriodSeconds", 30)
        fails.check(grace >= drain + 15, f"worker terminationGracePeriodSeconds {grace} must exceed SHUTDOWN_TIMEOUT {drain}s by 15s+")
        for key in ("NATS_URL", "PARTITIONS", "STREAM_NAME", "STREAM_REPLICAS"):
            fails.check(key in wenv and wenv.get(key) == ienv.get(key), f"{key} must be set and equal for ingress and worker")
        fails.check(wenv.get("SALTEDCX_TOKEN") == "<ref>" and ienv.get("SALTEDCX_TOKEN") == "<ref>",
                    "SALTEDCX_TOKEN must come from a Secret")
        partitions = int(wenv.get("PARTITIONS", "64"))
        replicas = int(wenv.get("STREAM_REPLICAS", "1"))
        nats = statefulsets.get("nats")
        if nats:
            nats_replicas = nats["spec"].get("replicas", 1)
            fails.check(replicas <= nats_replicas, f"STREAM_REPLICAS={replicas} > {nats_replicas} NATS servers")
            fails.check(nats["spec"].get("volumeClaimTemplates"), "NATS needs a PersistentVolumeClaim for JetStream")
            if overlay == "production":
                fails.check(nats_replicas == 3, f"production NATS must have 3 servers, has {nats_replicas}")
            conf = next((cm["data"].get("nats.conf", "") for n, cm in configmaps.items() if n.startswith("nats-config")), "")
            fails.check("jetstream" in conf and "store_dir" in conf, "nats.conf must enable JetStream with file storage")
            if nats_replicas > 1:
                fails.check("cluster" in conf and all(f"nats-{i}.nats-headless" in conf for i in range(nats_replicas)),
                            f"nats.conf must route to all {nats_replicas} servers")
        if overlay == "production" and nats:
            check_nats_locked_down(nats, {"ingress": ingress, "worker": worker}, configmaps, wenv, fails)
        if overlay == "production":
            fails.check(replicas == 3, f"production needs STREAM_REPLICAS=3, has {replicas}")
            fails.check(not any(s["metadata"].get("annotations", {}).get("yourlogic.example/placeholder") for s in secrets.values()),
                        "production must not ship the example token Secret")
            fails.check(not (PRODUCTION_SECRETS & set(secrets)),
                        f"production must not render {sorted(PRODUCTION_SECRETS & set(secrets))}: they come from your secret store")
            check_example_secrets(fails)
        sos = [so for so in by_kind.get("ScaledObject", {}).values() if so["spec"]["scaleTargetRef"]["name"] == "worker"]
        fails.check(bool(sos) or overlay == "base", "worker needs a KEDA ScaledObject")
        for so in sos:
            lo, hi = so["spec"].get("minReplicaCount", 0), so["spec"].get("maxReplicaCount", 100)
            fails.check(lo <= hi, f"ScaledObject worker: minReplicaCount {lo} > maxReplicaCount {hi}")
            fails.check(hi <= partitions, f"ScaledObject worker: maxReplicaCount {hi} > PARTITIONS {partitions} (extra workers idle)")
            triggers = so["spec"]["triggers"]
            queries = [t["metadata"].get("query", "") for t in triggers if t["type"] == "prometheus"]
            fails.check(any(re.search(r"sum\(max by \(partition\) \(yourlogic_queue_pending", q) for q in queries),
                        "ScaledObject worker must scale on sum(max by (partition) (yourlogic_queue_pending))")
            check_work_triggers(triggers, worker, fails)
        mounts = [m for c in pod_spec(worker)["containers"] for m in c.get("volumeMounts", [])]
        fails.check(any(m["mountPath"] == "/etc/yourlogic" for m in mounts), "worker must mount the playbook at /etc/yourlogic")
        playbook = [cm for n, cm in configmaps.items() if n.startswith("yourlogic-playbook")]
        fails.check(bool(playbook) and "playbook.toml" in playbook[0].get("data", {}), "playbook ConfigMap needs playbook.toml")
        if "PLAYBOOK" in wenv:
            fails.check(wenv["PLAYBOOK"] == "/etc/yourlogic/playbook.toml", "PLAYBOOK must point at /etc/yourlogic/playbook.toml")
    pols = by_kind.get("NetworkPolicy", {})
    fails.check(any(p["spec"].get("podSelector") == {} and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
                    for p in pols.values()), "a default-deny NetworkPolicy is required")
    if ingress:
        check_ingress_port_sources(pols, ingress, by_kind.get("Service", {}).get("ingress"), fails)
    rules = [pr for pr in by_kind.get("PrometheusRule", {}).values()]
    fails.check(bool(rules) or overlay == "base", "a PrometheusRule is required")
    if rules:
        import yaml

        expected = {"groups": []}
        for path in rule_files():
            expected["groups"] += (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("groups", [])
        fails.check(rules[0]["spec"] == expected, "PrometheusRule spec differs from deploy/prometheus/rules (run scripts/sync-prometheusrule.py)")
    fails.check(kinds_seen["missing"] == 0, "objects without any schema")
    return fails.finish(
        f"{overlay}: {len(docs)} objects valid ({kinds_seen['core']} against Kubernetes {' and '.join(K8S_VERSIONS)} "
        f"strict schemas, {kinds_seen['crd']} against bundled CRD schemas), policy checks passed"
    )


def cmd_nats_pod_config(args: list[str]) -> int:
    """Writes the rendered nats-config ConfigMap to OUT/etc/nats-config/ with every absolute
    /etc/ path moved below OUT/etc/, so that `nats-server -c OUT/etc/nats-config/nats.conf -t`
    checks what the pod runs against certificates made for the check."""
    rendered, out = Path(args[0]), Path(args[1])
    configmaps = {d["metadata"]["name"]: d for d in load_yaml_docs(rendered) if d["kind"] == "ConfigMap"}
    data = next((cm.get("data", {}) for n, cm in configmaps.items() if n.startswith("nats-config")), None)
    if not data:
        print(f"no nats-config ConfigMap in {rendered}")
        return 1
    target = out / "etc/nats-config"
    target.mkdir(parents=True, exist_ok=True)
    for name, text in data.items():
        text = re.sub(r"(?<![\w.])/etc/", lambda _: f"{out}/etc/", text)
        (target / name).write_text(text, encoding="utf-8")
    print(f"{', '.join(sorted(data))} written to {target}")
    return 0


def cmd_nats_routes(args: list[str]) -> int:
    out, server, secrets, other = Path(args[0]), args[1], Path(args[2]), Path(args[3])
    env = {f"NATS_{user.upper()}_PASSWORD": (secrets / f"{user}-password").read_text(encoding="utf-8")
           for user in ("ingress", "worker", "admin")}
    fails = Failures()
    for problem in nats_routes.check(out / "etc/nats-config", server, f"{out}/etc/nats-tls", str(other), env):
        fails.add(problem)
    return fails.finish("three servers of the rendered production configuration routed over mutual TLS; "
                        "a server with another CA's certificate was refused")


def compose_nats_conf(nats: dict, config_target: str) -> dict:
    """The compose NATS configuration mounted at `config_target`, includes resolved through the
    service's other bind mounts (as the container sees them)."""
    mounts = {v["target"]: Path(v["source"]) for v in nats.get("volumes", []) if v.get("type") == "bind"}
    base = Path(config_target).parent
    def read(path: str) -> str:
        # As the container sees it (normpath: no look at this machine's own /etc).
        target = path if path.startswith("/") else os.path.normpath(str(base / path))
        if target not in mounts:
            raise nats_security.ParseError(f"include {path}: nothing mounted at {target}")
        return mounts[target].read_text(encoding="utf-8")
    return nats_security.parse(read(config_target), read)


NATS_CONFIG_TARGET = "/etc/nats/yourlogic.conf"


def check_compose_nats(services: dict, fails: Failures, require_tls: bool) -> None:
    """NATS in compose has the production users and permissions; each service logs in as its
    own user with the password NATS checks it against (and over TLS with `require_tls`)."""
    nats = services["nats"]
    try:
        conf = compose_nats_conf(nats, NATS_CONFIG_TARGET)
    except (nats_security.ParseError, OSError) as err:
        fails.add(f"nats config: {err}")
        return
    mounts = {v["target"]: v["source"] for v in nats.get("volumes", []) if v.get("type") == "bind"}
    production = str(DEPLOY / "k8s/overlays/production/nats-auth.conf")
    fails.check(production in mounts.values(), "nats must mount the production permissions "
                "(deploy/k8s/overlays/production/nats-auth.conf)")
    env = services["worker"].get("environment", {})
    for problem in nats_security.locked_down(conf, [env.get("STREAM_NAME", "YOURLOGIC_EVENTS")],
                                             cluster_routes=False, require_tls=require_tls):
        fails.add(f"compose NATS: {problem}")
    nenv = nats.get("environment", {})
    users = nats_security.users(conf)
    for name in nats_security.env_references(conf):
        fails.check(bool(nenv.get(name)), f"nats: ${name} is not set in its environment")
    for service in ("ingress", "worker"):
        senv = services[service].get("environment", {})
        fails.check(senv.get("NATS_USER") == service, f"{service}: NATS_USER must be `{service}`")
        expected = (users.get(service, ("", {}))[1].get("password") or {})
        variable = expected.get("$env") if isinstance(expected, dict) else None
        fails.check(bool(senv.get("NATS_PASSWORD")) and senv.get("NATS_PASSWORD") == nenv.get(variable or ""),
                    f"{service}: NATS_PASSWORD must equal the nats service's {variable}")
        if require_tls:
            fails.check(str(senv.get("NATS_URL", "")).startswith("tls://"), f"{service}: NATS_URL must be tls://")
            ca = senv.get("NATS_TLS_CA_FILE", "")
            smounts = {v["target"] for v in services[service].get("volumes", []) if v.get("type") == "bind"}
            fails.check(ca in smounts, f"{service}: NATS_TLS_CA_FILE ({ca}) is not mounted")


def cmd_compose_tls(args: list[str]) -> int:
    config = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    fails = Failures()
    check_compose_nats(config.get("services", {}), fails, require_tls=True)
    return fails.finish("compose.tls.yaml: NATS requires TLS; ingress and worker use tls:// with the mounted CA")


# ------------------------------------------------------------------------------------------------
# NATS Helm values, docs
# ------------------------------------------------------------------------------------------------


def cmd_nats_values(_args: list[str]) -> int:
    import yaml

    path = DEPLOY / "k8s/nats/values.yaml"
    values = yaml.safe_load(path.read_text(encoding="utf-8"))
    fails = Failures()
    config = values.get("config", {})
    fails.check(config.get("cluster", {}).get("enabled") is True, "cluster.enabled must be true")
    fails.check(config.get("cluster", {}).get("replicas") == 3, "cluster.replicas must be 3")
    js = config.get("jetstream", {})
    fails.check(js.get("enabled") is True and js.get("fileStore", {}).get("enabled") is True, "JetStream file storage must be on")
    fails.check(config.get("monitor", {}).get("enabled") is True, "monitoring (8222) must be on")
    fails.check(values.get("promExporter", {}).get("enabled") is True, "the Prometheus exporter must be on")
    return fails.finish(f"{rel(path)}: 3-node JetStream cluster with file storage, monitor and exporter")


def cmd_docs(_args: list[str]) -> int:
    path = ROOT / "docs/deploy.md"
    fails = Failures()
    if not path.exists():
        fails.add("docs/deploy.md is missing")
        return fails.finish("")
    text = path.read_text(encoding="utf-8")
    headings = {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-") for h in re.findall(r"^#+ (.*)$", text, re.M)}
    fails.check("alerts" in headings, "docs/deploy.md needs an `Alerts` heading (rules link to #alerts)")
    for needle in ("http://localhost:3000", "http://localhost:9090", "SALTEDCX_TOKEN", "PARTITIONS", "nats-jetstream",
                   "sync_interval", "max_bytes", "scripts/check-deploy.sh", "PLAYBOOK", "scripts/compose-e2e.sh",
                   "nats-auth.conf", "scripts/nats-secrets.sh", "ingress-from-controller", "compose.tls.yaml",
                   "yourlogic_queue_in_flight", "OTEL_EXPORTER_OTLP_ENDPOINT", "--profile tracing",
                   "http://localhost:16686"):
        fails.check(needle in text, f"docs/deploy.md does not mention {needle}")
    fails.check("security" in headings, "docs/deploy.md needs a `Security` section")
    for secret in sorted(PRODUCTION_SECRETS):
        fails.check(secret in text, f"docs/deploy.md does not explain the Secret {secret}")
    reliability = (ROOT / "docs/reliability.md").read_text(encoding="utf-8")
    fails.check("## Security: threats and defences" in reliability,
                "docs/reliability.md needs its `Security: threats and defences` table (docs/deploy.md links to it)")
    return fails.finish("docs/deploy.md covers URLs, security, scaling, token rotation, NATS sizing and the checks")


COMMANDS = {
    "k8s": cmd_k8s,
    "compose": cmd_compose,
    "dockerfile": cmd_dockerfile,
    "dashboard": cmd_dashboard,
    "dashboard-queries": cmd_dashboard_queries,
    "metrics": cmd_metrics,
    "used-metric-names": cmd_used_metric_names,
    "nats-values": cmd_nats_values,
    "nats-pod-config": cmd_nats_pod_config,
    "nats-routes": cmd_nats_routes,
    "compose-tls": cmd_compose_tls,
    "docs": cmd_docs,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__)
        sys.exit(2)
    sys.exit(COMMANDS[sys.argv[1]](sys.argv[2:]))
