# Podman settings of this kind of host, in one place: sourced by docker/base-image.sh and
# docker/podman-compose.sh (which tests/integration/docker/test_podman.py and the README run).
#   containers.conf (CONTAINERS_CONF): runtime runc (crun fails on this host's cgroup layout),
#     cgroup manager cgroupfs (no systemd), no default ulimits (they cannot be set here),
#     host network (loopback only; no bridge)
#   the local base images that docker/base-image.sh makes (no image registry is reachable)
OMS_PODMAN_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export CONTAINERS_CONF="$OMS_PODMAN_DIR/containers.conf"
export OMS_BASE_IMAGE="${OMS_BASE_IMAGE:-localhost/oms-base:bookworm}"
export OMS_BUILD_BASE_IMAGE="${OMS_BUILD_BASE_IMAGE:-localhost/oms-build-base:bookworm}"
