"""What can be checked of docker/ without a Docker engine.

* the compose file parses with ``docker compose config`` (or podman-compose) where a compose
  client is installed (skipped with the reason otherwise), and names the five services with
  their entry points and volumes;
* the Dockerfile is multi-stage, runs as a non-root user and has a health check;
* (slow) the build stage's step -- ``pip wheel . -w DIR --no-deps`` on the files the Dockerfile
  copies -- produces a wheel that installs into a fresh virtual environment, where the compiled
  core imports and the container health check passes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "docker-compose.yml"
SERVICES = {
    "sim": "gateways.sim", "engine": "oms_core.engine", "gateway": '"gateways"',
    "writer": '"writer"', "publisher": "examples/publisher.py",
}


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


def test_compose_file_runs_the_five_services_with_volumes():
    text = COMPOSE.read_text()
    assert "\t" not in text
    blocks = _service_blocks(text)
    assert set(blocks) == set(SERVICES)
    for name, entry in SERVICES.items():
        assert entry in blocks[name], f"service {name} does not run {entry}"
    assert "journal:/var/lib/oms/journal" in blocks["engine"]
    assert "journal:/var/lib/oms/journal" in blocks["writer"]
    assert "db:/var/lib/oms/db" in blocks["writer"]
    assert re.search(r"^volumes:\n  journal:\n  db:", text, flags=re.M)
    # the files the services mount or read exist and hold no secrets
    for f in ("sim.toml", "oms.toml", "gateway-sim.toml", "healthcheck.py"):
        assert (DOCKER / f).exists()
    assert not re.search(r"^\s*(api_secret|secret|api_key_value)\s*=", (DOCKER / "oms.toml")
                         .read_text(), flags=re.M)


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


def test_container_configs_load():
    from gateways.config import load_config as load_gateway
    from oms_core.config import load_config

    cfg = load_config(DOCKER / "oms.toml")
    assert cfg.writer.database == "/var/lib/oms/db/oms.duckdb"
    assert cfg.engine.commands == "tcp://engine:5560"
    gw = load_gateway(DOCKER / "gateway-sim.toml")
    assert {i.symbol for i in gw.instruments} == set(cfg.instruments)


# the files COPY'd into the build stage (see docker/Dockerfile)
BUILD_FILES = ["pyproject.toml", "setup.py", "README.md"]
BUILD_DIRS = ["oms_core", "gateways", "bindings", "benchmarks", "writer"]


def _ignore(directory: str, names: list[str]) -> set[str]:
    keep_c = directory.endswith(os.path.join("bindings", "c")) or directory.endswith("includes")
    return {n for n in names if n in ("__pycache__", "build") or n.endswith((".so", ".html"))
            or (n.endswith(".c") and not keep_c)}


@pytest.mark.slow
@pytest.mark.timeout(900)
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
