# Prometheus image for scripts/compose-e2e.sh, on a base image made locally (no registry): the
# `prometheus` binary of Debian's package (the one scripts/install-deploy-tools.sh extracts for
# promtool), laid out like prom/prometheus: /bin/prometheus as the entrypoint, data in
# /prometheus, user nobody. The build context holds `prometheus` and an empty `data/` directory.
#
#   docker build -f deploy/compose/e2e/prometheus.Dockerfile --build-arg BASE_IMAGE=IMAGE -t TAG CONTEXT
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY prometheus /bin/prometheus
COPY --chown=65534:65534 data/ /prometheus/
USER 65534:65534
EXPOSE 9090
ENTRYPOINT ["/bin/prometheus"]
