"""The debug CLI as `cli_inband` reaches it: `show version`, `show lb`, `show lb vips [verbose]`
and the simulator's own `test lb traffic ...`.

Parsing follows vlib's dispatcher (src/vlib/cli.c): words match commands by unique prefix (an
exact name wins), a command with sub-commands falls back to its own function, whatever a
command leaves unparsed is dispatched again from the root, and errors read
"<path>: unknown input `<rest>'" with retval -1. Output text follows lb.c's format functions.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from dataplane.vppsim import ip46
from dataplane.vppsim.lbstate import COUNTER_NAMES, VIP_TYPE_NAMES, LbState, Vip, VipType

_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
_WHITE = " \t\r\n\f"


@dataclass(frozen=True)
class VersionInfo:
    """What `show version` and the show_version message report."""

    version: str = "26.10-rc0~374-gb575ec2c56d"  # the VPP build whose behaviour is modelled
    build_date: str = "2026-11-25T10:43:00"
    build_user: str = "vppsim"
    build_host: str = "vppsim"
    build_directory: str = ""


class CliError(Exception):
    """A command's own error; the dispatcher prefixes it with the command path."""


class Input:
    """An unformat_input_t: the command text and a read position."""

    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0

    def skip_white(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in _WHITE:
            self.pos += 1

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def rest(self) -> str:
        return self.text[self.pos :]

    def take_rest(self) -> str:
        """unformat_line_input: the remainder of the input, consumed."""
        out, self.pos = self.text[self.pos :], len(self.text)
        return out

    def word(self) -> str:
        """Consume a command word and the one white-space character after it, as vlib does."""
        self.skip_white()
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in _WORD_CHARS:
            self.pos += 1
        word = self.text[start : self.pos]
        if self.pos < len(self.text) and self.text[self.pos] in _WHITE:
            self.pos += 1
        return word

    def literal(self, token: str) -> bool:
        """unformat(input, token): skip white space, then match `token` as a literal prefix."""
        saved = self.pos
        self.skip_white()
        if self.text.startswith(token, self.pos):
            self.pos += len(token)
            return True
        self.pos = saved
        return False

    def error_text(self) -> str:
        """format_unformat_error: at most 30 characters of what is left, white space escaped."""
        rest = self.rest()
        shown = rest[:30] if len(rest) > 30 else rest.rstrip(_WHITE)
        shown = shown.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")
        return shown + ("..." if len(rest) > 30 else "")


CommandFn = Callable[[Input], str]


@dataclass
class Command:
    path: str
    function: CommandFn | None = None
    children: dict[str, Command] = field(default_factory=dict)

    def add(self, name: str, function: CommandFn | None = None) -> Command:
        child = Command(f"{self.path} {name}".strip(), function)
        self.children[name] = child
        return child

    def match(self, word: str) -> Command | None:
        """vlib_cli_sub_command_match: a unique prefix, or the exact name among several."""
        if not word:
            return None
        found = [c for n, c in self.children.items() if n.startswith(word)]
        if len(found) > 1:
            found = [c for n, c in self.children.items() if n == word]
        return found[0] if len(found) == 1 else None


class Cli:
    def __init__(
        self,
        lb: LbState,
        info: VersionInfo,
        traffic: Callable[[str], None] | None = None,
    ) -> None:
        self.lb, self.info, self._traffic = lb, info, traffic
        self.root = Command("")
        show = self.root.add("show")
        show.add("version", self._show_version)
        show_lb = show.add("lb", self._show_lb)
        show_lb.add("vips", self._show_vips)
        self.root.add("test").add("lb").add("traffic", self._test_traffic)

    def run(self, text: str) -> tuple[int, str]:
        """vlib_cli_input: returns (retval, output)."""
        inp, out = Input(text), []
        first = True
        while first or not inp.at_end():
            if not first:
                inp.skip_white()
                if inp.at_end():
                    break
            first = False
            error = self._dispatch(self.root, inp, out)
            if error is not None:
                out.append(error + "\n")
                return -1, "".join(out)
        return 0, "".join(out)

    def _dispatch(self, parent: Command, inp: Input, out: list[str]) -> str | None:
        saved = inp.pos
        command = parent.match(inp.word())
        if command is None:
            inp.pos = saved
            where = f"{parent.path}: " if parent.path else ""
            return f"{where}unknown input `{inp.error_text()}'"
        error = None
        if command.children:
            error = self._dispatch(command, inp, out)
            if error is None:
                return None
        if command.function is not None:
            inp.skip_white()
            try:
                text = command.function(inp)
            except CliError as e:
                return f"{command.path}: {e}"
            if text:
                out.append(text)
            return None
        return error if error is not None else f"{command.path}: no sub-commands"

    # ------------------------------------------------------------ commands

    def _show_version(self, inp: Input) -> str:
        verbose = cmdline = False
        while not inp.at_end():
            if inp.literal("verbose"):
                verbose = True
            elif inp.literal("cmdline"):
                cmdline = True
            else:
                break
        i = self.info
        if verbose:
            rows = (
                ("Version:", f"v{i.version}"),
                ("Compiled by:", i.build_user),
                ("Compile host:", i.build_host),
                ("Compile date:", i.build_date),
                ("Compile location:", i.build_directory),
                ("Compiler:", "vppsim (Python)"),
                ("Current PID:", str(os.getpid())),
            )
            return "".join(f"{k:<25} {v}\n" for k, v in rows)
        if cmdline:
            return "Command line arguments:\n  vppsim\n"
        return f"vpp v{i.version} built by {i.build_user} on {i.build_host} at {i.build_date}\n"

    def _show_lb(self, inp: Input) -> str:
        lb = self.lb
        return (
            f"lb_main ip4-src-address: {ip46.format_ip4(lb.ip4_src)} \n"
            f" ip6-src-address: {ip46.format_ip6(lb.ip6_src)} \n"
            f" #vips: {len(lb.vips)}\n"
            f" #ass: {len(lb.ass) - 1}\n"
        )

    def _show_vips(self, inp: Input) -> str:
        verbose = inp.take_rest().lstrip(_WHITE).startswith("verbose")
        out = []
        for index, vip in self.lb.vips.items():
            if index == 0:
                continue
            text = self._vip_detailed(index, vip) if verbose else self._vip_line(vip)
            out.append(text + "\n")
        return "".join(out)

    def _test_traffic(self, inp: Input) -> str:
        if self._traffic is None:
            raise CliError("traffic is not enabled")
        try:
            self._traffic(inp.take_rest())
        except ValueError as e:
            raise CliError(str(e)) from None
        return ""

    # ------------------------------------------------------------ lb.c format functions

    @staticmethod
    def _nat_suffix(vip: Vip, sep: str) -> str:
        kind = "clusterip" if vip.encap_byte0 == 0 else "nodeport"
        # VPP prints ntohs() of the host-order port: byte-swapped, as real VPP shows it
        port = ((vip.port & 0xFF) << 8) | (vip.port >> 8)
        return f"{sep}type:{kind} port:{port} target_port:{vip.target_port}"

    def _vip_line(self, vip: Vip) -> str:
        """format_lb_vip."""
        s = (
            f"{VIP_TYPE_NAMES.get(vip.type, '_WRONG_TYPE_')} "
            f"{ip46.format_prefix(vip.prefix, vip.plen)} new_size:{vip.table_mask + 1} "
            f"#as:{len(vip.as_indexes)}{'' if vip.used else ' removed'}"
        )
        if vip.port != 0:
            s += f"  protocol:{vip.protocol} port:{vip.port} "
        if vip.type == VipType.IP4_L3DSR:
            s += f"  dscp:{vip.encap_byte0}"
        elif vip.type in (VipType.IP4_NAT4, VipType.IP6_NAT6):
            s += self._nat_suffix(vip, " ")
        return s

    def _vip_detailed(self, index: int, vip: Vip) -> str:
        """format_lb_vip_detailed."""
        lb = self.lb
        s = (
            f" {VIP_TYPE_NAMES.get(vip.type, '_WRONG_TYPE_')} [{index}] "
            f"{ip46.format_prefix(vip.prefix, vip.plen)}"
            f"{' src_ip_sticky' if vip.src_ip_sticky else ''}{'' if vip.used else ' removed'}\n"
            f"  new_size:{vip.table_mask + 1}\n"
        )
        if vip.port != 0:
            s += f"  protocol:{vip.protocol} port:{vip.port}\n"
        if vip.type == VipType.IP4_L3DSR:
            s += f"  dscp:{vip.encap_byte0}\n"
        elif vip.type in (VipType.IP4_NAT4, VipType.IP6_NAT6):
            s += self._nat_suffix(vip, "  ")  # VPP prints no newline here
        s += "  counters:\n"
        for i, name in enumerate(COUNTER_NAMES):
            s += f"    {name}: {lb.counter_total(i, index)}\n"
        s += f"  #as:{len(vip.as_indexes)}\n"
        counts = vip.bucket_counts()
        for _, as_index in vip.as_indexes.items():
            a = lb.ass[as_index]
            s += (
                f"    {ip46.format_address(a.address)} weight:{a.weight} "
                f"buckets:{counts.get(as_index, 0)} flows:0 dpo:{a.dpo} "
                f"{'used' if a.used else ' removed'}\n"
            )
        return s
