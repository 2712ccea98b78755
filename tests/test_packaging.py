"""The Debian package: scripts/pkg-deb builds it, and it holds what an operator needs.

The package is built once for the module into a temporary directory (gzip -1: the contents
matter here, not the ratio), then read with dpkg-deb -f/-I/-c/-e/-x. It takes about 40 s, most
of it pip and bytecode. PKG_DEB_TEST_ARGS passes extra arguments to scripts/pkg-deb, e.g.
`--head` to package the last commit, or `--skip-import-check` while the app is mid-change.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

DEBIAN_PYTHON = Path("/usr/bin/python3")
UNITS = [
    "vpp-maglev.service",
    "vpp-maglev-web.service",
    "vpp-maglev-worker.service",
    "vpp-maglev-beat.service",
    "vpp-maglev-grpc.service",
]
PROBE_UNITS = {"vpp-maglev.service", "vpp-maglev-worker.service"}
WRAPPERS = {"maglevd": "maglevd", "maglevc": "maglevc", "maglev-manage": ""}


def _why_not_buildable() -> str | None:
    if not shutil.which("dpkg-deb"):
        return "dpkg-deb is absent (apt-get install dpkg)"
    if not shutil.which("git") or not (REPO / ".git").exists():
        return "scripts/pkg-deb packages a git checkout; git or .git is absent"
    venv_ok = DEBIAN_PYTHON.exists() and (
        subprocess.run(
            [str(DEBIAN_PYTHON), "-c", "import venv, ensurepip"], capture_output=True, check=False
        ).returncode
        == 0
    )
    if not venv_ok:
        return "Debian's python3 with its venv module is absent (apt-get install python3-venv)"
    return None


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(_why_not_buildable() is not None, reason=_why_not_buildable() or ""),
    # The module's first test also pays for the build.
    pytest.mark.timeout(600),
]


def run(*args: str | Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, check=False, **kwargs
    )


@pytest.fixture(scope="module")
def deb(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("deb")
    env = {**os.environ, "DPKG_DEB_COMPRESSOR_TYPE": "gzip", "DPKG_DEB_COMPRESSOR_LEVEL": "1"}
    extra = shlex.split(os.environ.get("PKG_DEB_TEST_ARGS", ""))
    built = run(REPO / "scripts" / "pkg-deb", "--out", out, *extra, env=env, timeout=540)
    assert built.returncode == 0, built.stderr[-4000:]
    path = Path(built.stdout.strip().splitlines()[-1])
    assert path.parent == out
    return path


@pytest.fixture(scope="module")
def root(deb, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("root")
    extracted = run("dpkg-deb", "-x", deb, target)
    assert extracted.returncode == 0, extracted.stderr
    return target


@pytest.fixture(scope="module")
def control_dir(deb, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("control") / "DEBIAN"
    extracted = run("dpkg-deb", "-e", deb, target)
    assert extracted.returncode == 0, extracted.stderr
    return target


@pytest.fixture(scope="module")
def listing(deb) -> dict[str, tuple[str, str]]:
    """`dpkg-deb -c`: path (without ./) → (mode string, owner/group)."""
    listed = run("dpkg-deb", "-c", deb)
    assert listed.returncode == 0, listed.stderr
    entries = {}
    for line in listed.stdout.splitlines():
        mode, owner, _size, _date, _time, path, *_ = line.split()
        entries[path.removeprefix("./").rstrip("/")] = (mode, owner)
    return entries


def unit_settings(path: Path) -> dict[str, list[str]]:
    """A unit file's settings, every value of a repeated key kept in order."""
    settings: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def staged_python(root: Path) -> Path:
    """The extracted venv's python when it runs from here, else the project's interpreter."""
    python = root / "opt/vpp-maglev/venv/bin/python"
    works = run(python, "-c", "import django, yaml") if python.exists() else None
    return python if works is not None and works.returncode == 0 else Path(sys.executable)


