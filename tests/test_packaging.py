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
REDIS_UNIT = "vpp-maglev-redis.service"
DASHBOARD_UNIT = "vpp-maglev-dashboard.service"  # opt-in, beside either set-up
OPT_IN = ["netns.conf"]
# `systemd-analyze security` exposure (0 best, 10 worst) the units may have at most. Measured
# on systemd 252: 1.1 for each app unit as shipped (was 3.8 for the probe units, 3.2 for the
# others), 0.9 for the Redis unit, 1.7 for a probe unit with netns.conf, 1.8 with both opt-ins.
MAX_EXPOSURE = 1.5
MAX_EXPOSURE_OPTED_IN = 2.0
WRAPPERS = {
    "maglevd": "maglevd",
    "maglevc": "maglevc",
    "maglevt": "maglevt",
    "maglev-manage": "",
}


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
    assert sorted(conffiles) == [
        "/etc/default/vpp-maglev",
        "/etc/vpp-maglev/maglev.yaml",
        "/etc/vpp-maglev/redis.conf",
    ]
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
    assert "readonly OPS_GROUP=vpp-maglev-ops" in postinst
    for secret in ("secret-key", "grpc-token", "redis-url", "redis-users.acl"):
        assert f"$CONF_DIR/{secret}" in postinst, secret
    # The package sets and shows no password: the operator makes the first login.
    assert not re.search(r"password\s*=|--password|set_password|changepassword", postinst)
    postrm = (control_dir / "postrm").read_text()
    purge = postrm[postrm.index("  purge)") :]
    assert 'rm -rf "$DATA_DIR"' in purge
    assert 'rm -rf "$DATA_DIR"' not in postrm[: postrm.index("  purge)")]
    assert 'rm -f "$CONF_DIR/$name"' in purge
    assert (control_dir / "md5sums").stat().st_size > 0


