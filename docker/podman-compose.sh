#!/usr/bin/env bash
# docker/docker-compose.yml under podman on this host: the settings of docker/podman-env.sh,
# docker/compose.podman.yml merged over the compose file (host network, no pulls), image
# builds on the local bases with the host's network.
#   docker/base-image.sh                          # once: the local base images
#   docker/podman-compose.sh build oms            # the image both services run (build it
#                                                 # once: podman-compose builds in parallel)
#   docker/podman-compose.sh up -d                # start oms run and the publisher
#   docker/podman-compose.sh down                 # stop, remove containers (volumes stay)
#   docker/podman-compose.sh down -v              # stop, remove containers and volumes
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=docker/podman-env.sh
source "$here/podman-env.sh"
exec podman-compose -f "$here/docker-compose.yml" -f "$here/compose.podman.yml" \
    --podman-build-args="--network=host --ignorefile=$here/Dockerfile.dockerignore" "$@"
