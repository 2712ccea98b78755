"""GRE decapsulator for a lab backend: what a `gre` tunnel interface would do, in user space.

VPP's lb plugin sends each packet for a VIP to the chosen backend inside GRE (outer IPv4, a
4-byte GRE header, the client's packet unchanged). A kernel without the ip_gre module cannot
take it off, so this reads GRE with a raw socket (IP protocol 47: the kernel hands it the whole
outer packet), strips the outer IPv4 header and the GRE header, and writes the inner packet into
a TUN device (IFF_TUN | IFF_NO_PI) that it brings up in the namespace it runs in. The kernel
then receives the client's packet on the TUN device as if it had arrived there, and delivers it
to the VIP held on `lo`; the reply leaves by the routing table (direct server return).

Run inside the backend's namespace (`ip netns exec NS python gre_decap.py --tun decap0`). It
uses only the standard library. Anything that is not a well-formed GRE packet carrying IPv4 or
IPv6 is dropped and counted, never fatal; SIGTERM or SIGINT ends it with a summary line.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import socket
import struct
import sys
from collections import Counter

IPPROTO_GRE = 47
TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IFF_UP = 0x1
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914

GRE_C = 0x8000  # checksum present
GRE_R = 0x4000  # routing present (RFC 1701)
GRE_K = 0x2000  # key present
GRE_S = 0x1000  # sequence number present
GRE_SSR = 0x0800  # strict source route (RFC 1701)
GRE_RECUR = 0x0700
GRE_VERSION = 0x0007
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of `data`."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def decapsulate(packet: bytes) -> tuple[bytes | None, str]:
    """The inner packet of one IPv4 GRE packet as a raw socket reads it, and "ok"; or None and
    why it was dropped. Pure; never raises for any input."""
    if len(packet) < 20:
        return None, "short-outer"
    version_ihl, total_length = packet[0], struct.unpack_from("!H", packet, 2)[0]
    if version_ihl >> 4 != 4:
        return None, "outer-not-ipv4"
    ihl = (version_ihl & 0x0F) * 4
    if ihl < 20 or total_length < ihl or total_length > len(packet):
        return None, "bad-outer-length"
    if packet[9] != IPPROTO_GRE:
        return None, "not-gre"
    if struct.unpack_from("!H", packet, 6)[0] & 0x3FFF:  # MF or a fragment offset
        return None, "fragment"
    gre = packet[ihl:total_length]
    if len(gre) < 4:
        return None, "short-gre"
    flags, proto = struct.unpack_from("!HH", gre, 0)
    if flags & GRE_VERSION:
        return None, "gre-version"  # version 1 is PPTP's enhanced GRE
    if flags & (GRE_R | GRE_SSR | GRE_RECUR):
        return None, "gre-routing"
    header = 4 + 4 * bool(flags & GRE_C) + 4 * bool(flags & GRE_K) + 4 * bool(flags & GRE_S)
    if len(gre) < header:
        return None, "short-gre"
    if flags & GRE_C and checksum(gre) != 0:
        return None, "gre-checksum"
    inner = gre[header:]
    if proto == ETH_P_IP:
        if len(inner) < 20 or inner[0] >> 4 != 4 or inner[0] & 0x0F < 5:
            return None, "bad-inner-ipv4"
        length = struct.unpack_from("!H", inner, 2)[0]
        if length < (inner[0] & 0x0F) * 4 or length > len(inner):
            return None, "bad-inner-length"
        return inner[:length], "ok"
    if proto == ETH_P_IPV6:
        if len(inner) < 40 or inner[0] >> 4 != 6:
            return None, "bad-inner-ipv6"
        length = 40 + struct.unpack_from("!H", inner, 4)[0]
        if length > len(inner):
            return None, "bad-inner-length"
        return inner[:length], "ok"
    return None, "inner-not-ip"


def open_tun(name: str) -> tuple[int, str]:
    """Create (or attach to) TUN device `name`, bring it up; its descriptor and real name."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    try:
        ifr = struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI)
        ifr = fcntl.ioctl(fd, TUNSETIFF, ifr + b"\0" * 22)
        real = ifr[:16].rstrip(b"\0").decode()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            flags_req = struct.pack("16sH", real.encode(), 0) + b"\0" * 22
            flags = struct.unpack_from("H", fcntl.ioctl(sock, SIOCGIFFLAGS, flags_req), 16)[0]
            up = struct.pack("16sH", real.encode(), flags | IFF_UP) + b"\0" * 22
            fcntl.ioctl(sock, SIOCSIFFLAGS, up)
    except BaseException:
        os.close(fd)
        raise
    return fd, real


def disable_rp_filter(ifname: str) -> None:
    """The client's address arrives on the TUN device while the route back to it leads out of
    the veth: strict reverse-path filtering would drop every packet."""
    for key in ("all", ifname):
        with open(f"/proc/sys/net/ipv4/conf/{key}/rp_filter", "w") as f:
            f.write("0")


class _Stop(Exception):
    """Raised by the SIGTERM/SIGINT handler to leave the receive loop."""


def serve(tun_name: str, ready: str | None = None) -> Counter[str]:
    """Decapsulate until SIGTERM/SIGINT; the counts by outcome."""
    counts: Counter[str] = Counter()
    tun, real = open_tun(tun_name)
    disable_rp_filter(real)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_GRE)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)

    def stop(*_: object) -> None:
        raise _Stop

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if ready:
        print(ready.format(tun=real), flush=True)
    try:
        while True:
            try:
                packet = raw.recv(65535)
            except OSError:
                counts["recv-error"] += 1
                continue
            inner, why = decapsulate(packet)
            counts[why] += 1
            if inner is None:
                continue
            try:
                os.write(tun, inner)
            except OSError:
                counts["tun-write-error"] += 1
    except _Stop:
        pass
    finally:
        raw.close()
        os.close(tun)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tun", default="decap0", help="TUN device to create (default decap0)")
    args = parser.parse_args(argv)
    counts = serve(args.tun, ready="gre-decap ready: tun {tun}")
    summary = " ".join(f"{k}={v}" for k, v in sorted(counts.items()))
    print(f"gre-decap stopped: {summary or 'nothing received'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