def app_env(tmp_path: Path, root: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": str(tmp_path),
        "MAGLEV_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(root / "opt/vpp-maglev/app"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def test_control_names_version_arch_and_dependencies(deb):
    fields = run("dpkg-deb", "-f", deb, "Package", "Version", "Architecture", "Depends")
    values = dict(line.split(": ", 1) for line in fields.stdout.strip().splitlines())
    version = re.search(
        r'^VERSION[^=]*=\s*"([^"]+)"', (REPO / "maglev_site/version.py").read_text(), re.M
    )
    assert values["Package"] == "vpp-maglev"
    assert values["Version"] == os.environ.get("PKG_VERSION", version[1])
    arch = run("dpkg", "--print-architecture").stdout.strip()
    assert values["Architecture"] == arch
    assert deb.name == f"vpp-maglev_{values['Version']}_{arch}.deb"
    depends = values["Depends"]
    for needed in ("python3 (>= 3.11)", "adduser", "init-system-helpers", "libc6 (>= "):
        assert needed in depends
    # The venv's python is a symlink to this exact interpreter, and its wheels are for its ABI.
    assert re.search(r"\bpython3\.\d+\b", depends)
    recommends = run("dpkg-deb", "-f", deb, "Recommends").stdout
    assert "redis-server" in recommends


def test_conffiles_and_maintainer_scripts(control_dir):
    conffiles = (control_dir / "conffiles").read_text().split()
    assert sorted(conffiles) == ["/etc/default/vpp-maglev", "/etc/vpp-maglev/maglev.yaml"]
    for script in ("postinst", "prerm", "postrm"):
        path = control_dir / script
        assert path.stat().st_mode & stat.S_IXUSR, script
        assert run("bash", "-n", path).returncode == 0, script
        assert "set -euo pipefail" in path.read_text()
    postinst = (control_dir / "postinst").read_text()
    assert '--ingroup "$GROUP_NAME"' in postinst
    assert "readonly GROUP_NAME=vpp" in postinst
    assert "migrate" in postinst
    assert "daemon-reload" in postinst
    assert "maglev-manage createsuperuser" in postinst
    # The package sets and shows no password: the operator makes the first login.
    assert not re.search(r"password\s*=|--password|set_password|changepassword", postinst)
    postrm = (control_dir / "postrm").read_text()
    purge = postrm[postrm.index("  purge)") :]
    assert 'rm -rf "$DATA_DIR"' in purge
    assert 'rm -rf "$DATA_DIR"' not in postrm[: postrm.index("  purge)")]
    assert (control_dir / "md5sums").stat().st_size > 0


def test_contents_are_root_owned_and_complete(listing):
    expected = [
        *(f"lib/systemd/system/{unit}" for unit in UNITS),
        "lib/systemd/system/vpp-maglev-split.target",
        "etc/vpp-maglev/maglev.yaml",
        "etc/default/vpp-maglev",
        *(f"usr/bin/{name}" for name in WRAPPERS),
        "opt/vpp-maglev/app/manage.py",
        "opt/vpp-maglev/app/maglev_site/COMMIT",
        "opt/vpp-maglev/app/maglev_site/settings.py",
        "opt/vpp-maglev/venv/pyvenv.cfg",
        "opt/vpp-maglev/venv/bin/python",
        "opt/vpp-maglev/venv/bin/celery",
        "opt/vpp-maglev/venv/bin/daphne",
        "opt/vpp-maglev/libexec/command",
        "opt/vpp-maglev/libexec/manage.py",
        "opt/vpp-maglev/libexec/web",
        "usr/share/doc/vpp-maglev/copyright",
    ]
    missing = [path for path in expected if path not in listing]
    assert not missing
    assert {owner for _mode, owner in listing.values()} == {"root/root"}
    for name in WRAPPERS:
        assert listing[f"usr/bin/{name}"][0] == "-rwxr-xr-x"
    developer_only = {"tests", "bench", ".ci", "debian", "scripts", ".git"}
    app_top = {p.split("/")[3] for p in listing if p.startswith("opt/vpp-maglev/app/")}
    assert not app_top & developer_only
    assert not any(
        re.match(r"opt/vpp-maglev/venv/lib/python3\.\d+/site-packages/pip/", p) for p in listing
    )
    assert any(
        re.match(r"opt/vpp-maglev/venv/lib/python3\.\d+/site-packages/django/", p) for p in listing
    )


def test_wrappers_run_manage_py_commands(root):
    for name, command in WRAPPERS.items():
        text = (root / "usr/bin" / name).read_text()
        assert text.startswith("#!/bin/bash\n")
        assert "set -euo pipefail" in text
        assert re.search(rf"^exec /opt/vpp-maglev/libexec/command {command}\s*\"\$@\"$", text, re.M)
        assert run("bash", "-n", root / "usr/bin" / name).returncode == 0
    helper = (root / "opt/vpp-maglev/libexec/command").read_text()
    assert "readonly PYTHON=/opt/vpp-maglev/venv/bin/python" in helper
    assert 'exec "$PYTHON" -I "$MANAGE" "$@"' in helper
    launcher = (root / "opt/vpp-maglev/libexec/manage.py").read_text()
    assert 'APP = "/opt/vpp-maglev/app"' in launcher
    assert "execute_from_command_line(sys.argv)" in launcher


def test_units_run_as_the_service_user_with_the_env_file(root):
    units = root / "lib/systemd/system"
    for name in UNITS:
        s = unit_settings(units / name)
        assert s["User"] == ["vpp-maglev"], name
        assert s["Group"] == ["vpp"], name
        assert s["EnvironmentFile"] == ["-/etc/default/vpp-maglev"], name
        assert s["Restart"] == ["on-failure"], name
        assert s["ProtectSystem"] == ["strict"], name
        assert s["ReadWritePaths"] == ["/var/lib/vpp-maglev"], name
        assert s["PrivateTmp"] == ["yes"], name
        assert s["NoNewPrivileges"] == ["yes"], name
        if name in PROBE_UNITS:
            assert s["AmbientCapabilities"] == ["CAP_NET_RAW CAP_SYS_ADMIN"], name
            assert s["CapabilityBoundingSet"] == ["CAP_NET_RAW CAP_SYS_ADMIN"], name
        else:
            assert s["CapabilityBoundingSet"] == [""], name
            assert s.get("AmbientCapabilities", [""]) == [""], name
        if name != "vpp-maglev.service":
            assert s["Conflicts"] == ["vpp-maglev.service"], name
    main = unit_settings(units / "vpp-maglev.service")
    assert main["ExecStart"] == [
        "/opt/vpp-maglev/venv/bin/python /opt/vpp-maglev/app/manage.py maglevd"
    ]
    assert main["ExecReload"][-1] == "/bin/kill -HUP $MAINPID"
    assert main["WantedBy"] == ["multi-user.target"]
    assert (
        "celery -A maglev_site worker"
        in unit_settings(units / "vpp-maglev-worker.service")["ExecStart"][0]
    )
    assert (
        "celery -A maglev_site beat"
        in unit_settings(units / "vpp-maglev-beat.service")["ExecStart"][0]
    )
    assert unit_settings(units / "vpp-maglev-grpc.service")["ExecStart"][0].endswith(
        "manage.py grpcserver"
    )


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is absent")
def test_systemd_analyze_verify_accepts_the_units(root, tmp_path):
    # verify insists that every command exists, so point the units at the extracted tree.
    for unit in (root / "lib/systemd/system").iterdir():
        text = unit.read_text().replace("/opt/vpp-maglev", f"{root}/opt/vpp-maglev")
        (tmp_path / unit.name).write_text(text)
    verified = run("systemd-analyze", "verify", "--man=no", *sorted(tmp_path.iterdir()))
    assert verified.returncode == 0, verified.stderr
    # Unknown keys and bad values are only warnings; any is a mistake in a unit.
    assert verified.stdout + verified.stderr == ""


def test_installed_default_config_passes_maglevd_check(root, tmp_path):
    config = root / "etc/vpp-maglev/maglev.yaml"
    checked = run(
        staged_python(root),
        root / "opt/vpp-maglev/app/manage.py",
        "maglevd",
        "--check",
        "--config",
        config,
        cwd=tmp_path,
        env=app_env(tmp_path, root),
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr[-3000:]
    assert "configuration is valid" in checked.stdout


def test_venv_is_relocated_to_its_installed_path(root):
    venv = root / "opt/vpp-maglev/venv"
    cfg = (venv / "pyvenv.cfg").read_text()
    assert re.search(r"^home = /usr/bin$", cfg, re.M)
    assert re.search(r"^command = .* /opt/vpp-maglev/venv$", cfg, re.M)
    assert os.readlink(venv / "bin/python").startswith("python3")
    assert re.fullmatch(
        r"/usr/bin/python3\.\d+", os.readlink(venv / "bin" / os.readlink(venv / "bin/python"))
    )
    for script in ("celery", "daphne"):
        first = (venv / "bin" / script).read_text().splitlines()[0]
        assert first == "#!/opt/vpp-maglev/venv/bin/python", script
    # No file names the staging tree the venv was built in.
    leftovers = run("grep", "-rlF", "/pkg-deb.", venv / "bin", venv / "pyvenv.cfg")
    assert leftovers.stdout == ""


def test_commit_and_version_come_with_the_app(root, tmp_path):
    commit = (root / "opt/vpp-maglev/app/maglev_site/COMMIT").read_text().strip()
    assert re.fullmatch(r"[0-9a-f]{7,40}(\+dirty)?|.*-g[0-9a-f]+(\+dirty)?", commit)
    line = run(
        staged_python(root),
        "-c",
        "from maglev_site.version import version_line; print(version_line('maglevd'))",
        cwd=tmp_path,
        env=app_env(tmp_path, root),
    )
    assert line.stdout.strip().endswith(f"(commit {commit})"), line.stderr


def test_env_file_documents_every_variable(root):
    text = (root / "etc/default/vpp-maglev").read_text()
    documented = set(
        re.findall(r"`(MAGLEV_[A-Z_]+|DATABASE_URL)`", (REPO / "docs/config.md").read_text())
    )
    # Every variable the packaged code reads, but the VPP simulator's (a development tool).
    used = {
        name
        for source in (root / "opt/vpp-maglev/app").rglob("*.py")
        for name in re.findall(r"[\"'](MAGLEV_[A-Z_]+)[\"']", source.read_text())
        if not name.startswith("MAGLEV_VPPSIM_")
    }
    active = dict(re.findall(r"^([A-Z_]+)=(.*)$", text, re.M))
    commented = set(re.findall(r"^#([A-Z_]+)=", text, re.M))
    assert active == {
        "MAGLEV_CONFIG": "/etc/vpp-maglev/maglev.yaml",
        "MAGLEV_DATA_DIR": "/var/lib/vpp-maglev",
        "MAGLEV_CREATE_ADMIN": "false",
    }
    assert not (documented | used) - set(active) - commented


def test_copyright_lists_the_bundled_libraries(root):
    text = (root / "usr/share/doc/vpp-maglev/copyright").read_text()
    assert "License: Apache-2.0" in text
    assert re.search(r"^ Django \d", text, re.M)
    assert re.search(r"^ grpcio \d", text, re.M)
