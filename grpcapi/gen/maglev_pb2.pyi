import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BackendState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BACKEND_STATE_UNSPECIFIED: _ClassVar[BackendState]
    BACKEND_STATE_UNKNOWN: _ClassVar[BackendState]
    BACKEND_STATE_UP: _ClassVar[BackendState]
    BACKEND_STATE_DOWN: _ClassVar[BackendState]
    BACKEND_STATE_PAUSED: _ClassVar[BackendState]
    BACKEND_STATE_DISABLED: _ClassVar[BackendState]
    BACKEND_STATE_REMOVED: _ClassVar[BackendState]

class FrontendState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FRONTEND_STATE_UNSPECIFIED: _ClassVar[FrontendState]
    FRONTEND_STATE_UNKNOWN: _ClassVar[FrontendState]
    FRONTEND_STATE_UP: _ClassVar[FrontendState]
    FRONTEND_STATE_DOWN: _ClassVar[FrontendState]

class Protocol(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROTOCOL_UNSPECIFIED: _ClassVar[Protocol]
    PROTOCOL_TCP: _ClassVar[Protocol]
    PROTOCOL_UDP: _ClassVar[Protocol]
    PROTOCOL_ANY: _ClassVar[Protocol]

class EventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_KIND_UNSPECIFIED: _ClassVar[EventKind]
    EVENT_KIND_LOG: _ClassVar[EventKind]
    EVENT_KIND_BACKEND: _ClassVar[EventKind]
    EVENT_KIND_FRONTEND: _ClassVar[EventKind]
    EVENT_KIND_VPP: _ClassVar[EventKind]
    EVENT_KIND_SYNC: _ClassVar[EventKind]
BACKEND_STATE_UNSPECIFIED: BackendState
BACKEND_STATE_UNKNOWN: BackendState
BACKEND_STATE_UP: BackendState
BACKEND_STATE_DOWN: BackendState
BACKEND_STATE_PAUSED: BackendState
BACKEND_STATE_DISABLED: BackendState
BACKEND_STATE_REMOVED: BackendState
FRONTEND_STATE_UNSPECIFIED: FrontendState
FRONTEND_STATE_UNKNOWN: FrontendState
FRONTEND_STATE_UP: FrontendState
FRONTEND_STATE_DOWN: FrontendState
PROTOCOL_UNSPECIFIED: Protocol
PROTOCOL_TCP: Protocol
PROTOCOL_UDP: Protocol
PROTOCOL_ANY: Protocol
EVENT_KIND_UNSPECIFIED: EventKind
EVENT_KIND_LOG: EventKind
EVENT_KIND_BACKEND: EventKind
EVENT_KIND_FRONTEND: EventKind
EVENT_KIND_VPP: EventKind
EVENT_KIND_SYNC: EventKind

class ListFrontendsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListFrontendsResponse(_message.Message):
    __slots__ = ("frontends",)
    FRONTENDS_FIELD_NUMBER: _ClassVar[int]
    frontends: _containers.RepeatedCompositeFieldContainer[Frontend]
    def __init__(self, frontends: _Optional[_Iterable[_Union[Frontend, _Mapping]]] = ...) -> None: ...

class GetFrontendRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class Frontend(_message.Message):
    __slots__ = ("name", "address", "prefix_length", "protocol", "port", "description", "src_ip_sticky", "flush_on_down", "state", "pools", "active_pool")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PREFIX_LENGTH_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SRC_IP_STICKY_FIELD_NUMBER: _ClassVar[int]
    FLUSH_ON_DOWN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    POOLS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_POOL_FIELD_NUMBER: _ClassVar[int]
    name: str
    address: str
    prefix_length: int
    protocol: Protocol
    port: int
    description: str
    src_ip_sticky: bool
    flush_on_down: bool
    state: FrontendState
    pools: _containers.RepeatedCompositeFieldContainer[Pool]
    active_pool: int
    def __init__(self, name: _Optional[str] = ..., address: _Optional[str] = ..., prefix_length: _Optional[int] = ..., protocol: _Optional[_Union[Protocol, str]] = ..., port: _Optional[int] = ..., description: _Optional[str] = ..., src_ip_sticky: _Optional[bool] = ..., flush_on_down: _Optional[bool] = ..., state: _Optional[_Union[FrontendState, str]] = ..., pools: _Optional[_Iterable[_Union[Pool, _Mapping]]] = ..., active_pool: _Optional[int] = ...) -> None: ...

class Pool(_message.Message):
    __slots__ = ("name", "active", "backends")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    BACKENDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    active: bool
    backends: _containers.RepeatedCompositeFieldContainer[PoolBackend]
    def __init__(self, name: _Optional[str] = ..., active: _Optional[bool] = ..., backends: _Optional[_Iterable[_Union[PoolBackend, _Mapping]]] = ...) -> None: ...

class PoolBackend(_message.Message):
    __slots__ = ("name", "address", "state", "weight", "weight_override", "effective_weight", "flush", "vpp_buckets")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_OVERRIDE_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    FLUSH_FIELD_NUMBER: _ClassVar[int]
    VPP_BUCKETS_FIELD_NUMBER: _ClassVar[int]
    name: str
    address: str
    state: BackendState
    weight: int
    weight_override: int
    effective_weight: int
    flush: bool
    vpp_buckets: int
    def __init__(self, name: _Optional[str] = ..., address: _Optional[str] = ..., state: _Optional[_Union[BackendState, str]] = ..., weight: _Optional[int] = ..., weight_override: _Optional[int] = ..., effective_weight: _Optional[int] = ..., flush: _Optional[bool] = ..., vpp_buckets: _Optional[int] = ...) -> None: ...

class ListBackendsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListBackendsResponse(_message.Message):
    __slots__ = ("backends",)
    BACKENDS_FIELD_NUMBER: _ClassVar[int]
    backends: _containers.RepeatedCompositeFieldContainer[Backend]
    def __init__(self, backends: _Optional[_Iterable[_Union[Backend, _Mapping]]] = ...) -> None: ...

class GetBackendRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class Backend(_message.Message):
    __slots__ = ("name", "address", "healthcheck", "state", "enabled", "paused", "counter", "rise", "fall", "last_probe", "since", "transitions", "frontends")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HEALTHCHECK_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    COUNTER_FIELD_NUMBER: _ClassVar[int]
    RISE_FIELD_NUMBER: _ClassVar[int]
    FALL_FIELD_NUMBER: _ClassVar[int]
    LAST_PROBE_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    TRANSITIONS_FIELD_NUMBER: _ClassVar[int]
    FRONTENDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    address: str
    healthcheck: str
    state: BackendState
    enabled: bool
    paused: bool
    counter: int
    rise: int
    fall: int
    last_probe: ProbeResult
    since: _timestamp_pb2.Timestamp
    transitions: _containers.RepeatedCompositeFieldContainer[Transition]
    frontends: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., address: _Optional[str] = ..., healthcheck: _Optional[str] = ..., state: _Optional[_Union[BackendState, str]] = ..., enabled: _Optional[bool] = ..., paused: _Optional[bool] = ..., counter: _Optional[int] = ..., rise: _Optional[int] = ..., fall: _Optional[int] = ..., last_probe: _Optional[_Union[ProbeResult, _Mapping]] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., transitions: _Optional[_Iterable[_Union[Transition, _Mapping]]] = ..., frontends: _Optional[_Iterable[str]] = ...) -> None: ...

class ProbeResult(_message.Message):
    __slots__ = ("ok", "code", "detail", "latency", "at")
    OK_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    code: str
    detail: str
    latency: _duration_pb2.Duration
    at: _timestamp_pb2.Timestamp
    def __init__(self, ok: _Optional[bool] = ..., code: _Optional[str] = ..., detail: _Optional[str] = ..., latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Transition(_message.Message):
    __slots__ = ("to", "at", "reason")
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    to: BackendState
    at: _timestamp_pb2.Timestamp
    reason: str
    def __init__(self, to: _Optional[_Union[BackendState, str]] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., **kwargs) -> None: ...

class BackendActionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class BackendActionResponse(_message.Message):
    __slots__ = ("state", "backend")
    STATE_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    state: BackendState
    backend: Backend
    def __init__(self, state: _Optional[_Union[BackendState, str]] = ..., backend: _Optional[_Union[Backend, _Mapping]] = ...) -> None: ...

class SetFrontendPoolBackendWeightRequest(_message.Message):
    __slots__ = ("frontend", "pool", "backend", "weight", "flush")
    FRONTEND_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    FLUSH_FIELD_NUMBER: _ClassVar[int]
    frontend: str
    pool: str
    backend: str
    weight: int
    flush: bool
    def __init__(self, frontend: _Optional[str] = ..., pool: _Optional[str] = ..., backend: _Optional[str] = ..., weight: _Optional[int] = ..., flush: _Optional[bool] = ...) -> None: ...

class SetFrontendPoolBackendWeightResponse(_message.Message):
    __slots__ = ("frontend",)
    FRONTEND_FIELD_NUMBER: _ClassVar[int]
    frontend: Frontend
    def __init__(self, frontend: _Optional[_Union[Frontend, _Mapping]] = ...) -> None: ...

class ListHealthChecksRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListHealthChecksResponse(_message.Message):
    __slots__ = ("healthchecks",)
    HEALTHCHECKS_FIELD_NUMBER: _ClassVar[int]
    healthchecks: _containers.RepeatedCompositeFieldContainer[HealthCheck]
    def __init__(self, healthchecks: _Optional[_Iterable[_Union[HealthCheck, _Mapping]]] = ...) -> None: ...

class GetHealthCheckRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class StatusRange(_message.Message):
    __slots__ = ("low", "high")
    LOW_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    low: int
    high: int
    def __init__(self, low: _Optional[int] = ..., high: _Optional[int] = ...) -> None: ...

class HealthCheck(_message.Message):
    __slots__ = ("name", "type", "port", "effective_port", "interval", "fast_interval", "down_interval", "timeout", "rise", "fall", "source_ipv4", "source_ipv6", "slow_start", "method", "path", "host", "expect_status", "expect_body", "sni", "verify", "send", "expect", "backends")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_PORT_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    FAST_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    DOWN_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    RISE_FIELD_NUMBER: _ClassVar[int]
    FALL_FIELD_NUMBER: _ClassVar[int]
    SOURCE_IPV4_FIELD_NUMBER: _ClassVar[int]
    SOURCE_IPV6_FIELD_NUMBER: _ClassVar[int]
    SLOW_START_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    EXPECT_STATUS_FIELD_NUMBER: _ClassVar[int]
    EXPECT_BODY_FIELD_NUMBER: _ClassVar[int]
    SNI_FIELD_NUMBER: _ClassVar[int]
    VERIFY_FIELD_NUMBER: _ClassVar[int]
    SEND_FIELD_NUMBER: _ClassVar[int]
    EXPECT_FIELD_NUMBER: _ClassVar[int]
    BACKENDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    port: int
    effective_port: int
    interval: _duration_pb2.Duration
    fast_interval: _duration_pb2.Duration
    down_interval: _duration_pb2.Duration
    timeout: _duration_pb2.Duration
    rise: int
    fall: int
    source_ipv4: str
    source_ipv6: str
    slow_start: _duration_pb2.Duration
    method: str
    path: str
    host: str
    expect_status: _containers.RepeatedCompositeFieldContainer[StatusRange]
    expect_body: str
    sni: str
    verify: bool
    send: str
    expect: str
    backends: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., port: _Optional[int] = ..., effective_port: _Optional[int] = ..., interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., fast_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., down_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., rise: _Optional[int] = ..., fall: _Optional[int] = ..., source_ipv4: _Optional[str] = ..., source_ipv6: _Optional[str] = ..., slow_start: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., method: _Optional[str] = ..., path: _Optional[str] = ..., host: _Optional[str] = ..., expect_status: _Optional[_Iterable[_Union[StatusRange, _Mapping]]] = ..., expect_body: _Optional[str] = ..., sni: _Optional[str] = ..., verify: _Optional[bool] = ..., send: _Optional[str] = ..., expect: _Optional[str] = ..., backends: _Optional[_Iterable[str]] = ...) -> None: ...

class WatchEventsRequest(_message.Message):
    __slots__ = ("kinds", "log_level", "backends", "frontends", "replay")
    KINDS_FIELD_NUMBER: _ClassVar[int]
    LOG_LEVEL_FIELD_NUMBER: _ClassVar[int]
    BACKENDS_FIELD_NUMBER: _ClassVar[int]
    FRONTENDS_FIELD_NUMBER: _ClassVar[int]
    REPLAY_FIELD_NUMBER: _ClassVar[int]
    kinds: _containers.RepeatedScalarFieldContainer[EventKind]
    log_level: str
    backends: _containers.RepeatedScalarFieldContainer[str]
    frontends: _containers.RepeatedScalarFieldContainer[str]
    replay: bool
    def __init__(self, kinds: _Optional[_Iterable[_Union[EventKind, str]]] = ..., log_level: _Optional[str] = ..., backends: _Optional[_Iterable[str]] = ..., frontends: _Optional[_Iterable[str]] = ..., replay: _Optional[bool] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("at", "deployment", "log", "backend", "frontend", "vpp", "sync", "gap")
    AT_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    FRONTEND_FIELD_NUMBER: _ClassVar[int]
    VPP_FIELD_NUMBER: _ClassVar[int]
    SYNC_FIELD_NUMBER: _ClassVar[int]
    GAP_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    deployment: str
    log: LogEvent
    backend: BackendEvent
    frontend: FrontendEvent
    vpp: VPPEvent
    sync: SyncEvent
    gap: GapEvent
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deployment: _Optional[str] = ..., log: _Optional[_Union[LogEvent, _Mapping]] = ..., backend: _Optional[_Union[BackendEvent, _Mapping]] = ..., frontend: _Optional[_Union[FrontendEvent, _Mapping]] = ..., vpp: _Optional[_Union[VPPEvent, _Mapping]] = ..., sync: _Optional[_Union[SyncEvent, _Mapping]] = ..., gap: _Optional[_Union[GapEvent, _Mapping]] = ...) -> None: ...

class GapEvent(_message.Message):
    __slots__ = ("origin", "missed")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    MISSED_FIELD_NUMBER: _ClassVar[int]
    origin: str
    missed: int
    def __init__(self, origin: _Optional[str] = ..., missed: _Optional[int] = ...) -> None: ...

class LogEvent(_message.Message):
    __slots__ = ("level", "message", "fields")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    level: str
    message: str
    fields: _containers.ScalarMap[str, str]
    def __init__(self, level: _Optional[str] = ..., message: _Optional[str] = ..., fields: _Optional[_Mapping[str, str]] = ...) -> None: ...

class BackendEvent(_message.Message):
    __slots__ = ("backend", "to", "reason")
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    backend: str
    to: BackendState
    reason: str
    def __init__(self, backend: _Optional[str] = ..., to: _Optional[_Union[BackendState, str]] = ..., reason: _Optional[str] = ..., **kwargs) -> None: ...

class FrontendEvent(_message.Message):
    __slots__ = ("frontend", "to", "replay")
    FRONTEND_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    REPLAY_FIELD_NUMBER: _ClassVar[int]
    frontend: str
    to: FrontendState
    replay: bool
    def __init__(self, frontend: _Optional[str] = ..., to: _Optional[_Union[FrontendState, str]] = ..., replay: _Optional[bool] = ..., **kwargs) -> None: ...

class VPPEvent(_message.Message):
    __slots__ = ("what", "message", "fields")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    WHAT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    what: str
    message: str
    fields: _containers.ScalarMap[str, str]
    def __init__(self, what: _Optional[str] = ..., message: _Optional[str] = ..., fields: _Optional[_Mapping[str, str]] = ...) -> None: ...

class SyncEvent(_message.Message):
    __slots__ = ("frontend", "operations", "ok", "message", "fields")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    FRONTEND_FIELD_NUMBER: _ClassVar[int]
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    frontend: str
    operations: int
    ok: bool
    message: str
    fields: _containers.ScalarMap[str, str]
    def __init__(self, frontend: _Optional[str] = ..., operations: _Optional[int] = ..., ok: _Optional[bool] = ..., message: _Optional[str] = ..., fields: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CheckConfigRequest(_message.Message):
    __slots__ = ("text", "path")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    text: str
    path: str
    def __init__(self, text: _Optional[str] = ..., path: _Optional[str] = ...) -> None: ...

class ConfigIssue(_message.Message):
    __slots__ = ("path", "line", "message")
    PATH_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    path: str
    line: int
    message: str
    def __init__(self, path: _Optional[str] = ..., line: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class CheckConfigResponse(_message.Message):
    __slots__ = ("valid", "exit_code", "issues", "source")
    VALID_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    ISSUES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    exit_code: int
    issues: _containers.RepeatedCompositeFieldContainer[ConfigIssue]
    source: str
    def __init__(self, valid: _Optional[bool] = ..., exit_code: _Optional[int] = ..., issues: _Optional[_Iterable[_Union[ConfigIssue, _Mapping]]] = ..., source: _Optional[str] = ...) -> None: ...

class ReloadConfigRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ConfigChange(_message.Message):
    __slots__ = ("change", "kind", "name")
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    change: str
    kind: str
    name: str
    def __init__(self, change: _Optional[str] = ..., kind: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class ReloadConfigResponse(_message.Message):
    __slots__ = ("changed", "summary", "changes", "source")
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    changed: bool
    summary: str
    changes: _containers.RepeatedCompositeFieldContainer[ConfigChange]
    source: str
    def __init__(self, changed: _Optional[bool] = ..., summary: _Optional[str] = ..., changes: _Optional[_Iterable[_Union[ConfigChange, _Mapping]]] = ..., source: _Optional[str] = ...) -> None: ...

class GetVPPInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VPPInfo(_message.Message):
    __slots__ = ("connected", "version", "build_date", "build_directory", "pid", "boot_time", "connect_time", "api_socket", "stats_socket")
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    BUILD_DATE_FIELD_NUMBER: _ClassVar[int]
    BUILD_DIRECTORY_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    BOOT_TIME_FIELD_NUMBER: _ClassVar[int]
    CONNECT_TIME_FIELD_NUMBER: _ClassVar[int]
    API_SOCKET_FIELD_NUMBER: _ClassVar[int]
    STATS_SOCKET_FIELD_NUMBER: _ClassVar[int]
    connected: bool
    version: str
    build_date: str
    build_directory: str
    pid: int
    boot_time: _timestamp_pb2.Timestamp
    connect_time: _timestamp_pb2.Timestamp
    api_socket: str
    stats_socket: str
    def __init__(self, connected: _Optional[bool] = ..., version: _Optional[str] = ..., build_date: _Optional[str] = ..., build_directory: _Optional[str] = ..., pid: _Optional[int] = ..., boot_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., connect_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., api_socket: _Optional[str] = ..., stats_socket: _Optional[str] = ...) -> None: ...

class GetVPPLBStateRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VPPLBConf(_message.Message):
    __slots__ = ("ip4_src_address", "ip6_src_address", "sticky_buckets_per_core", "flow_timeout")
    IP4_SRC_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    IP6_SRC_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    STICKY_BUCKETS_PER_CORE_FIELD_NUMBER: _ClassVar[int]
    FLOW_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    ip4_src_address: str
    ip6_src_address: str
    sticky_buckets_per_core: int
    flow_timeout: int
    def __init__(self, ip4_src_address: _Optional[str] = ..., ip6_src_address: _Optional[str] = ..., sticky_buckets_per_core: _Optional[int] = ..., flow_timeout: _Optional[int] = ...) -> None: ...

class VPPAs(_message.Message):
    __slots__ = ("address", "weight", "flags", "num_buckets", "backend")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    NUM_BUCKETS_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    address: str
    weight: int
    flags: int
    num_buckets: int
    backend: str
    def __init__(self, address: _Optional[str] = ..., weight: _Optional[int] = ..., flags: _Optional[int] = ..., num_buckets: _Optional[int] = ..., backend: _Optional[str] = ...) -> None: ...

class VPPVip(_message.Message):
    __slots__ = ("prefix", "protocol", "port", "encap", "src_ip_sticky", "flow_table_length", "frontend", "ases")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    ENCAP_FIELD_NUMBER: _ClassVar[int]
    SRC_IP_STICKY_FIELD_NUMBER: _ClassVar[int]
    FLOW_TABLE_LENGTH_FIELD_NUMBER: _ClassVar[int]
    FRONTEND_FIELD_NUMBER: _ClassVar[int]
    ASES_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    protocol: int
    port: int
    encap: str
    src_ip_sticky: bool
    flow_table_length: int
    frontend: str
    ases: _containers.RepeatedCompositeFieldContainer[VPPAs]
    def __init__(self, prefix: _Optional[str] = ..., protocol: _Optional[int] = ..., port: _Optional[int] = ..., encap: _Optional[str] = ..., src_ip_sticky: _Optional[bool] = ..., flow_table_length: _Optional[int] = ..., frontend: _Optional[str] = ..., ases: _Optional[_Iterable[_Union[VPPAs, _Mapping]]] = ...) -> None: ...

class VPPLBState(_message.Message):
    __slots__ = ("conf", "vips")
    CONF_FIELD_NUMBER: _ClassVar[int]
    VIPS_FIELD_NUMBER: _ClassVar[int]
    conf: VPPLBConf
    vips: _containers.RepeatedCompositeFieldContainer[VPPVip]
    def __init__(self, conf: _Optional[_Union[VPPLBConf, _Mapping]] = ..., vips: _Optional[_Iterable[_Union[VPPVip, _Mapping]]] = ...) -> None: ...

class SyncVPPLBStateRequest(_message.Message):
    __slots__ = ("frontend",)
    FRONTEND_FIELD_NUMBER: _ClassVar[int]
    frontend: str
    def __init__(self, frontend: _Optional[str] = ...) -> None: ...

class SyncVPPLBStateResponse(_message.Message):
    __slots__ = ("frontends", "operations", "summary")
    FRONTENDS_FIELD_NUMBER: _ClassVar[int]
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    frontends: _containers.RepeatedScalarFieldContainer[str]
    operations: int
    summary: str
    def __init__(self, frontends: _Optional[_Iterable[str]] = ..., operations: _Optional[int] = ..., summary: _Optional[str] = ...) -> None: ...

class GetVPPLBCountersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VPPVipCounters(_message.Message):
    __slots__ = ("prefix", "protocol", "port", "frontend", "next_packet", "first_packet", "untracked_packet", "no_server")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    FRONTEND_FIELD_NUMBER: _ClassVar[int]
    NEXT_PACKET_FIELD_NUMBER: _ClassVar[int]
    FIRST_PACKET_FIELD_NUMBER: _ClassVar[int]
    UNTRACKED_PACKET_FIELD_NUMBER: _ClassVar[int]
    NO_SERVER_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    protocol: int
    port: int
    frontend: str
    next_packet: int
    first_packet: int
    untracked_packet: int
    no_server: int
    def __init__(self, prefix: _Optional[str] = ..., protocol: _Optional[int] = ..., port: _Optional[int] = ..., frontend: _Optional[str] = ..., next_packet: _Optional[int] = ..., first_packet: _Optional[int] = ..., untracked_packet: _Optional[int] = ..., no_server: _Optional[int] = ...) -> None: ...

class VPPLBCounters(_message.Message):
    __slots__ = ("at", "vips")
    AT_FIELD_NUMBER: _ClassVar[int]
    VIPS_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    vips: _containers.RepeatedCompositeFieldContainer[VPPVipCounters]
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., vips: _Optional[_Iterable[_Union[VPPVipCounters, _Mapping]]] = ...) -> None: ...

class GetVersionRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VersionInfo(_message.Message):
    __slots__ = ("program", "version", "commit", "deployment", "runtime")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    program: str
    version: str
    commit: str
    deployment: str
    runtime: bool
    def __init__(self, program: _Optional[str] = ..., version: _Optional[str] = ..., commit: _Optional[str] = ..., deployment: _Optional[str] = ..., runtime: _Optional[bool] = ...) -> None: ...
