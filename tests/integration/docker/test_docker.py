"""What can be checked of docker/ without a Docker engine.

* the compose file parses with ``docker compose config`` (or podman-compose) where a compose
  client is installed (skipped with the reason otherwise), and names its two services (the
  ``oms run`` supervisor and the publisher) with their entry points and volumes;
* the container health check asks the supervisor's status endpoint and is unhealthy while a
  supervised process is down;
* the Dockerfile is multi-stage, runs as a non-root user and has a health check;
* (slow) the build stage's step -- ``pip wheel . -w DIR --no-deps`` on the files the Dockerfile
  copies -- produces a wheel that installs into a fresh virtual environment, where the compiled
  core imports and the container health check passes (where podman is installed,
  test_podman.py proves the same on the real image instead).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

import pytest

from oms_core.supervisor import ChildSpec, Supervisor, free_port

ROOT = Path(__file__).resolve().parents[3]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "docker-compose.yml"
SERVICES = {"oms": '["oms", "run", "--config", "/etc/oms/oms.toml"]',
            "publisher": "examples/publisher.py"}


def _compose_cmd() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        r = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
        if r.returncode == 0:
            return [docker, "compose"]
    other = shutil.which("docker-compose") or shutil.which("podman-compose")
    return [other] if other else None


def test_compose_config_parses():
    cmd = _compose_cmd()
    if cmd is None:
        pytest.skip("no docker compose client on this machine (docker compose / docker-compose)")
    r = subprocess.run(cmd + ["-f", str(COMPOSE), "config", "--quiet"], capture_output=True,
                       text=True, timeout=60, cwd=DOCKER)
    assert r.returncode == 0, r.stderr


def _service_blocks(text: str) -> dict[str, str]:
    body = text.split("\nservices:\n", 1)[1].split("\nvolumes:\n", 1)[0]
    parts = re.split(r"^  ([a-z_]+):\n", body, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_compose_file_runs_the_supervisor_and_the_publisher_with_volumes():
    text = COMPOSE.read_text()
    assert "\t" not in text
    blocks = _service_blocks(text)
    assert set(blocks) == set(SERVICES)
    for name, entry in SERVICES.items():
        assert entry in blocks[name], f"service {name} does not run {entry}"
    # the journal (and the paper venue's state beside it) and DuckDB outlive the containers
    assert "journal:/var/lib/oms/journal" in blocks["oms"]
    assert "db:/var/lib/oms/db" in blocks["oms"]
    assert "OMS_HEALTH_ENDPOINT: tcp://oms:5563" in blocks["oms"]
    assert re.search(r"^volumes:\n  journal:\n  db:\n", text, flags=re.M)
    # security on (docs/security.md): the keys mounted read-only in both (see the test below)
    assert "${OMS_KEYS_DIR:-./keys}:/etc/oms/keys:ro" in blocks["oms"]
    assert "${OMS_KEYS_DIR:-./keys}/operator.key_secret:/etc/oms/keys/operator.key_secret:ro" \
        in blocks["publisher"]
    # every image is built here, none pulled
    assert re.search(r"^  pull_policy: build", text, flags=re.M)
    # the files the services read exist and hold no secrets
    for f in ("oms.toml", "healthcheck.py"):
        assert (DOCKER / f).exists()
    assert not re.search(r"^\s*(api_secret|secret|api_key_value)\s*=", (DOCKER / "oms.toml")
                         .read_text(), flags=re.M)


def _items(block: str, key: str) -> list[str]:
    """The items of the list ``key:`` of a service block (quotes and comments dropped)."""
    m = re.search(rf"^    {key}:\n((?:      - .*\n|      #.*\n)*)", block, flags=re.M)
    if m is None:
        return []
    return [line.split(" #", 1)[0].strip()[2:].strip().strip('"')
            for line in m.group(1).splitlines() if line.strip().startswith("- ")]


def _render(env: dict[str, str], *files: Path) -> str | None:
    """``compose config`` of ``files`` with ``env``; None without a compose client."""
    cmd = _compose_cmd()
    if cmd is None:
        return None
    args = [a for f in files for a in ("-f", str(f))]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OMS_")}
    r = subprocess.run(cmd + args + ["config"], capture_output=True, text=True, timeout=60,
                       cwd=DOCKER, env={**clean, **env})
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_compose_publishes_only_the_users_ports_on_loopback_unless_oms_bind_says():
    from oms_core.config import load_config

    cfg = load_config(DOCKER / "oms.toml")
    e = cfg.engine
    # what a user reaches: commands, signals, events and the supervisor's status; the
    # engine <-> gateway links and the simulator stay inside the container
    user_ports = [int(ep.rpartition(":")[2]) for ep in (e.commands, e.signals, e.events,
                                                          e.health)]
    blocks = _service_blocks(COMPOSE.read_text())
    assert _items(blocks["oms"], "ports") == [f"${{OMS_BIND:-127.0.0.1}}:{p}:{p}"
                                              for p in user_ports]
    assert "ports:" not in blocks["publisher"]
    assert "network_mode" not in COMPOSE.read_text()
    # on podman's host network nothing is published (the engine binds 127.0.0.1 there)
    assert re.search(r"^  oms:\n    <<: \*host\n    ports: !reset \[\]$",
                     (DOCKER / "compose.podman.yml").read_text(), flags=re.M)
    loopback = _render({}, COMPOSE)
    if loopback is None:
        pytest.skip("no compose client to render the file with")
    for p in user_ports:
        assert f"127.0.0.1:{p}:{p}" in loopback
    assert not re.search(r"^\s*- (0\.0\.0\.0:)?\d+(:\d+)?$", loopback, flags=re.M)
    other = _render({"OMS_BIND": "192.0.2.7"}, COMPOSE)
    assert other is not None and all(f"192.0.2.7:{p}:{p}" in other for p in user_ports)
    podman = _render({}, COMPOSE, DOCKER / "compose.podman.yml")
    assert podman is not None and "ports:" not in podman


def test_compose_keys_are_a_read_only_mount_made_by_oms_keys_never_in_image_env_or_args():
    from oms_core.config import load_config

    text = COMPOSE.read_text()
    blocks = _service_blocks(text)
    cfg = load_config(DOCKER / "oms.toml")
    assert cfg.security.mode == "on"
    # `oms keys --config docker/oms.toml` on the host writes docker/keys, which the services
    # mount read-only where the same file finds them in the container (/etc/oms/oms.toml)
    assert Path(cfg.security.keys_dir) == DOCKER / "keys"
    # the oms service reads every key; the publisher only its own and the engine's public one
    want = {"oms": [["${OMS_KEYS_DIR:-./keys}", "/etc/oms/keys", "ro"]],
            "publisher": [[f"${{OMS_KEYS_DIR:-./keys}}/{f}", f"/etc/oms/keys/{f}", "ro"]
                          for f in ("operator.key_secret", "engine.key")]}
    for name in ("oms", "publisher"):
        mounts = [v.rsplit(":", 2) for v in _items(blocks[name], "volumes")]
        keys = [m for m in mounts if m[1].startswith("/etc/oms/keys")]
        assert keys == want[name], (name, mounts)
        # no key in its command, environment or any other setting (the mounts name files)
        settings = "\n".join(line.split(" #", 1)[0] for line in blocks[name].splitlines()
                             if not line.lstrip().startswith("#") and "/etc/oms/keys" not in line)
        assert not re.search(r"(?i)secret|curve|_key\b|--key", settings), name
    assert not re.search(r"^  keys:$", text.split("\nvolumes:\n", 1)[1], flags=re.M)
    # never in the image: out of the build context and of git
    ignored = (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
    assert "docker/keys" in ignored
    assert subprocess.run(["git", "check-ignore", "-q", "docker/keys/engine.key_secret"],
                          cwd=ROOT, timeout=30).returncode == 0
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert not re.search(r"^COPY .*(keys|docker/ )", dockerfile, flags=re.M)
    # the files are the container user's (0600, read by uid 10001): a fixed uid to chown to
    assert re.search(r"useradd --system --uid 10001 ", dockerfile)


def test_dockerfile_is_multi_stage_non_root_with_health_check():
    text = (DOCKER / "Dockerfile").read_text()
    froms = re.findall(r"^FROM (\S+) AS (\w+)", text, flags=re.M)
    assert froms == [("${BUILD_BASE}", "build"), ("${BASE}", "runtime")]
    # Docker users build on the slim python image; podman here on the local bases
    assert re.search(r"^ARG BASE=python:3\.11-slim$", text, flags=re.M)
    assert re.search(r"^ARG BUILD_BASE=\$\{BASE\}$", text, flags=re.M)
    build, runtime = text.split("AS runtime", 1)
    assert "pip wheel --no-cache-dir . -w /wheels --no-deps" in build
    assert "build-essential" in build and "build-essential" not in runtime
    assert re.search(r"^USER oms$", runtime, flags=re.M)
    assert re.search(r"^HEALTHCHECK .*\n?.*healthcheck.py", runtime, flags=re.M)
    assert "--no-index" in runtime  # the runtime stage installs only the built wheels
    # with the ccxt extra: a desk may configure a ccxt venue
    assert '"$(ls /wheels/oms-*.whl)[ccxt]"' in build
    assert '--find-links=/wheels "oms[ccxt]"' in runtime


def test_container_config_loads_with_the_supervisor_status_on_the_service_name():
    from oms_core.config import load_config

    cfg = load_config(DOCKER / "oms.toml")
    assert cfg.mode == "paper"
    assert cfg.writer.database == "/var/lib/oms/db/oms.duckdb"
    assert cfg.engine.journal_dir == "/var/lib/oms/journal"
    assert (cfg.engine.commands, cfg.engine.health) == ("tcp://oms:5560", "tcp://oms:5563")
    # the compose file's health check asks the configured status endpoint
    assert f"OMS_HEALTH_ENDPOINT: {cfg.engine.health}" in COMPOSE.read_text()


def _health(endpoint: str, sup: Supervisor, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run docker/healthcheck.py against ``sup``'s status endpoint, answering as it asks."""
    env = {k: v for k, v in os.environ.items() if k != "OMS_CONFIG"}
    proc = subprocess.Popen([sys.executable, str(DOCKER / "healthcheck.py")], cwd=cwd,
                            env={**env, "OMS_HEALTH_ENDPOINT": endpoint},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    end = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < end:
        sup.step()
        time.sleep(0.02)
    out, _ = proc.communicate(timeout=10)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out)


