"""`oms keys --config`: every key a configuration needs, secrets 0600, never overwritten
without --force; security on by default for tcp links; off, reachable endpoints refused
unless --insecure; and no secret key file is ever tracked by git."""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from oms_core import security
from oms_core.config import load_config

ROOT = Path(__file__).resolve().parents[3]


def _desk(tmp: Path, extra: str = "") -> Path:
    text = (ROOT / "examples" / "desk.toml").read_text().replace("../var/desk/", "")
    path = tmp / "desk.toml"
    path.write_text(text + extra)
    return path


def _oms(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "oms_core.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_oms_keys_writes_every_key_once_and_refuses_to_overwrite(tmp_path: Path) -> None:
    path = _desk(tmp_path)
    r = _oms("keys", "--config", str(path))
    assert r.returncode == 0, r.stderr
    cfg = load_config(path, identity=False)
    names = security.key_names(cfg)
    assert set(names) == {"engine", "writer", "operator", "gateway-spot_a", "gateway-spot_b"}
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    before = {}
    for n in names:
        pub, sec = security.key_files(cfg, n)
        assert stat.S_IMODE(sec.stat().st_mode) == 0o600, n
        before[n] = sec.read_bytes()
        assert pub.read_text().count("secret-key") == 0
        assert before[n].decode() not in r.stdout + r.stderr  # paths printed, never keys
    again = _oms("keys", "--config", str(path))
    assert again.returncode == 1 and "--force" in again.stderr, again
    assert all(security.key_files(cfg, n)[1].read_bytes() == before[n] for n in names)
    forced = _oms("keys", "--config", str(path), "--force")
    assert forced.returncode == 0, forced.stderr
    assert all(security.key_files(cfg, n)[1].read_bytes() != before[n] for n in names)


def test_security_is_on_for_tcp_and_off_refuses_reachable_endpoints(tmp_path: Path) -> None:
    cfg = load_config(_desk(tmp_path), identity=False)
    assert security.security_on(cfg)  # auto: its links are tcp
    off = _desk(tmp_path).read_text().replace('mode = "auto"', 'mode = "off"')
    (tmp_path / "off.toml").write_text(off)
    cfg = load_config(tmp_path / "off.toml", identity=False)
    assert not security.security_on(cfg)
    assert security.check_insecure(cfg, False) == []  # loopback only: allowed
    (tmp_path / "open.toml").write_text(off.replace("tcp://127.0.0.1:6560", "tcp://*:6560"))
    cfg = load_config(tmp_path / "open.toml", identity=False)
    with pytest.raises(ValueError, match=r"tcp://\*:6560.*--insecure"):
        security.check_insecure(cfg, False)
    assert security.check_insecure(cfg, True) == ["tcp://*:6560"]


def test_users_need_their_clients_or_strategies(tmp_path: Path) -> None:
    from oms_core.config import ConfigError

    with pytest.raises(ConfigError, match="clients"):
        load_config(_desk(tmp_path, '\n[security.users.x]\nrole = "trader"\n'),
                    identity=False)
    with pytest.raises(ConfigError, match="unknown strategy"):
        load_config(_desk(tmp_path, '\n[security.users.x]\nrole = "publisher"\n'
                                    'strategies = ["nope"]\n'), identity=False)


def test_a_user_name_fits_the_audit_trail(tmp_path: Path) -> None:
    from oms_core.config import ConfigError

    long_name = "u" * 33  # AUDIT.sender holds 32 bytes: a longer name would be cut
    with pytest.raises(ConfigError, match="at most 32 characters"):
        load_config(_desk(tmp_path, f'\n[security.users.{long_name}]\nrole = "admin"\n'),
                    identity=False)
    cfg = load_config(_desk(tmp_path, f'\n[security.users.{long_name[:32]}]\nrole = '
                                      '"admin"\n'), identity=False)
    assert long_name[:32] in cfg.security.users


def test_no_secret_key_file_is_tracked() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    assert [f for f in files if f.endswith((".key_secret", ".secret"))] == []
