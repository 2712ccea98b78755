"""VPP's ip46_address_t as 16 bytes, and the lb plugin's prefix helpers and formatting.

An IPv4 address is 12 zero bytes followed by the 4 address bytes (not the ::ffff: mapping),
an IPv4 prefix length is stored plus 96. Everything here mirrors a C helper of the same name.
"""

from __future__ import annotations

import struct

ZERO16 = bytes(16)


def ip46_from_api(af: int, union: bytes) -> bytes:
    """ip_address_decode: vl_api_address_t (af + 16-byte union) to ip46."""
    if af == 0:
        return bytes(12) + union[:4]
    if af == 1:
        return bytes(union[:16])
    return ZERO16  # VPP asserts in debug builds; release builds leave zeroed args


def ip46_to_api(addr: bytes) -> dict[str, object]:
    """ip_address_encode with IP46_TYPE_ANY."""
    if is_ip4(addr):
        return {"af": 0, "un": addr[12:] + bytes(12)}
    return {"af": 1, "un": addr}


def is_ip4(addr: bytes) -> bool:
    """ip46_address_is_ip4: the first 12 bytes are zero."""
    return addr[:12] == bytes(12)


def prefix_is_ip4(addr: bytes, plen: int) -> bool:
    """ip46_prefix_is_ip4."""
    return plen >= 96 and is_ip4(addr)


def prefix_normalize(addr: bytes, plen: int) -> bytes:
    """ip46_prefix_normalize, shift quirks included (a length above 128 shifts modulo 64)."""
    hi, lo = struct.unpack(">QQ", addr)
    ones = 0xFFFFFFFFFFFFFFFF
    if plen == 0:
        hi = lo = 0
    elif plen <= 64:
        hi &= (ones << ((64 - plen) & 63)) & ones
        lo = 0
    else:
        lo &= (ones << ((128 - plen) & 63)) & ones
    return struct.pack(">QQ", hi, lo)


def format_ip4(addr4: bytes) -> str:
    return ".".join(str(b) for b in addr4)


def format_ip6(addr16: bytes) -> str:
    """format_ip6_address: compress the first longest run of two or more zero groups."""
    groups = struct.unpack(">8H", addr16)
    best_start, best_len, run_start, run_len = -1, 0, 0, 0
    for i, g in enumerate((*groups, 1)):  # the sentinel closes a trailing run
        if g == 0 and i < 8:
            if run_len == 0:
                run_start = i
            run_len += 1
            continue
        if run_len > best_len and run_len > 1:
            best_start, best_len = run_start, run_len
        run_len = 0
    out, i, after_colons = "", 0, False
    while i < 8:
        if i == best_start:
            out += "::"
            i += best_len
            after_colons = True
            continue
        out += ("" if after_colons or i == 0 else ":") + f"{groups[i]:x}"
        after_colons = False
        i += 1
    return out


def format_address(addr: bytes) -> str:
    """format_ip46_address with IP46_TYPE_ANY."""
    return format_ip4(addr[12:]) if is_ip4(addr) else format_ip6(addr)


def format_prefix(addr: bytes, plen: int) -> str:
    """format_ip46_prefix with IP46_TYPE_ANY."""
    if prefix_is_ip4(addr, plen):
        return f"{format_ip4(addr[12:])}/{plen - 96}"
    return f"{format_ip6(addr)}/{plen}"


def parse_prefix(text: str) -> tuple[bytes, int]:
    """`198.51.100.1/32` or `2001:db8::1/128` (length optional) to (ip46, plen as VPP stores it)."""
    import ipaddress

    addr_text, _, len_text = text.partition("/")
    addr = ipaddress.ip_address(addr_text)
    if addr.version == 4:
        return bytes(12) + addr.packed, int(len_text or 32) + 96
    return addr.packed, int(len_text or 128)
