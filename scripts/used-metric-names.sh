#!/usr/bin/env bash
# Prints, one per line and sorted, every yourlogic_* series name that the Grafana dashboards,
# the Prometheus rules and the KEDA queries use, as written there (histograms as
# <name>_bucket/_sum/_count). `--base` prints metric family names instead (histogram suffixes
# removed), as they appear in `# TYPE` lines of /metrics.
#
# For tests that compare them with the live /metrics of the ingress and the worker. Needs only
# python3 (standard library); scripts/check-deploy.sh also writes the list to
# .tools/used-metric-names.txt.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec python3 "$ROOT/scripts/check-deploy.py" used-metric-names "$@"
