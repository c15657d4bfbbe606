# NATS server image for scripts/compose-e2e.sh, on a base image made locally (no registry): the
# pinned nats-server binary that scripts/install-nats-server.sh installs, run as a non-root
# user. The build context holds `nats-server` and an empty `data/` directory.
#
#   docker build -f deploy/compose/e2e/nats.Dockerfile --build-arg BASE_IMAGE=IMAGE -t TAG CONTEXT
#
# The base image needs `wget` for compose.yaml's health check (the official nats:alpine image
# has it from busybox).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY nats-server /usr/local/bin/nats-server
# JetStream's store directory (`-sd /data`): a fresh named volume takes this directory's owner.
COPY --chown=65532:65532 data/ /data/
USER 65532:65532
EXPOSE 4222 8222
ENTRYPOINT ["/usr/local/bin/nats-server"]
