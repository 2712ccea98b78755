"""`scripts/lab`: build the real-packet lab, watch traffic go through it, take it down.

    scripts/lab up [--backends N] [--weights 100,60,30] [--vpp-dir DIR | --vpp-bin VPP --vppctl CTL]
    scripts/lab status [--json]
    scripts/lab traffic [--rate 20] [--duration S] [--json]    # real requests, live tally
    scripts/lab shell                                         # the command for a client shell
    scripts/lab kill|start|sick|well BACKEND                  # break and mend a backend
    scripts/lab maglevc WORDS... / scripts/lab vppctl WORDS...
    scripts/lab down [--all]

Every command but `up` takes `--index I`; it may be left out while only one lab exists. See
docs/lab.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Any

from dataplane.lab.topology import (
    DEFAULT_WEIGHTS,
    Lab,
    LabError,
    VppInstall,
    lab_indexes,
)


def _weights(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list like 100,60,30") from None


def _pick(index: int | None) -> Lab:
    if index is None:
        indexes = lab_indexes()
        if not indexes:
            raise LabError("no lab is up (scripts/lab up)")
        if len(indexes) > 1:
            raise LabError(f"labs {indexes} are up: say which with --index")
        index = indexes[0]
    return Lab.attach(index)


def _summary(lab: Lab) -> str:
    plan, d = lab.plan, lab.maglevd
    lines = [f"lab {plan.index} is up (workdir {lab.workdir})", ""]
    for f in plan.frontends:
        lines.append(f"  frontend {f.name:9} VIP {f.vip}:{f.port}  flush-on-down "
                     f"{str(f.flush_on_down).lower()}")  # fmt: skip
    lines.append("")
    for h in plan.hosts:
        extra = f"  weight {plan.backend_weights[h.name]}" if h.name in plan.backend_weights else ""
        lines.append(f"  {h.name:7} namespace {h.netns:15} {h.address}  (VPP {h.vpp_if}){extra}")
    lines += [
        "",
        f"  maglevd   {d.web}/view/   gRPC {d.grpc_addr}   log {d.log}",
        f"  VPP       {lab.cli_socket}",
        "",
        "Try:",
        "  scripts/lab traffic                  # requests through VPP, tallied by backend",
        "  scripts/lab sick web1                # web1 fails its health check; `well` mends it",
        "  scripts/lab kill web2                # its server dies; `start` brings it back",
        "  scripts/lab maglevc show frontend www",
        "  scripts/lab maglevc set frontend www pool main backend web2 weight 0",
        "  scripts/lab vppctl show lb vips verbose",
        f"  {lab.shell_command()}   # a shell in the client namespace (curl http://{plan.frontends[0].vip}/)",
        "  scripts/lab down",
    ]  # fmt: skip
    return "\n".join(lines)


def cmd_up(args: argparse.Namespace) -> int:
    vpp = VppInstall.find(args.vpp_bin, args.vppctl, args.vpp_dir)
    lab = Lab.create(vpp, index=args.index, backends=args.backends, weights=args.weights,
                     keep=True)  # fmt: skip
    print(f"building lab {lab.plan.index} with {vpp.vpp} ...", flush=True)
    try:
        lab.up()
    except BaseException:
        print(f"lab {lab.plan.index} failed; removing what was made", file=sys.stderr)
        lab.down()
        raise
    print(_summary(lab))
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    labs = [Lab.attach(i) for i in lab_indexes()] if args.all else [_pick(args.index)]
    for lab in labs:
        lab.down()
        print(f"lab {lab.plan.index} removed")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    lab = _pick(args.index)
    status = lab.status()
    if args.json:
        print(json.dumps(status, indent=1))
        return 0
    print(_summary(lab).split("\n\nTry:")[0])
    states = [f"{k} {'up' if v and v['alive'] else 'DOWN'}" for k, v in status["processes"].items()]
    print("\nprocesses: " + ", ".join(states))
    for name, vip in status.get("vpp", {}).items():
        cells = [f"{b} w{w} b{vip['buckets'].get(b, 0)}" for b, w in vip["weights"].items()]
        print(f"VPP {name:9} " + "  ".join(cells))
    for prefix, c in status.get("counters", {}).items():
        print(f"VPP {prefix:16} first {c['first']}  existing {c['next']}  untracked "
              f"{c['untracked']}  no-server {c['no_server']}")  # fmt: skip
    return 0


def _pretty(line: dict[str, Any]) -> str:
    n = line["requests"] or 1
    shares = "  ".join(f"{b} {100 * c / n:4.1f}%" for b, c in sorted(line["backends"].items()))
    errors = " ".join(f"{k}={v}" for k, v in sorted(line["errors"].items()))
    return (f"{line['frontend']:9} requests {line['requests']:6}  failed {line['failures']:4}  "
            f"p50 {line['latency_ms']['p50']:5.1f} ms   {shares}  {errors}")  # fmt: skip


def cmd_traffic(args: argparse.Namespace) -> int:
    lab = _pick(args.index)
    targets = [a for f in lab.plan.frontends for a in ("--target", f.target)]
    cmd = lab.client_command(*targets, "--rate", str(args.rate), "--interval", "1")
    if args.duration:
        cmd += ["--duration", str(args.duration)]
    if args.json:
        return subprocess.call(cmd)
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as proc:
        try:
            for raw in proc.stdout or ():
                line = json.loads(raw)
                print(("final " if line["final"] else "") + _pretty(line), flush=True)
        except KeyboardInterrupt:
            proc.terminate()
            for raw in proc.stdout or ():
                print("final " + _pretty(json.loads(raw)))
        return proc.wait()


def cmd_shell(args: argparse.Namespace) -> int:
    lab = _pick(args.index)
    if args.exec:
        os.execvp("ip", ["ip", "netns", "exec", lab.plan.client.netns,
                         os.environ.get("SHELL", "bash")])  # fmt: skip
    print(lab.shell_command())
    return 0


def cmd_backend(args: argparse.Namespace) -> int:
    lab = _pick(args.index)
    if args.command == "kill":
        lab.kill_backend(args.backend)
    elif args.command == "start":
        lab.start_backend(args.backend)
    else:
        lab.sicken(args.backend, args.command == "sick")
    print(f"{args.backend}: {args.command}")
    return 0


def cmd_maglevc(args: argparse.Namespace) -> int:
    done = _pick(args.index).maglevd.maglevc(*args.words, check=False)
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    return done.returncode


def cmd_vppctl(args: argparse.Namespace) -> int:
    print(_pick(args.index).vppctl(" ".join(args.words), check=False), end="")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scripts/lab", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    def add(name: str, fn: Any, help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        sp.add_argument("--index", type=int, help="which lab (default: the only one)")
        sp.set_defaults(fn=fn)
        return sp

    up = add("up", cmd_up, "build a lab and leave it running")
    up.add_argument("--backends", type=int, default=3, help="backend namespaces (1-12)")
    up.add_argument("--weights", type=_weights, default=(),
                    help=f"weights per backend (default {','.join(map(str, DEFAULT_WEIGHTS))}, "
                    "repeated)")  # fmt: skip
    up.add_argument("--vpp-dir", help="a VPP install or build dir (bin/vpp, bin/vppctl, lib/)")
    up.add_argument("--vpp-bin", help="the vpp binary")
    up.add_argument("--vppctl", help="the vppctl binary (default: beside --vpp-bin)")
    down = add("down", cmd_down, "remove a lab: processes, namespaces, veths, files")
    down.add_argument("--all", action="store_true", help="every lab")
    status = add("status", cmd_status, "what a lab holds: processes, VPP weights and counters")
    status.add_argument("--json", action="store_true")
    traffic = add("traffic", cmd_traffic, "real requests to every VIP from the client namespace")
    traffic.add_argument("--rate", type=float, default=20.0, help="requests/s per VIP")
    traffic.add_argument("--duration", type=float, default=0.0, help="seconds (0: Ctrl-C)")
    traffic.add_argument("--json", action="store_true", help="the client's JSON lines as they are")
    shell = add("shell", cmd_shell, "print the command for a shell in the client namespace")
    shell.add_argument("--exec", action="store_true", help="run that shell instead")
    for name, what in (("kill", "SIGKILL a backend's HTTP server"),
                       ("start", "start a backend's HTTP server again"),
                       ("sick", "make a backend fail its health check (it keeps serving)"),
                       ("well", "make it pass again")):  # fmt: skip
        add(name, cmd_backend, what).add_argument("backend")
    add("maglevc", cmd_maglevc, "maglevc against the lab's maglevd").add_argument(
        "words", nargs=argparse.REMAINDER
    )
    add("vppctl", cmd_vppctl, "a VPP CLI command on the lab's VPP").add_argument(
        "words", nargs=argparse.REMAINDER
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except LabError as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
