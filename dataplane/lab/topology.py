"""The lab's network: a VPP of its own, a client namespace, a probe namespace and N backend
namespaces, each linked to VPP by a veth pair whose root-namespace end VPP takes with
`create host-interface` (af_packet).

Addresses (lab index i, 0-255; 100.64.0.0/10 is the shared address space of RFC 6598, which
nothing else of this project uses: tests/netns.py has 198.18.0.0/15):

    100.64.i.0/24   the links, one /28 each: VPP .1 of it, the namespace .2
                    client .0/28, probe .16/28, backend k (1-12) .(16k+16)/28
    100.64.i.254    the GRE outer source address (lb conf ip4-src-address)
    100.65.i.0/24   the VIPs: frontend `www` .10 (flush-on-down true),
                    `www-keep` .11 (flush-on-down false), both tcp/80

Every address lives only inside the lab's namespaces and its VPP: the root namespace's ends of
the veths have none, so the host's routing table is untouched. Names: namespaces
`mlab<i>-client`, `mlab<i>-probe`, `mlab<i>-<backend>`; root-namespace veth ends `mlab<i>c`,
`mlab<i>p`, `mlab<i>b<k>` (`host-mlab<i>c` ... in VPP); the namespace ends are `eth0`.

Packets: the client's SYN to a VIP goes to VPP (default route), VPP's lb picks a backend by its
Maglev table and sends the packet there in GRE; the backend's gre_decap puts the inner packet on
a TUN device, the kernel delivers it to the VIP on `lo`, and the reply goes straight back to the
client through VPP (direct server return). maglevd probes each backend's own address from the
probe namespace (`healthchecker.netns`), through VPP as well.

Each lab keeps a record, /run/vpp-maglev-lab/lab<i>.json, written before anything is made and
naming everything it made (processes by pid and start time): `down` removes exactly that, and a
lab whose owner process died (a test run that was killed) is removed by the next lab made.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataplane.lab.netns import NetnsWorker, Proc, tx_checksum_off, wait_until, write_sysctl

LAB_DIR = Path("/run/vpp-maglev-lab")
LOCK_FILE = LAB_DIR / "lock"
PREFIX = "mlab"
LINKS = ipaddress.ip_network("100.64.0.0/16")  # lab i: 100.64.i.0/24
VIPS = ipaddress.ip_network("100.65.0.0/16")  # lab i: 100.65.i.0/24
MAX_INDEX = 255
MAX_BACKENDS = 12
DEFAULT_WEIGHTS = (100, 60, 30)
CLIENT_MTU = 1400  # the client's packets plus 24 bytes of GRE fit the backends' 1500
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SHARED_RUNTIME = REPO.parent / "shared" / "vpp-runtime"
TUN = "decap0"
# The names a lab gives its namespaces (mlab<i>-<host>) and veth ends (mlab<i>c, p, b<k>): the
# only ones cleanup_stale ever deletes.
OWN_NAME = re.compile(rf"{PREFIX}(\d+)(?:-(?:client|probe|web\d+)|[cp]|b\d+)")
STICKY_BUCKETS = 65536  # lb conf buckets (per worker); VPP's default is 1024
FLOW_TIMEOUT = 40  # lb conf timeout, seconds (VPP's default)


class LabError(RuntimeError):
    """Something the lab needs is missing or did not work; the text says what."""


# -- the plan: names and addresses, computed purely ---------------------------------------------


@dataclass(frozen=True)
class Host:
    """One namespace and its link to VPP."""

    name: str  # client, probe, web1, ...
    netns: str
    host_if: str  # the root-namespace end, which VPP takes
    vpp_address: ipaddress.IPv4Address
    address: ipaddress.IPv4Address
    prefixlen: int = 28
    mtu: int = 1500

    @property
    def vpp_if(self) -> str:
        return f"host-{self.host_if}"


@dataclass(frozen=True)
class Frontend:
    name: str
    vip: ipaddress.IPv4Address
    port: int
    flush_on_down: bool

    @property
    def target(self) -> str:
        return f"{self.name}={self.vip}:{self.port}"


@dataclass(frozen=True)
class Plan:
    index: int = 0
    backends: int = 3
    weights: tuple[int, ...] = ()  # per backend; default 100, 60, 30, 100, ...

    def __post_init__(self) -> None:
        if not 0 <= self.index <= MAX_INDEX:
            raise LabError(f"lab index {self.index} is not in 0-{MAX_INDEX}")
        if not 1 <= self.backends <= MAX_BACKENDS:
            raise LabError(f"{self.backends} backends: the lab has room for 1-{MAX_BACKENDS}")
        if self.weights and len(self.weights) != self.backends:
            raise LabError(f"{len(self.weights)} weights for {self.backends} backends")
        if any(not 0 <= w <= 100 for w in self.weights):
            raise LabError("weights are 0-100")

    def _link(self, slot: int) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]:
        base = LINKS.network_address + self.index * 256 + slot * 16
        return base + 1, base + 2

    def _host(self, name: str, suffix: str, slot: int, mtu: int = 1500) -> Host:
        vpp, mine = self._link(slot)
        return Host(name, f"{PREFIX}{self.index}-{name}", f"{PREFIX}{self.index}{suffix}",
                    vpp, mine, mtu=mtu)  # fmt: skip

    @property
    def client(self) -> Host:
        return self._host("client", "c", 0, CLIENT_MTU)

    @property
    def probe(self) -> Host:
        return self._host("probe", "p", 1)

    @property
    def backend_hosts(self) -> list[Host]:
        return [self._host(f"web{k}", f"b{k}", k + 1) for k in range(1, self.backends + 1)]

    @property
    def hosts(self) -> list[Host]:
        return [self.client, self.probe, *self.backend_hosts]

    def backend(self, name: str) -> Host:
        for host in self.backend_hosts:
            if host.name == name:
                return host
        raise LabError(f"no backend {name!r} (the lab has {self.backend_names})")

    @property
    def backend_names(self) -> list[str]:
        return [h.name for h in self.backend_hosts]

    @property
    def backend_weights(self) -> dict[str, int]:
        weights = self.weights or tuple(
            DEFAULT_WEIGHTS[k % len(DEFAULT_WEIGHTS)] for k in range(self.backends)
        )
        return dict(zip(self.backend_names, weights, strict=True))

    @property
    def gre_source(self) -> ipaddress.IPv4Address:
        return LINKS.network_address + self.index * 256 + 254

    @property
    def frontends(self) -> list[Frontend]:
        base = VIPS.network_address + self.index * 256
        return [Frontend("www", base + 10, 80, True), Frontend("www-keep", base + 11, 80, False)]

    def frontend(self, name: str) -> Frontend:
        for frontend in self.frontends:
            if frontend.name == name:
                return frontend
        raise LabError(f"no frontend {name!r}")

    @property
    def link_names(self) -> list[str]:
        return [h.host_if for h in self.hosts]

    @property
    def netns_names(self) -> list[str]:
        return [h.netns for h in self.hosts]


# -- the VPP binary ------------------------------------------------------------------------------


@dataclass(frozen=True)
class VppInstall:
    """A VPP to run: the binaries, the directory of its shared libraries (LD_LIBRARY_PATH, for an
    unpacked build) and of its plugins (None: VPP's built-in default)."""

    vpp: Path
    vppctl: Path
    lib: Path | None = None
    plugins: Path | None = None

    @classmethod
    def find(
        cls,
        vpp_bin: str | None = None,
        vppctl: str | None = None,
        vpp_dir: str | None = None,
    ) -> VppInstall:
        """From --vpp-bin/--vppctl, else from an install dir (bin/, lib/), else the
        MAGLEV_LAB_VPP_DIR variable, else ../shared/vpp-runtime, else `vpp` on PATH."""
        if vpp_bin:
            binary = Path(vpp_bin).resolve()
            ctl = Path(vppctl).resolve() if vppctl else binary.parent / "vppctl"
            return cls._checked(binary, ctl, binary.parent.parent)
        candidates = [vpp_dir, os.environ.get("MAGLEV_LAB_VPP_DIR")]
        for base in filter(None, candidates):
            root = Path(base).resolve()
            return cls._checked(root / "bin" / "vpp", Path(vppctl or root / "bin" / "vppctl"), root)
        if (SHARED_RUNTIME / "bin" / "vpp").exists():
            root = SHARED_RUNTIME
            return cls._checked(root / "bin" / "vpp", Path(vppctl or root / "bin" / "vppctl"), root)
        found = shutil.which("vpp")
        if found:
            binary = Path(found).resolve()
            ctl = Path(vppctl or shutil.which("vppctl") or binary.parent / "vppctl")
            return cls._checked(binary, ctl, binary.parent.parent)
        raise LabError(
            "no VPP found: give --vpp-bin (and --vppctl) or --vpp-dir, set MAGLEV_LAB_VPP_DIR, "
            "or install VPP (fd.io packages: vpp, vpp-plugin-core)"
        )

    @classmethod
    def _checked(cls, binary: Path, ctl: Path, root: Path) -> VppInstall:
        for path in (binary, ctl):
            if not os.access(path, os.X_OK):
                raise LabError(f"{path} is not an executable")
        lib = root / "lib" if any((root / "lib").glob("libvppinfra.so*")) else None
        plugins = None
        for pattern in ("lib/vpp_plugins", "lib/*/vpp_plugins", "lib64/vpp_plugins"):
            for directory in sorted(root.glob(pattern)):
                if (directory / "lb_plugin.so").exists():
                    plugins = directory
                    break
            if plugins:
                break
        return cls(binary, ctl, lib, plugins)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.lib is not None:
            env["LD_LIBRARY_PATH"] = str(self.lib)
        return env

    def startup_conf(self, directory: Path, prefix: str) -> str:
        """VPP with the lb, af_packet and ping plugins only: no DPDK, no hugepages."""
        path = f"path {self.plugins} " if self.plugins else ""
        return (
            f"unix {{ nodaemon cli-listen {directory}/cli.sock log {directory}/vpp.log "
            f"runtime-dir {directory} poll-sleep-usec 100 }}\n"
            f"api-segment {{ prefix {prefix} }}\n"
            f"socksvr {{ socket-name {directory}/api.sock }}\n"
            f"statseg {{ socket-name {directory}/stats.sock size 32M }}\n"
            "memory { main-heap-size 256M main-heap-page-size 4k }\n"
            "buffers { buffers-per-numa 16384 page-size 4k }\n"
            f"plugins {{ {path}plugin default {{ disable }} plugin lb_plugin.so {{ enable }} "
            "plugin af_packet_plugin.so { enable } plugin ping_plugin.so { enable } }\n"
        )

    def to_json(self) -> dict[str, str | None]:
        return {k: str(v) if v else None for k, v in self.__dict__.items()}

    @classmethod
    def from_json(cls, value: dict[str, str | None]) -> VppInstall:
        return cls(**{k: Path(v) if v else None for k, v in value.items()})  # type: ignore[arg-type]


# -- small system helpers ------------------------------------------------------------------------


def sh(*args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise LabError(f"`{' '.join(args)}` failed: {done.stderr.strip() or done.stdout.strip()}")
    return done


def existing_netns() -> set[str]:
    return {line.split()[0] for line in sh("ip", "netns", "list").stdout.splitlines() if line}


def existing_links() -> set[str]:
    out = sh("ip", "-o", "link", "show").stdout
    return {m[1] for m in re.finditer(r"^\d+: ([^:@\s]+)", out, re.M)}


def check_host() -> str | None:
    """Why the lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces, veths, VPP)"
    if shutil.which("ip") is None:
        return "`ip` (iproute2) is missing"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun is missing (the backends' GRE decapsulators need TUN)"
    return None


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    LAB_DIR.mkdir(parents=True, exist_ok=True)
    with open(LOCK_FILE, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def record_path(index: int) -> Path:
    return LAB_DIR / f"lab{index}.json"


# -- the lab -------------------------------------------------------------------------------------


@dataclass
class Record:
    """What a lab made; saved as JSON before and after each step."""

    index: int
    backends: int
    weights: list[int]
    owner: list[int] | None  # [pid, start] of the process whose lab this is; None: kept (CLI)
    workdir: str
    vpp_install: dict[str, str | None]
    vpp: list[int] | None = None
    maglevd: list[int] | None = None
    servers: dict[str, list[int]] = field(default_factory=dict)  # http-web1, decap-web1, ...
    ports: dict[str, int] = field(default_factory=dict)  # grpc, web
    created: float = field(default_factory=time.time)

    def save(self) -> None:
        path = record_path(self.index)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.__dict__, indent=1))
        tmp.replace(path)

    @classmethod
    def load(cls, index: int) -> Record | None:
        try:
            return cls(**json.loads(record_path(index).read_text()))
        except (OSError, ValueError, TypeError):
            return None

    @property
    def plan(self) -> Plan:
        return Plan(self.index, self.backends, tuple(self.weights))

    def owner_alive(self) -> bool:
        owner = Proc.from_json(self.owner)
        return owner is None or owner.alive()


def lab_indexes() -> list[int]:
    return sorted(
        int(m[1])
        for p in LAB_DIR.glob("lab*.json")
        if (m := re.fullmatch(r"lab(\d+)\.json", p.name))
    )


def cleanup_stale() -> list[str]:
    """Remove labs whose owner died, and namespaces and veths named like a lab's that no lab
    record names (a run killed between making them and writing its record cannot happen: the
    record comes first). Kept labs (made by `scripts/lab up`) are left alone. What was removed."""
    removed = []
    with _locked():
        for index in lab_indexes():
            record = Record.load(index)
            if record is None:
                record_path(index).unlink(missing_ok=True)
                continue
            if not record.owner_alive():
                _teardown(record)
                removed.append(f"lab {index} (owner pid {record.owner[0]} is gone)")
        known = set(lab_indexes())
        for ns in existing_netns():
            if (m := OWN_NAME.fullmatch(ns)) and int(m[1]) not in known:
                sh("ip", "netns", "del", ns, check=False)
                removed.append(f"namespace {ns}")
        for link in existing_links():
            if (m := OWN_NAME.fullmatch(link)) and int(m[1]) not in known:
                sh("ip", "link", "del", link, check=False)
                removed.append(f"link {link}")
    return removed


def _teardown(record: Record) -> None:
    """Remove everything `record` names; safe to repeat, and on a half-made lab."""
    maglevd = Proc.from_json(record.maglevd)
    if maglevd is not None:
        maglevd.stop(15)
    for value in record.servers.values():
        proc = Proc.from_json(value)
        if proc is not None:
            proc.stop(5)
    vpp = Proc.from_json(record.vpp)
    if vpp is not None:
        vpp.stop(10)
    plan = record.plan
    namespaces = existing_netns()
    for ns in plan.netns_names:  # anything else still running in the lab's namespaces
        if ns in namespaces:
            _kill_inside(ns)
    links = existing_links()
    for link in plan.link_names:
        if link in links:
            sh("ip", "link", "del", link, check=False)
    for ns in plan.netns_names:
        if ns in namespaces:
            sh("ip", "netns", "del", ns, check=False)
    workdir = Path(record.workdir)
    if workdir.parent == LAB_DIR and workdir.name == f"lab{record.index}":
        shutil.rmtree(workdir, ignore_errors=True)
    record_path(record.index).unlink(missing_ok=True)


def _kill_inside(ns: str) -> None:
    """SIGKILL every process in namespace `ns` (`ip netns pids`): a lab's namespace holds only
    what the lab or its user started there, such as a traffic client left behind."""
    pids = [int(p) for p in sh("ip", "netns", "pids", ns, check=False).stdout.split()]
    procs = []
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            procs.append(Proc.of(pid))
    for proc in procs:
        proc.send(signal.SIGKILL)
    for proc in procs:
        wait_until(lambda p=proc: not p.alive(), 5)


def allocate(plan_index: int | None, owner: Proc | None, record_fn: Any) -> Record:
    """Claim a free lab index (the lowest, or `plan_index`) and write its record, under the lock.
    A used index: a record, or a namespace or veth named like the lab's."""
    with _locked():
        names = existing_netns() | existing_links()
        used = set(lab_indexes()) | {int(m[1]) for n in names if (m := OWN_NAME.fullmatch(n))}
        if plan_index is not None:
            if plan_index in used:
                raise LabError(f"lab {plan_index} exists already (`scripts/lab down` removes it)")
            index = plan_index
        else:
            free = [i for i in range(MAX_INDEX + 1) if i not in used]
            if not free:
                raise LabError("every lab index is in use")
            index = free[0]
        record: Record = record_fn(index, owner)
        record.save()
        return record


class Lab:
    """One lab. `Lab.create(...)` claims an index and records it; `up()` builds the rest;
    `down()` removes everything. `Lab.attach(index)` takes a lab another process made."""

    def __init__(self, record: Record) -> None:
        self.record = record
        self.plan = record.plan
        self.vpp_install = VppInstall.from_json(record.vpp_install)
        self.workdir = Path(record.workdir)
        self._vpp_conn: Any = None
        self.maglevd: Any = None  # dataplane.lab.maglevd.Maglevd, made in up()/attach()

    # -- making and finding ---------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        vpp: VppInstall,
        *,
        index: int | None = None,
        backends: int = 3,
        weights: tuple[int, ...] = (),
        keep: bool = False,
    ) -> Lab:
        """Claim an index and write the record; nothing else is made yet. `keep`: the lab
        outlives this process (the CLI); otherwise it belongs to it and is removed as stale
        once it has died."""
        why = check_host()
        if why:
            raise LabError(why)
        Plan(0, backends, weights)  # validate before claiming anything
        owner = None if keep else Proc.of(os.getpid())

        def make(i: int, own: Proc | None) -> Record:
            return Record(
                index=i, backends=backends, weights=list(weights),
                owner=own.to_json() if own else None, workdir=str(LAB_DIR / f"lab{i}"),
                vpp_install=vpp.to_json(),
            )  # fmt: skip

        return cls(allocate(index, owner, make))

    @classmethod
    def attach(cls, index: int) -> Lab:
        record = Record.load(index)
        if record is None:
            raise LabError(f"no lab {index} (no {record_path(index)})")
        lab = cls(record)
        from dataplane.lab.maglevd import Maglevd

        lab.maglevd = Maglevd.for_lab(lab)
        return lab

    def save(self) -> None:
        self.record.save()

    # -- building -------------------------------------------------------------------------------

    def up(self, *, maglevd: bool = True, wait: float = 60.0) -> None:
        """Build VPP, the namespaces, the backends and maglevd; returns once every backend is up
        with its weight in VPP. On failure everything made so far stays recorded: call down()."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.start_vpp()
        for host in self.plan.hosts:
            self._make_host(host)
        self._wire_vpp()
        for host in self.plan.backend_hosts:
            self.start_decap(host.name)
            self.start_backend(host.name)
        if maglevd:
            from dataplane.lab.maglevd import Maglevd

            self.maglevd = Maglevd.for_lab(self)
            self.maglevd.write_config()
            self.maglevd.start()
            self.wait_all_up(wait)

    def start_vpp(self) -> None:
        directory = self.workdir / "vpp"
        directory.mkdir(parents=True, exist_ok=True)
        for name in ("api.sock", "stats.sock", "cli.sock"):
            (directory / name).unlink(missing_ok=True)
        conf = directory / "startup.conf"
        conf.write_text(self.vpp_install.startup_conf(directory, f"{PREFIX}{self.plan.index}"))
        with open(directory / "stdout.log", "w") as out:
            proc = subprocess.Popen(
                [str(self.vpp_install.vpp), "-c", str(conf)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=self.vpp_install.env(), start_new_session=True,
            )  # fmt: skip
        self.record.vpp = Proc.of(proc.pid).to_json()
        self.save()

        def answers() -> bool:
            if proc.poll() is not None:
                log = (directory / "stdout.log").read_text(errors="replace")[-1500:]
                raise LabError(f"VPP exited at start ({proc.returncode}):\n{log}")
            if not (directory / "cli.sock").exists() or not (directory / "api.sock").exists():
                return False
            return "vpp v" in self.vppctl("show version", check=False)

        if not wait_until(answers, 30, every=0.05):
            raise LabError(f"VPP did not answer within 30 s; see {directory}/stdout.log")

    @property
    def api_socket(self) -> str:
        return str(self.workdir / "vpp" / "api.sock")

    @property
    def stats_socket(self) -> str:
        return str(self.workdir / "vpp" / "stats.sock")

    @property
    def cli_socket(self) -> str:
        return str(self.workdir / "vpp" / "cli.sock")

    def vppctl(self, command: str, check: bool = True) -> str:
        done = subprocess.run(
            [str(self.vpp_install.vppctl), "-s", self.cli_socket, command],
            capture_output=True, text=True, timeout=15, env=self.vpp_install.env(),
        )  # fmt: skip
        out = done.stdout + done.stderr
        if check and (done.returncode != 0 or re.search(r"unknown input|failed|error", out, re.I)):
            raise LabError(f"vppctl {command!r}: {out.strip() or done.returncode}")
        return out

    def _make_host(self, host: Host) -> None:
        ns = host.netns
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", host.host_if, "mtu", str(host.mtu), "type", "veth",
           "peer", "name", "eth0", "mtu", str(host.mtu), "netns", ns)  # fmt: skip
        sh("ip", "link", "set", host.host_if, "up")
        n = ("ip", "-n", ns)
        sh(*n, "link", "set", "lo", "up")
        sh(*n, "addr", "add", f"{host.address}/{host.prefixlen}", "dev", "eth0")
        sh(*n, "link", "set", "eth0", "up")
        sh(*n, "route", "add", "default", "via", str(host.vpp_address), "dev", "eth0")
        is_backend = host.name not in ("client", "probe")
        if is_backend:
            for frontend in self.plan.frontends:
                sh(*n, "addr", "add", f"{frontend.vip}/32", "dev", "lo")

        def inside() -> None:
            # The kernel must fill in TCP checksums itself: VPP's af_packet on the peer does not
            # complete an offloaded checksum, and the receiver would drop the segment.
            tx_checksum_off("eth0")
            for key in ("all", "default", "eth0"):
                write_sysctl(f"net.ipv4.conf.{key}.rp_filter", "0")
            write_sysctl("net.ipv6.conf.all.disable_ipv6", "1")
            if host.name == "client":
                # Many short connections: the whole port range, so that no 5-tuple comes back
                # while VPP's flow table may still hold it (flow timeout 40 s).
                write_sysctl("net.ipv4.ip_local_port_range", "1024 65535")

        with NetnsWorker(ns) as worker:
            worker.call(inside)

    def _wire_vpp(self) -> None:
        for host in self.plan.hosts:
            self.vppctl(f"create host-interface name {host.host_if}")
            self.vppctl(f"set interface state {host.vpp_if} up")
            self.vppctl(
                f"set interface ip address {host.vpp_if} {host.vpp_address}/{host.prefixlen}"
            )
        # The flow table (per worker: buckets of 4 flows, each kept 40 s after its last packet):
        # VPP's default of 1024 buckets fills at a few hundred new connections a second, and a
        # flow that finds its bucket full goes untracked, so that a weight change can move it
        # mid-connection. maglevd leaves these two settings to VPP (lb_conf with ~0).
        self.vppctl(f"lb conf buckets {STICKY_BUCKETS} timeout {FLOW_TIMEOUT}")
        self._warm_neighbours()

    def _warm_neighbours(self) -> None:
        """One datagram from each namespace to VPP: the namespace resolves VPP's address, and
        VPP learns the namespace's from the ARP request. Otherwise VPP drops the first packet
        to each backend while it resolves it, and the first probes time out."""

        def poke(address: str) -> None:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.sendto(b"lab", (address, 9))

        for host in self.plan.hosts:
            with NetnsWorker(host.netns) as worker:
                worker.call(poke, str(host.vpp_address))
        wanted = {str(h.address) for h in self.plan.hosts}

        def learned() -> bool:
            out = self.vppctl("show ip neighbors", check=False)
            return wanted <= set(re.findall(r"\d+\.\d+\.\d+\.\d+", out))

        if not wait_until(learned, 5, every=0.05):
            raise LabError("VPP did not learn the namespaces' addresses (ARP)")

    # -- backends -------------------------------------------------------------------------------

    def _spawn(self, key: str, ns: str, script: str, args: list[str], ready: str) -> Proc:
        log = self.workdir / f"{key}.log"
        offset = log.stat().st_size if log.exists() else 0
        with open(log, "a") as out:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, sys.executable, "-u", str(HERE / script), *args],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        # `ip netns exec` execs the command: this pid is the Python process itself.
        started = Proc.of(proc.pid)
        self.record.servers[key] = started.to_json()
        self.save()

        def is_ready() -> bool:
            if proc.poll() is not None:
                text = log.read_text(errors="replace")[offset:][-1500:]
                raise LabError(f"{script} in {ns} exited ({proc.returncode}):\n{text}")
            return ready in log.read_text(errors="replace")[offset:]

        if not wait_until(is_ready, 15, every=0.02):
            raise LabError(f"{script} in {ns} not ready within 15 s; see {log}")
        return started

    def start_decap(self, name: str) -> None:
        host = self.plan.backend(name)
        self._spawn(f"decap-{name}", host.netns, "gre_decap.py", ["--tun", TUN], "gre-decap ready")

    def start_backend(self, name: str) -> None:
        """(Re)start backend `name`'s HTTP server, on the VIPs and on its own address."""
        host = self.plan.backend(name)
        if self.backend_alive(name):
            return
        args = ["--name", name]
        for address in [*(f.vip for f in self.plan.frontends), host.address]:
            args += ["--listen", f"{address}:80"]
        self._spawn(f"http-{name}", host.netns, "backend_http.py", args, f"backend {name} ready")

    def _server(self, key: str) -> Proc | None:
        return Proc.from_json(self.record.servers.get(key))

    def backend_alive(self, name: str) -> bool:
        proc = self._server(f"http-{name}")
        return proc is not None and proc.alive()

    def kill_backend(self, name: str) -> None:
        """SIGKILL backend `name`'s HTTP server: its listeners and connections are gone at
        once (new connections are refused, open ones reset or closed)."""
        self.plan.backend(name)
        proc = self._server(f"http-{name}")
        if proc is not None:
            proc.stop(5, signal.SIGKILL)

    def sicken(self, name: str, sick: bool = True) -> None:
        """Make backend `name` fail its health check (503 on /healthz) while it goes on serving
        everything else, the connections it has included; sick=False heals it."""
        self.plan.backend(name)
        proc = self._server(f"http-{name}")
        if proc is None or not proc.send(signal.SIGUSR1 if sick else signal.SIGUSR2):
            raise LabError(f"backend {name}'s server is not running")

    # -- reading VPP ----------------------------------------------------------------------------

    def vpp_connection(self) -> Any:
        """The project's own VPP client on the lab's sockets (made once, closed by down())."""
        if self._vpp_conn is None:
            from dataplane.vpp.connection import VppConnection

            conn = VppConnection(self.api_socket, self.stats_socket, name="lab", retry_interval=0.2)
            conn.start()
            if not conn.wait_connected(10):
                conn.stop()
                raise LabError("cannot connect to the lab's VPP")
            self._vpp_conn = conn
        return self._vpp_conn

    def lb_state(self) -> dict[str, Any]:
        """VIPs and ASes as the project reads them (dataplane.vpp.reader.lb_state_view)."""
        from dataplane.vpp.reader import read_lb_state

        return self.vpp_connection().run(read_lb_state, timeout=10)

    def buckets(self, frontend: str) -> dict[str, int]:
        """Backend name → Maglev buckets of `frontend`'s VIP (ASes in use only)."""
        vip = f"{self.plan.frontend(frontend).vip}/32"
        by_address = {str(h.address): h.name for h in self.plan.backend_hosts}
        for v in self.lb_state()["vips"]:
            if v["prefix"] == vip:
                return {
                    by_address.get(a["address"], a["address"]): a["num_buckets"]
                    for a in v["ases"]
                    if a["used"]
                }
        return {}

    def weights(self, frontend: str) -> dict[str, int]:
        vip = f"{self.plan.frontend(frontend).vip}/32"
        by_address = {str(h.address): h.name for h in self.plan.backend_hosts}
        for v in self.lb_state()["vips"]:
            if v["prefix"] == vip:
                return {
                    by_address.get(a["address"], a["address"]): a["weight"]
                    for a in v["ases"]
                    if a["used"]
                }
        return {}

    def counters(self) -> dict[str, dict[str, int]]:
        """VIP prefix → the lb plugin's packet counters, read from the stats segment."""
        from dataplane.vpp.counters import read_counters

        snapshot = self.vpp_connection().run(read_counters, timeout=10)
        return {
            str(v.key.prefix): {
                "next": v.next_packet,
                "first": v.first_packet,
                "untracked": v.untracked_packet,
                "no_server": v.no_server,
            }
            for v in snapshot.vips
        }

    def wait_all_up(self, timeout: float = 60.0) -> None:
        """Until every frontend's VIP holds every backend at its configured weight."""
        want = {n: w for n, w in self.plan.backend_weights.items()}

        def done() -> bool:
            try:
                return all(self.weights(f.name) == want for f in self.plan.frontends)
            except Exception:
                return False

        if not wait_until(done, timeout, every=0.2):
            have = {f.name: self.weights(f.name) for f in self.plan.frontends}
            raise LabError(f"VPP does not hold the backends' weights {want} after {timeout} s: "
                           f"{have}")  # fmt: skip

    # -- the client -----------------------------------------------------------------------------

    def client_command(self, *args: str) -> list[str]:
        """The traffic generator, run in the client namespace."""
        return ["ip", "netns", "exec", self.plan.client.netns, sys.executable, "-u",
                str(HERE / "client.py"), *args]  # fmt: skip

    def shell_command(self) -> str:
        return f"ip netns exec {self.plan.client.netns} bash"

    # -- the whole lab --------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        record = self.record
        procs = {"vpp": record.vpp, "maglevd": record.maglevd, **record.servers}
        out: dict[str, Any] = {
            "index": self.plan.index,
            "workdir": str(self.workdir),
            "kept": record.owner is None,
            "processes": {
                k: {"pid": v[0], "alive": Proc(v[0], v[1]).alive()} if v else None
                for k, v in procs.items()
            },
            "namespaces": {h.netns: str(h.address) for h in self.plan.hosts},
            "frontends": {f.name: f"{f.vip}:{f.port}" for f in self.plan.frontends},
            "ports": record.ports,
        }
        vpp = Proc.from_json(record.vpp)
        if vpp is not None and vpp.alive():
            out["vpp"] = {
                f.name: {"weights": self.weights(f.name), "buckets": self.buckets(f.name)}
                for f in self.plan.frontends
            }
            out["counters"] = self.counters()
        return out

    def down(self) -> None:
        """Remove everything this lab made: processes, veths, namespaces, its directory and
        its record."""
        if self._vpp_conn is not None:
            with contextlib.suppress(Exception):
                self._vpp_conn.stop()
            self._vpp_conn = None
        with _locked():
            _teardown(self.record)