def test_contents_are_root_owned_and_complete(listing):
    expected = [
        *(f"lib/systemd/system/{unit}" for unit in UNITS),
        f"lib/systemd/system/{REDIS_UNIT}",
        f"lib/systemd/system/{DASHBOARD_UNIT}",
        "lib/systemd/system/vpp-maglev-split.target",
        *(f"usr/share/vpp-maglev/systemd/{name}" for name in OPT_IN),
        "etc/vpp-maglev/maglev.yaml",
        "etc/vpp-maglev/redis.conf",
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
    # The opt-in drop-ins are in no .d directory, so they do nothing until linked in; the
    # package ships no secret (postinst generates them).
    assert not [p for p in listing if re.match(r"(lib|etc)/systemd/system/.*\.d/", p)]
    assert not [p for p in listing if re.search(r"secret-key|grpc-token|redis-url|\.acl$", p)]
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
        assert s["EnvironmentFile"] == [
            "-/etc/default/vpp-maglev",
            "-/etc/vpp-maglev/secrets.env",
        ], name
        assert s["Restart"] == ["on-failure"], name
        assert s["ProtectSystem"] == ["strict"], name
        assert s["ReadWritePaths"] == ["/var/lib/vpp-maglev"], name
        assert s["PrivateTmp"] == ["yes"], name
        assert s["NoNewPrivileges"] == ["yes"], name
        # Probe units: CAP_NET_RAW alone (ICMP); the others none. netns.conf adds CAP_SYS_ADMIN.
        caps = ["CAP_NET_RAW"] if name in PROBE_UNITS else [""]
        assert s["CapabilityBoundingSet"] == caps, name
        assert s["AmbientCapabilities"] == caps, name
        assert s["PrivateUsers"] == (["no"] if name in PROBE_UNITS else ["yes"]), name
        assert s["RestrictNamespaces"] == ["yes"], name
        assert s["SystemCallFilter"] == ["@system-service", "~@privileged @resources"], name
        assert s["SystemCallErrorNumber"] == ["EPERM"], name
        assert s["ProtectProc"] == ["invisible"], name
        assert s["RemoveIPC"] == ["yes"], name
        assert s["MemoryMax"], name
        assert s["TasksMax"], name
        assert s["StateDirectoryMode"] == ["0700"], name
        assert s["UMask"] == ["0077"], name
        # Secrets come as credentials; a removed environment file never enables the admin
        # password print-out.
        assert "MAGLEV_CREATE_ADMIN=false" in s["Environment"], name
        creds = dict(c.split(":", 1) for c in s["LoadCredential"])
        assert creds["secret-key"] == "/etc/vpp-maglev/secret-key", name
        serves_grpc = name in ("vpp-maglev.service", "vpp-maglev-grpc.service")
        assert ("grpc-token" in creds) == serves_grpc, name
        assert (creds.get("redis-url") == "/etc/vpp-maglev/redis-url") == (
            name != "vpp-maglev.service"
        )
        if name != "vpp-maglev.service":
            assert s["Conflicts"] == ["vpp-maglev.service"], name
            assert "vpp-maglev-redis.service" in s["Wants"][0], name
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
    redis = unit_settings(units / REDIS_UNIT)
    assert redis["ExecStart"][0].startswith("/usr/bin/redis-server /etc/vpp-maglev/redis.conf")
    assert redis["DynamicUser"] == ["yes"]
    assert redis["LoadCredential"] == ["redis-users.acl:/etc/vpp-maglev/redis-users.acl"]
    conf = (root / "etc/vpp-maglev/redis.conf").read_text()
    assert "aclfile /run/credentials/vpp-maglev-redis.service/redis-users.acl" in conf
    assert re.search(r"^bind 127\.0\.0\.1 -::1$", conf, re.M)


def test_opt_in_drop_ins_add_only_their_capability(root):
    netns = unit_settings(root / "usr/share/vpp-maglev/systemd/netns.conf")
    assert netns["AmbientCapabilities"] == ["CAP_SYS_ADMIN"]
    assert netns["CapabilityBoundingSet"] == ["CAP_SYS_ADMIN"]
    assert netns["RestrictNamespaces"] == ["net"]
    assert netns["PrivateUsers"] == ["no"]
    units = root / "lib/systemd/system"
    for name in PROBE_UNITS:  # ICMP: Debian 12 has no unprivileged ping sockets
        probe = unit_settings(units / name)
        assert probe["AmbientCapabilities"] == ["CAP_NET_RAW"]
        assert probe["CapabilityBoundingSet"] == ["CAP_NET_RAW"]
    for name in set(UNITS) - PROBE_UNITS:
        assert unit_settings(units / name)["CapabilityBoundingSet"] == [""]


def test_the_dashboard_unit_is_sandboxed_and_sees_no_database(root, control_dir):
    units = root / "lib/systemd/system"
    s, web = unit_settings(units / DASHBOARD_UNIT), unit_settings(units / "vpp-maglev-web.service")
    # The web unit's sandbox, key by key (what differs is below).
    for key in (
        "User",
        "Group",
        "EnvironmentFile",
        "Restart",
        "ProtectSystem",
        "PrivateTmp",
        "NoNewPrivileges",
        "CapabilityBoundingSet",
        "AmbientCapabilities",
        "PrivateUsers",
        "RestrictNamespaces",
        "RestrictAddressFamilies",
        "SystemCallFilter",
        "SystemCallErrorNumber",
        "ProtectProc",
        "RemoveIPC",
        "MemoryMax",
        "UMask",
        "MemoryDenyWriteExecute",
    ):
        assert s[key] == web[key], key
    assert s["SyslogIdentifier"] == ["maglev-dashboard"]
    assert s["ProcSubset"] == ["pid"]  # no /metrics here
    # Its data directory is a runtime one (set on the command line, which the environment
    # file cannot override); the daemons' database and VPP's sockets are out of its sight.
    (start,) = s["ExecStart"]
    assert start.startswith("/usr/bin/env MAGLEV_DATA_DIR=/run/vpp-maglev-dashboard ")
    assert start.endswith("/opt/vpp-maglev/app/manage.py dashboard")
    assert s["RuntimeDirectory"] == ["vpp-maglev-dashboard"]
    assert s["InaccessiblePaths"] == ["-/var/lib/vpp-maglev -/run/vpp"]
    assert "ReadWritePaths" not in s
    assert "StateDirectory" not in s
    assert s["LoadCredential"] == ["secret-key:/etc/vpp-maglev/secret-key"]
    assert "Conflicts" not in s  # it may run beside maglevd or the split units
    # Shipped, never enabled by the package; stopped and forgotten with it.
    postinst = (control_dir / "postinst").read_text()
    split = re.search(r'^readonly SPLIT_UNITS="([^"]*)"', postinst, re.M)
    assert split, "postinst names its unenabled units"
    assert DASHBOARD_UNIT in split[1].split()
    for script in ("prerm", "postrm"):
        text = (control_dir / script).read_text()
        found = re.search(r'^readonly UNITS="([^"]*)"', text, re.M)
        assert found, script
        assert DASHBOARD_UNIT in found[1].split(), script


def exposure(*args: str | Path) -> float:
    analyzed = run("systemd-analyze", "security", "--offline=yes", "--no-pager", *args)
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d)", analyzed.stdout)
    assert found, analyzed.stdout + analyzed.stderr
    return float(found[1])


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is absent")
def test_systemd_analyze_security_scores(root, tmp_path):
    units = root / "lib/systemd/system"
    scores = {name: exposure(units / name) for name in [*UNITS, REDIS_UNIT, DASHBOARD_UNIT]}
    assert all(score <= MAX_EXPOSURE for score in scores.values()), scores
    # With the opt-in capabilities, as an operator would link them in (--root: drop-ins are
    # read from the tree, as systemd reads /etc/systemd/system/UNIT.d/ on a host).
    for name in PROBE_UNITS:
        tree = tmp_path / name
        system = tree / "etc/systemd/system"
        (system / f"{name}.d").mkdir(parents=True)
        shutil.copy(units / name, system / name)
        for conf in OPT_IN:
            shutil.copy(root / "usr/share/vpp-maglev/systemd" / conf, system / f"{name}.d" / conf)
        opted_in = exposure(f"--root={tree}", name)
        assert scores[name] < opted_in <= MAX_EXPOSURE_OPTED_IN, (name, opted_in)


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
    # Every variable the packaged code reads, but the VPP simulator's and the real-packet
    # lab's (development tools, not settings of the service).
    used = {
        name
        for source in (root / "opt/vpp-maglev/app").rglob("*.py")
        for name in re.findall(r"[\"'](MAGLEV_[A-Z_]+)[\"']", source.read_text())
        if not name.startswith(("MAGLEV_VPPSIM_", "MAGLEV_LAB_"))
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


# ---- A real install, upgrade and purge, on a throwaway copy of this machine.
#
# dpkg -i of the built package, with its real maintainer scripts, adduser, deb-systemd-helper
# and migrate, but not on the host: inside a private mount and network namespace, the root is
# an overlay whose lower layer is this machine's / (read-only to it) and whose upper layer is a
# tmpfs, and the script chroots into it. Users, groups, /etc, /opt and dpkg's database change
# only in the tmpfs, which goes with the namespace; tests running beside this one never see a
# /etc/vpp-maglev/grpc-token or a vpp-maglev user appear. A PID namespace too, so that nothing
# started inside (Redis) outlives the test. Needs root, unshare and overlayfs.
INSTALL_SCRIPT = r"""
set -euo pipefail
deb=$1 work=$2
mount -t tmpfs -o mode=0755 tmpfs "$work"
mkdir "$work/upper" "$work/work" "$work/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$work/upper,workdir=$work/work" "$work/root"
r=$work/root
mount -t proc proc "$r/proc"
mount --rbind /dev "$r/dev"
mount -t tmpfs tmpfs "$r/run"
mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
ip link set lo up
cp "$deb" "$r/tmp/pkg.deb"
exec chroot "$r" /bin/bash -s <<'INSIDE'
set -euo pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
fact() { echo "FACT ${PHASE:+$PHASE:}$1=$2"; }
modes() { for f in "$@"; do fact "$f" "$(stat -c '%a %U:%G' "$f" 2>/dev/null || echo absent)"; done; }
SECRETS="/etc/vpp-maglev/secret-key /etc/vpp-maglev/grpc-token /etc/vpp-maglev/redis-url /etc/vpp-maglev/redis-users.acl"
# The machine's own redis, if any, must not matter: the package uses its own on port 6380.
dpkg -i /tmp/pkg.deb >/tmp/install.log 2>&1 || { cat /tmp/install.log; exit 1; }
echo "--- install"
modes $SECRETS /etc/default/vpp-maglev /var/lib/vpp-maglev /var/lib/vpp-maglev/maglev.sqlite3
fact statoverride "$(dpkg-statoverride --list /etc/default/vpp-maglev || echo none)"
fact ops-group "$(getent group vpp-maglev-ops >/dev/null && echo yes || echo no)"
fact db-files "$(cd /var/lib/vpp-maglev && stat -c '%a:%n' maglev.sqlite3* | tr '\n' ' ')"
sums() { sha256sum $SECRETS | cut -c1-16 | tr '\n' ' '; }
before=$(sums)
# Who may read the gRPC token: a member of vpp-maglev-ops, not another user.
ops=$(getent group vpp-maglev-ops | cut -d: -f3)
fact ops-reads-token "$(setpriv --reuid=65534 --regid=65534 --groups="$ops" cat /etc/vpp-maglev/grpc-token >/dev/null 2>&1 && echo yes || echo no)"
fact other-reads-token "$(setpriv --reuid=65534 --regid=65534 --clear-groups cat /etc/vpp-maglev/grpc-token >/dev/null 2>&1 && echo yes || echo no)"
fact service-reads-key "$(setpriv --reuid=vpp-maglev --regid=vpp --init-groups cat /etc/vpp-maglev/secret-key >/dev/null 2>&1 && echo yes || echo no)"
# Root's commands run as vpp-maglev with the units' secrets; others get a throwaway key.
probe='from django.conf import settings; import hashlib; print(hashlib.sha256(settings.SECRET_KEY.encode()).hexdigest()[:16])'
fact root-key "$(maglev-manage shell -c "$probe" | tail -1)"
fact file-key "$(tr -d '\n' </etc/vpp-maglev/secret-key | sha256sum | cut -c1-16)"
fact other-key "$(cd /tmp && setpriv --reuid=65534 --regid=65534 --clear-groups maglev-manage shell -c "$probe" 2>&1 | tail -1)"
fact root-whoami "$(maglev-manage shell -c 'import os, pwd; print(pwd.getpwuid(os.geteuid()).pw_name)' | tail -1)"
# The generated Redis password is the same in the server's ACL file and the app's URL: start
# the package's Redis with its config (the ACL file from /etc instead of a credential) in this
# private network namespace and connect with the URL as the app would.
if [ -x /usr/bin/redis-server ]; then
  redis-server /etc/vpp-maglev/redis.conf --aclfile /etc/vpp-maglev/redis-users.acl \
    --daemonize yes --pidfile /tmp/redis.pid --logfile /tmp/redis.log
  for _ in $(seq 50); do redis-cli -p 6380 ping 2>/dev/null | grep -q NOAUTH && break; sleep 0.1; done
  fact redis-anonymous "$(redis-cli -p 6380 set x 1 2>&1 | head -c 6)"
  fact redis-app "$(/opt/vpp-maglev/venv/bin/python -c 'import redis; print(redis.Redis.from_url(open("/etc/vpp-maglev/redis-url").read().strip()).ping())')"
  # SHUTDOWN is @admin, which the app's user may not run: stop it by its pid.
  kill "$(cat /tmp/redis.pid)"
fi
# An upgrade from a version that kept the environment file 0640 root:vpp (statoverride).
dpkg-statoverride --update --add root vpp 0640 /etc/default/vpp-maglev
chmod 0644 /var/lib/vpp-maglev/maglev.sqlite3
dpkg -i /tmp/pkg.deb >/tmp/upgrade.log 2>&1 || { cat /tmp/upgrade.log; exit 1; }
echo "--- upgrade"
PHASE=upgrade
modes /etc/default/vpp-maglev /var/lib/vpp-maglev/maglev.sqlite3
fact statoverride-after "$(dpkg-statoverride --list /etc/default/vpp-maglev || echo none)"
fact secrets-kept "$([ "$(sums)" = "$before" ] && echo yes || echo no)"
dpkg --purge vpp-maglev >/tmp/purge.log 2>&1 || { cat /tmp/purge.log; exit 1; }
echo "--- purge"
for f in $SECRETS /var/lib/vpp-maglev; do fact "purged:$f" "$([ -e "$f" ] && echo left || echo gone)"; done
INSIDE
"""


def _why_no_install_test() -> str | None:
    if os.geteuid() != 0:
        return "installing into an overlay of / needs root"
    for tool in ("unshare", "chroot", "setpriv", "ip"):
        if not shutil.which(tool):
            return f"{tool} is absent"
    if "overlay" not in Path("/proc/filesystems").read_text():
        return "overlayfs is absent"
    return None


@pytest.mark.skipif(_why_no_install_test() is not None, reason=_why_no_install_test() or "")
def test_install_upgrade_and_purge_set_up_private_files(deb, tmp_path):
    work = tmp_path / "overlay"
    work.mkdir()
    done = run(
        "unshare",
        "--mount",
        "--net",
        "--pid",
        "--fork",
        "--propagation",
        "private",
        "bash",
        "-c",
        INSTALL_SCRIPT,
        "install-test",
        deb,
        work,
        timeout=420,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    facts = dict(
        line[5:].split("=", 1) for line in done.stdout.splitlines() if line.startswith("FACT ")
    )
    # Secrets: Django's key and Redis's root-only, the token for root and the operators.
    assert facts["/etc/vpp-maglev/secret-key"] == "600 root:root"
    assert facts["/etc/vpp-maglev/grpc-token"] == "640 root:vpp-maglev-ops"
    assert facts["/etc/vpp-maglev/redis-url"] == "600 root:root"
    assert facts["/etc/vpp-maglev/redis-users.acl"] == "600 root:root"
    assert facts["ops-group"] == "yes"
    assert facts["ops-reads-token"] == "yes"
    assert facts["other-reads-token"] == "no"
    assert facts["service-reads-key"] == "no"  # it gets it as a credential
    # The environment file holds no secrets, so everyone may read it.
    assert facts["/etc/default/vpp-maglev"] == "644 root:root"
    assert facts["statoverride"] == "none"
    # The data directory and the database are the service's only.
    assert facts["/var/lib/vpp-maglev"] == "700 vpp-maglev:vpp"
    assert facts["/var/lib/vpp-maglev/maglev.sqlite3"] == "600 vpp-maglev:vpp"
    assert all(entry.startswith("600:") for entry in facts["db-files"].split()), facts["db-files"]
    # Root's commands run as the service user with the units' key; others get a throwaway one.
    assert facts["root-whoami"] == "vpp-maglev"
    assert facts["root-key"] == facts["file-key"]
    assert re.fullmatch(r"[0-9a-f]{16}", facts["other-key"]), facts["other-key"]
    assert facts["other-key"] != facts["file-key"]
    if "redis-app" in facts:
        assert facts["redis-anonymous"] == "NOAUTH"
        assert facts["redis-app"] == "True"
    # Upgrade: the old statoverride goes, a loosened database is private again, the secrets stay.
    assert facts["upgrade:statoverride-after"] == "none"
    assert facts["upgrade:/etc/default/vpp-maglev"] == "644 root:root"
    assert facts["upgrade:/var/lib/vpp-maglev/maglev.sqlite3"] == "600 vpp-maglev:vpp"
    assert facts["upgrade:secrets-kept"] == "yes"
    gone = {k: v for k, v in facts.items() if k.startswith("upgrade:purged:")}
    assert gone
    assert set(gone.values()) == {"gone"}, gone