def test_health_check_asks_the_supervisor_and_fails_while_a_process_is_down(tmp_path):
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    sleeper = ChildSpec("engine-0", [sys.executable, "-c", "import time; time.sleep(120)"],
                        stop_rank=0, stop_timeout=5.0)
    crasher = ChildSpec("gateway-sim-0", [sys.executable, "-c",
                                          "import time; time.sleep(1); raise SystemExit(3)"],
                        stop_rank=1, stop_timeout=5.0)
    sup = Supervisor([sleeper, crasher], tmp_path / "run", status_endpoint=endpoint,
                     backoff_s=600.0)
    try:
        sup.start(timeout=30)
        end = time.monotonic() + 30
        while sup.child("gateway-sim-0").last_exit is None and time.monotonic() < end:
            sup.step()
            time.sleep(0.05)
        r = _health(endpoint, sup, tmp_path)
        # the crashed gateway waits for its restart: the container is not healthy
        assert r.returncode == 1 and "processes not running: gateway-sim-0" in r.stdout, r
        # back up (its restart brought forward): healthy again
        sup.child("gateway-sim-0").spec.argv[-1] = "import time; time.sleep(120)"
        sup.child("gateway-sim-0").next_start = time.monotonic()
        sup.step()
        r = _health(endpoint, sup, tmp_path)
        assert r.returncode == 0 and r.stdout.strip() == "healthy", r
    finally:
        sup.shutdown()
    # nobody answering is unhealthy too
    r = subprocess.run([sys.executable, str(DOCKER / "healthcheck.py")], cwd=tmp_path,
                       env={**os.environ, "OMS_HEALTH_ENDPOINT": endpoint,
                            "OMS_HEALTH_TIMEOUT_MS": "300", "OMS_CONFIG": ""},
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "no answer" in r.stdout, r


# the files COPY'd into the build stage (see docker/Dockerfile)
BUILD_FILES = ["pyproject.toml", "setup.py", "README.md"]
BUILD_DIRS = ["oms_core", "gateways", "bindings", "benchmarks", "writer", "replay", "analytics"]


def _ignore(directory: str, names: list[str]) -> set[str]:
    keep_c = directory.endswith(os.path.join("bindings", "c")) or directory.endswith("includes")
    return {n for n in names if n in ("__pycache__", "build") or n.endswith((".so", ".html"))
            or (n.endswith(".c") and not keep_c)}


# test_podman builds this same wheel in the image's build stage and runs the stack from it;
# compiling every extension twice would cost CI about three minutes for no new proof
_CONTAINER_TEST_RUNS = shutil.which("podman") is not None and (
    shutil.which("podman-compose") is not None)


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.skipif(_CONTAINER_TEST_RUNS, reason="podman is installed: test_podman builds and "
                    "installs this wheel in the image and runs the stack from it")
def test_wheel_from_build_stage_installs_into_a_fresh_venv(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for f in BUILD_FILES:
        shutil.copy2(ROOT / f, src / f)
    for d in BUILD_DIRS:
        shutil.copytree(ROOT / d, src / d, ignore=_ignore)
    wheels = tmp_path / "wheels"
    env = {**os.environ, "OMS_BUILD_JOBS": "2"}
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "-w", str(wheels),
                        "--no-deps", "-q"], cwd=src, capture_output=True, text=True,
                       timeout=840, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (wheel,) = wheels.glob("oms-*.whl")
    assert "linux" in wheel.name or "macosx" in wheel.name  # a platform wheel: compiled
    fresh = tmp_path / "fresh"
    venv.create(fresh, with_pip=True)
    py = fresh / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    # run from an empty folder so nothing is imported from the source tree
    run = tmp_path / "run"
    run.mkdir()
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "OMS_CONFIG")}
    r = subprocess.run([str(py), "-c", "import oms_core.core as c; print(c.__file__)"],
                       cwd=run, capture_output=True, text=True, timeout=60, env=clean)
    assert r.returncode == 0, r.stderr
    assert str(fresh) in r.stdout and r.stdout.strip().endswith(".so")
    # the container's health check, with the example configuration
    r = subprocess.run([str(py), str(DOCKER / "healthcheck.py")], cwd=run, capture_output=True,
                       text=True, timeout=60,
                       env={**clean, "OMS_CONFIG": str(ROOT / "examples" / "oms.toml")})
    assert r.returncode == 0 and r.stdout.strip() == "healthy", r.stdout + r.stderr


def test_the_health_check_imports_nothing_the_wheel_leaves_out():
    # the image installs the wheel with --no-deps beside its own requirements; the health
    # check loads the configuration, which must not need the clients' pyzmq (fast twin of
    # the wheel test above)
    code = ("import sys, oms_core.core, oms_core.config; "
            "print(sorted(m for m in ('zmq', 'orjson', 'duckdb', 'aiohttp', 'numpy') "
            "if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr
