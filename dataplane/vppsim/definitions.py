"""The simulator's own message definitions: what it serves and how each message is laid out.

Written from VPP's `.api` sources (src/vlibmemory/memclnt.api, src/vlibmemory/vlib.api,
src/vpp/api/vpe.api, src/vnet/ip/ip_types.api, src/vnet/interface_types.api,
src/plugins/lb/lb_types.api and lb.api) at the version the simulator models: `lb` API 1.2.0.
CRCs are VPP's, because clients pick messages by `name_crc`. memclnt and the lb plugin are
complete; vlib and vpe hold only the messages the simulator answers (cli_inband, show_version).
tests/dataplane/test_vppsim_definitions.py checks all of it against real VPP's `.api.json`.
"""

from __future__ import annotations

from dataplane.vppsim.apitypes import (
    Alias,
    Message,
    Module,
    Struct,
    Union,
    enum,
    f,
    raw,
    reply,
    request,
    services_for,
    simple_reply,
)

# ---------------------------------------------------------------- type-only modules

IP_TYPES = Module(
    name="ip_types",
    version="3.0.0",
    crc=0xFEE023ED,
    enums=(
        enum("address_family", "ADDRESS_", "IP4 IP6", "u8"),
        enum("ip_feature_location", "IP_API_FEATURE_", "INPUT OUTPUT LOCAL PUNT DROP", "u8"),
        enum("ip_ecn", "IP_API_ECN_", "NONE ECT0 ECT1 CE", "u8"),
        enum(
            "ip_dscp",
            "IP_API_DSCP_",
            "CS0 CS1=8 AF11=10 AF12=12 AF13=14 CS2=16 AF21=18 AF22=20 AF23=22 CS3=24 AF31=26"
            " AF32=28 AF33=30 CS4=32 AF41=34 AF42=36 AF43=38 CS5=40 EF=46 CS6=48 CS7=50",
            "u8",
        ),
        enum(
            "ip_proto",
            "IP_API_PROTO_",
            "HOPOPT ICMP IGMP TCP=6 UDP=17 GRE=47 ESP=50 AH ICMP6=58 EIGRP=88 OSPF SCTP=132"
            " RESERVED=255",
            "u8",
        ),
    ),
    aliases=(
        Alias("ip4_address", "u8", 4),
        Alias("ip6_address", "u8", 16),
        Alias("address_with_prefix", "vl_api_prefix_t"),
        Alias("ip4_address_with_prefix", "vl_api_ip4_prefix_t"),
        Alias("ip6_address_with_prefix", "vl_api_ip6_prefix_t"),
    ),
    unions=(
        Union(
            "address_union",
            (f("ip4_address ip4", case="ADDRESS_IP4"), f("ip6_address ip6", case="ADDRESS_IP6")),
        ),
    ),
    types=(
        Struct("address", (f("address_family af"), f("address_union un", discriminator="af"))),
        Struct("prefix", (f("address address"), f("u8 len"))),
        Struct("ip4_address_and_mask", (f("ip4_address addr"), f("ip4_address mask"))),
        Struct("ip6_address_and_mask", (f("ip6_address addr"), f("ip6_address mask"))),
        Struct(
            "mprefix",
            (
                f("address_family af"),
                f("u16 grp_address_length"),
                f("address_union grp_address"),
                f("address_union src_address"),
            ),
        ),
        Struct("ip6_prefix", (f("ip6_address address"), f("u8 len"))),
        Struct("ip4_prefix", (f("ip4_address address"), f("u8 len"))),
        Struct("prefix_matcher", (f("u8 le"), f("u8 ge"))),
    ),
)

INTERFACE_TYPES = Module(
    name="interface_types",
    version="1.0.0",
    crc=0x7F2BA79A,
    aliases=(Alias("interface_index", "u32"),),
    enums=(
        enum("if_status_flags", "IF_STATUS_API_FLAG_", "ADMIN_UP=1 LINK_UP"),
        enum("mtu_proto", "MTU_PROTO_API_", "L3 IP4 IP6 MPLS"),
        enum("link_duplex", "LINK_DUPLEX_API_", "UNKNOWN HALF FULL"),
        enum(
            "sub_if_flags",
            "SUB_IF_API_FLAG_",
            "NO_TAGS=1 ONE_TAG TWO_TAGS=4 DOT1AD=8 EXACT_MATCH=16 DEFAULT=32"
            " OUTER_VLAN_ID_ANY=64 INNER_VLAN_ID_ANY=128 MASK_VNET=254 DOT1AH=256",
        ),
        enum("rx_mode", "RX_MODE_API_", "UNKNOWN POLLING INTERRUPT ADAPTIVE DEFAULT"),
        enum("if_type", "IF_API_TYPE_", "HARDWARE SUB P2P PIPE"),
        enum("direction", "", "RX TX", "u8"),
    ),
)

LB_TYPES = Module(
    name="lb_types",
    version="1.0.0",
    crc=0xBA19340C,
    imports=("vnet/ip/ip_types.api",),
    import_modules=(IP_TYPES,),
    enums=(
        enum("lb_srv_type", "LB_API_SRV_", "TYPE_CLUSTERIP TYPE_NODEPORT N_TYPES"),
        enum(
            "lb_encap_type",
            "LB_API_ENCAP_",
            "TYPE_GRE4 TYPE_GRE6 TYPE_L3DSR TYPE_NAT4 TYPE_NAT6 N_TYPES",
        ),
        enum("lb_lkp_type_t", "LB_API_LKP_", "SAME_IP_PORT DIFF_IP_PORT ALL_PORT_IP N_TYPES"),
        enum(
            "lb_vip_type",
            "LB_API_VIP_",
            "TYPE_IP6_GRE6 TYPE_IP6_GRE4 TYPE_IP4_GRE6 TYPE_IP4_GRE4 TYPE_IP4_L3DSR"
            " TYPE_IP4_NAT4 TYPE_IP6_NAT6 N_TYPES",
        ),
        enum("lb_nat_protocol", "LB_API_NAT_PROTOCOL_", "UDP=6 TCP=23 ANY=0xffffffff"),
    ),
    types=(
        Struct("lb_vip", (f("address_with_prefix pfx"), f("ip_proto protocol"), f("u16 port"))),
    ),
)

VPE_TYPES = Module(
    name="vpe_types",
    version="1.0.0",
    crc=0x5F754A1C,
    types=(
        Struct(
            "version",
            (
                f("u32 major"),
                f("u32 minor"),
                f("u32 patch"),
                f("u8 pre_release[17]"),
                f("u8 build_metadata[17]"),
            ),
        ),
    ),
    enums=(
        enum(
            "log_level",
            "VPE_API_LOG_LEVEL_",
            "EMERG ALERT CRIT ERR WARNING NOTICE INFO DEBUG DISABLED",
        ),
    ),
    aliases=(Alias("timestamp", "f64"), Alias("timedelta", "f64")),
)

# ---------------------------------------------------------------- memclnt (complete)

_MEMCLNT_MESSAGES: tuple[Message, ...] = (
    raw(
        "memclnt_create",
        0x9C5E1C2F,
        f("u32 context"),
        f("i32 ctx_quota"),
        f("u64 input_queue"),
        f("string name[64]"),
        f("u32 api_versions[8]"),
        deprecated=None,
    ),
    raw(
        "memclnt_create_reply",
        0x42EC4560,
        f("u32 context"),
        f("i32 response"),
        f("u64 handle"),
        f("u32 index"),
        f("u64 message_table"),
        deprecated=None,
    ),
    raw("memclnt_delete", 0x7E1C04E3, f("u32 index"), f("u64 handle"), f("bool do_cleanup")),
    raw("memclnt_delete_reply", 0x3D3B6312, f("i32 response"), f("u64 handle")),
    raw("rx_thread_exit", 0xC3A3A452, f("u8 dummy")),
    raw("memclnt_rx_thread_suspend", 0xC3A3A452, f("u8 dummy")),
    raw("memclnt_read_timeout", 0xC3A3A452, f("u8 dummy")),
    request(
        "rpc_call",
        0x7E8A2C95,
        f("u64 function"),
        f("u8 multicast"),
        f("u8 need_barrier_sync"),
        f("u8 send_reply"),
        f("u32 data_len"),
        f("u8 data[data_len]"),
    ),
    simple_reply("rpc_call_reply"),
    request("get_first_msg_id", 0xEBF79A66, f("string name[64]")),
    reply("get_first_msg_id_reply", 0x7D337472, f("i32 retval"), f("u16 first_msg_id")),
    request("api_versions", 0x51077D14),
    reply(
        "api_versions_reply",
        0x5F0D99D6,
        f("i32 retval"),
        f("u32 count"),
        f("module_version api_versions[count]"),
    ),
    request(
        "trace_plugin_msg_ids",
        0xF476D3CE,
        f("string plugin_name[128]"),
        f("u16 first_msg_id"),
        f("u16 last_msg_id"),
    ),
    raw("sockclnt_create", 0x455FB9C4, f("u32 context"), f("string name[64]")),
    raw(
        "sockclnt_create_reply",
        0x35166268,
        f("u32 client_index"),
        f("u32 context"),
        f("i32 response"),
        f("u32 index"),
        f("u16 count"),
        f("message_table_entry message_table[count]"),
    ),
    request("sockclnt_delete", 0x8AC76DB6, f("u32 index")),
    reply("sockclnt_delete_reply", 0x8F38B1EE, f("i32 response")),
    request(
        "sock_init_shm",
        0x51646D92,
        f("u32 requested_size"),
        f("u8 nitems"),
        f("u64 configs[nitems]"),
    ),
    simple_reply("sock_init_shm_reply"),
    request("memclnt_keepalive", 0x51077D14),
    simple_reply("memclnt_keepalive_reply"),
    request("control_ping", 0x51077D14),
    reply(
        "control_ping_reply", 0xF6B0B8CA, f("i32 retval"), f("u32 client_index"), f("u32 vpe_pid")
    ),
    raw(
        "memclnt_create_v2",
        0xC4BD4882,
        f("u32 context"),
        f("i32 ctx_quota"),
        f("u64 input_queue"),
        f("string name[64]"),
        f("u32 api_versions[8]"),
        f("bool keepalive", default="true"),
    ),
    raw(
        "memclnt_create_v2_reply",
        0x42EC4560,
        f("u32 context"),
        f("i32 response"),
        f("u64 handle"),
        f("u32 index"),
        f("u64 message_table"),
    ),
    request("get_api_json", 0x51077D14),
    reply("get_api_json_reply", 0xEA715B59, f("i32 retval"), f("string json[]")),
)

MEMCLNT = Module(
    name="memclnt",
    version="2.1.0",
    crc=0xB197C551,
    types=(
        Struct(
            "module_version", (f("u32 major"), f("u32 minor"), f("u32 patch"), f("string name[64]"))
        ),
        Struct("message_table_entry", (f("u16 index"), f("string name[64]"))),
    ),
    messages=_MEMCLNT_MESSAGES,
    # Messages VPP sends but never answers have the reply "null".
    services={
        **{
            n: {"reply": "null"}
            for n in (
                "memclnt_rx_thread_suspend",
                "memclnt_read_timeout",
                "rx_thread_exit",
                "trace_plugin_msg_ids",
            )
        },
        **services_for(_MEMCLNT_MESSAGES),
    },
)

# ---------------------------------------------------------------- vlib, vpe (what we answer)

_VLIB_MESSAGES = (
    request("cli_inband", 0xF8377302, f("string cmd[]")),
    reply("cli_inband_reply", 0x05879051, f("i32 retval"), f("string reply[]")),
)
VLIB = Module(
    name="vlib",
    version="1.0.0",
    crc=0x9A9E84E4,
    messages=_VLIB_MESSAGES,
    services=services_for(_VLIB_MESSAGES),
)

_VPE_MESSAGES = (
    request("show_version", 0x51077D14),
    reply(
        "show_version_reply",
        0xC919BDE1,
        f("i32 retval"),
        f("string program[32]"),
        f("string version[32]"),
        f("string build_date[32]"),
        f("string build_directory[256]"),
    ),
)
VPE = Module(
    name="vpe",
    version="1.7.0",
    crc=0xBBFA7484,
    imports=("vpp/api/vpe_types.api",),
    import_modules=(VPE_TYPES,),
    messages=_VPE_MESSAGES,
    services=services_for(_VPE_MESSAGES),
)

# ---------------------------------------------------------------- the lb plugin (complete)

_CONF_HELP = "[ip4-src-address <addr>] [ip6-src-address <addr>] [buckets <n>] [timeout <s>]"
_VIP_HELP = (
    "<prefix> [protocol (tcp|udp) port <n>] [encap (gre6|gre4|l3dsr|nat4|nat6)] [dscp <n>] "
    "[type (nodeport|clusterip) target_port <n>] [new_len <n>]"
)
_AS_HELP = "<vip-prefix> [protocol (tcp|udp) port <n>] [<address>]"
_DUMP_HELP = "<vip-prefix> [protocol (tcp|udp) port <n>]"
_WEIGHT_HELP = "<vip-prefix> [protocol (tcp|udp) port <n>] <address> weight <0-100> [flush]"


def _vip_fields(*extra: str) -> tuple:
    """The fields lb_add_del_vip and lb_add_del_vip_v2 share, `extra` going before is_del."""
    return (
        f("address_with_prefix pfx"),
        f("u8 protocol", default=255),
        f("u16 port"),
        f("lb_encap_type encap"),
        f("u8 dscp"),
        f("lb_srv_type type"),
        f("u16 target_port"),
        f("u16 node_port"),
        f("u32 new_flows_table_length", default=1024),
        *(f(x) for x in extra),
        f("bool is_del"),
    )


def _as_fields(*middle) -> tuple:
    return (
        f("address_with_prefix pfx"),
        f("u8 protocol", default=255),
        f("u16 port"),
        f("address as_address"),
        *middle,
    )


def _pair(req: Message) -> tuple[Message, Message]:
    """A request and its retval-only reply, which carries the same options (vat_help)."""
    return req, simple_reply(req.name + "_reply", **req.options)


_VIP_FILTER = (f("address_with_prefix pfx"), f("u8 protocol"), f("u16 port"))
_AS_DETAILS = (f("lb_vip vip"), f("address app_srv"), f("u8 flags"), f("u32 in_use_since"))

_LB_MESSAGES: tuple[Message, ...] = (
    *_pair(
        request(
            "lb_conf",
            0x56CD3261,
            f("ip4_address ip4_src_address"),
            f("ip6_address ip6_src_address"),
            f("u32 sticky_buckets_per_core", default=0xFFFFFFFF),
            f("u32 flow_timeout", default=0xFFFFFFFF),
            vat_help=_CONF_HELP,
        )
    ),
    request("lb_conf_get", 0x51077D14),
    reply(
        "lb_conf_get_reply",
        0x923427AC,
        f("i32 retval"),
        f("ip4_address ip4_src_address"),
        f("ip6_address ip6_src_address"),
        f("u32 sticky_buckets_per_core"),
        f("u32 flow_timeout"),
    ),
    *_pair(request("lb_add_del_vip", 0x6FA569C7, *_vip_fields(), vat_help=_VIP_HELP + " [del]")),
    *_pair(
        request(
            "lb_add_del_vip_v2",
            0x7C520E0F,
            *_vip_fields("bool src_ip_sticky"),
            vat_help=_VIP_HELP + " [src_ip_sticky] [del]",
        )
    ),
    *_pair(
        request(
            "lb_add_del_as",
            0x35D72500,
            *_as_fields(f("bool is_del"), f("bool is_flush")),
            vat_help=_AS_HELP + " [del] [flush]",
        )
    ),
    *_pair(
        request(
            "lb_add_del_as_v2",
            0x2F1D3B0E,
            *_as_fields(f("u8 weight", default=100), f("bool is_del"), f("bool is_flush")),
            vat_help=_AS_HELP + " [weight <0-100>] [del] [flush]",
        )
    ),
    *_pair(
        request(
            "lb_as_set_weight",
            0x2D89BDBD,
            *_as_fields(f("u8 weight"), f("bool is_flush")),
            vat_help=_WEIGHT_HELP,
        )
    ),
    *_pair(request("lb_flush_vip", 0x1063F819, *_VIP_FILTER)),
    request(
        "lb_vip_dump",
        0x56110CB7,
        f("address_with_prefix pfx"),
        f("prefix_matcher pfx_matcher"),
        f("u8 protocol", default=255),
        f("u16 port"),
    ),
    reply(
        "lb_vip_details",
        0x1329EC9B,
        f("lb_vip vip"),
        f("lb_encap_type encap"),
        f("ip_dscp dscp"),
        f("lb_srv_type srv_type"),
        f("u16 target_port"),
        f("u16 flow_table_length"),
    ),
    request("lb_as_dump", 0x1063F819, *_VIP_FILTER, vat_help=_DUMP_HELP),
    reply("lb_as_details", 0x8D24C29E, *_AS_DETAILS),
    request("lb_as_v2_dump", 0x1063F819, *_VIP_FILTER, vat_help=_DUMP_HELP),
    reply("lb_as_v2_details", 0x90064AAE, *_AS_DETAILS, f("u8 weight"), f("u32 num_buckets")),
    *_pair(
        request(
            "lb_add_del_intf_nat4", 0x47D6E753, f("bool is_add"), f("interface_index sw_if_index")
        )
    ),
    *_pair(
        request(
            "lb_add_del_intf_nat6", 0x47D6E753, f("bool is_add"), f("interface_index sw_if_index")
        )
    ),
)

LB = Module(
    name="lb",
    version="1.2.0",
    crc=0xAC602D7B,
    imports=("plugins/lb/lb_types.api", "vnet/ip/ip_types.api", "vnet/interface_types.api"),
    import_modules=(LB_TYPES, IP_TYPES, INTERFACE_TYPES),
    messages=_LB_MESSAGES,
    services=services_for(_LB_MESSAGES),
)

#: Every module whose messages the simulator lists in its message table, in id order.
#: memclnt must come first and whole: vpp_papi hard-codes sockclnt_create as id 15.
SERVED_MODULES: tuple[Module, ...] = (MEMCLNT, VLIB, VPE, LB)

#: What `get_api_json` returns; like VPP it leaves out memclnt, which clients bundle.
API_JSON_MODULES: tuple[Module, ...] = (LB, VLIB, VPE)

#: The type-only modules, for comparison with the real `.api.json` files.
TYPE_MODULES: tuple[Module, ...] = (IP_TYPES, INTERFACE_TYPES, LB_TYPES, VPE_TYPES)
