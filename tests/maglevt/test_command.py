"""`manage.py maglevt` as the real command, in plain mode, against servers on loopback: the JSON
lines, the exit status, the stop conditions, signals, and usage errors."""

from __future__ import annotations

import json
import signal
import subprocess

import pytest
from django.core.management import execute_from_command_line

from tests.grpcapi.conftest import wait_for
from tests.maglevt import servers
from tests.maglevt.conftest import maglevt_command, maglevt_env, parse_lines, write_config

LINE_KEYS = [
    "t",
    "frontend",
    "vip",
    "kind",
    "requests",
    "failures",
    "ok_pct",
    "last_status",
    "latency_ms",
    "errors",
    "backends",
    "drained",
    "final",
]


def test_every_line_has_the_documented_shape_and_the_vips_their_classes(
    loopback, maglevt, tmp_path
):
    www = loopback("127.0.0.81", servers.http(servers.rotate(["web1", "web2", "web3"])))
    silent = loopback("127.0.0.82", servers.silent)
    resets = loopback("127.0.0.83", servers.reset)
    refused_port = servers.free_port("127.0.0.84")
    config = write_config(
        tmp_path / "maglev.yaml",
        {
            "www": ("127.0.0.81", www.port, "tcp"),
            "silent": ("127.0.0.82", silent.port, "tcp"),
            "resets": ("127.0.0.83", resets.port, "tcp"),
            "refused": ("127.0.0.84", refused_port, "tcp"),
        },
    )
    run = maglevt(
        "--config", config, "--header", "X-Backend", "--interval", "50ms",
        "--timeout", "300ms", "--duration", "1.6",
    )  # fmt: skip
    assert run.returncode == 1, run.stderr
    assert run.stderr == ""
    for line in run.lines:
        assert list(line) == LINE_KEYS
        assert list(line["latency_ms"]) == ["p50", "p95", "p99", "max"]
        assert list(line["errors"]) == ["timeout", "refused", "reset", "http", "spike"]
        assert isinstance(line["t"], float)
        assert 0.0 <= line["ok_pct"] <= 100.0
    # One line per VIP per second, then one final line each.
    for name in ("www", "silent", "resets", "refused"):
        assert len(run.interim(name)) == 1
    final = run.final()
    assert set(final) == {"www", "silent", "resets", "refused"}

    ok = final["www"]
    assert ok["vip"] == f"127.0.0.81:{www.port}/tcp"
    assert (ok["kind"], ok["failures"], ok["ok_pct"], ok["last_status"]) == (
        "http",
        0,
        100.0,
        "200",
    )
    assert ok["requests"] >= 20
    assert set(ok["backends"]) == {"web1", "web2", "web3"}
    assert sum(ok["backends"].values()) == ok["requests"]
    assert 0 < ok["latency_ms"]["p50"] <= ok["latency_ms"]["p99"] <= ok["latency_ms"]["max"]
    assert ok["drained"] == []

    timeouts = final["silent"]
    assert timeouts["last_status"] == "timeout"
    assert timeouts["errors"]["timeout"] == timeouts["failures"] >= 3
    assert timeouts["backends"] == {}
    assert final["resets"]["errors"]["reset"] == final["resets"]["failures"] >= 20
    assert final["resets"]["last_status"] == "reset"
    refused = final["refused"]
    assert refused["errors"]["refused"] == refused["requests"] == refused["failures"] >= 20
    assert (refused["ok_pct"], refused["last_status"]) == (0.0, "refused")
    assert refused["latency_ms"] == {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    # Counters only grow from a VIP's interim line to its final one.
    assert run.interim("www")[0]["requests"] <= ok["requests"]


def test_count_stops_after_n_probes_per_vip_and_no_failure_exits_0(loopback, maglevt, tmp_path):
    a = loopback("127.0.0.85", servers.http(servers.rotate(["a1"])))
    b = loopback("127.0.0.86", servers.silent)  # a TCP VIP: connect only
    config = write_config(
        tmp_path / "m.yaml",
        {"a": ("127.0.0.85", a.port, "tcp"), "b": ("127.0.0.86", b.port, "tcp")},
        check="tcp",
    )
    run = maglevt("--config", config, "--count", "7", "--interval", "10ms")
    assert run.returncode == 0, run.stderr
    final = run.final()
    assert [final[n]["requests"] for n in ("a", "b")] == [7, 7]
    assert (final["a"]["kind"], final["b"]["kind"]) == ("tcp", "tcp")  # tcp-checked, port not 80
    assert final["b"]["last_status"] == "connected"
    assert a.requests == b.requests == 0  # connects only
    wait_for(lambda: a.connections == 7, 5, "the server to accept all 7 connections")


def test_a_backend_that_stops_getting_flows_is_shown_drained(loopback, maglevt, tmp_path):
    # web1 and web2 share the first 60 probes (about 1.2 s), then web1 gets every new flow.
    www = loopback("127.0.0.87", servers.http(servers.switching(["web1", "web2"], ["web1"], 60)))
    config = write_config(tmp_path / "m.yaml", {"www": ("127.0.0.87", www.port, "tcp")})
    run = maglevt(
        "--config", config, "--header", "X-Backend", "--interval", "20ms",
        "--drained-after", "600ms", "--count", "130",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    final = run.final()["www"]
    assert final["backends"] == {"web1": 100, "web2": 30}
    assert final["drained"] == ["web2"]
    first = run.interim("www")[0]  # at 1 s: at most 55 probes, web2 still answering
    assert first["backends"]["web2"] > 0
    assert first["drained"] == []


def test_configs_are_merged_filtered_and_an_all_ports_vip_probed_on_port_for_all(
    loopback, maglevt, tmp_path
):
    www = loopback("127.0.0.88", servers.http(servers.rotate(["w"])))
    every_port = loopback("127.0.0.93", servers.http(servers.rotate(["a"])))
    first = write_config(
        tmp_path / "one.yaml",
        {"www": ("127.0.0.88", www.port, "tcp"), "skipme": ("127.0.0.89", 81, "tcp")},
    )
    second = write_config(
        tmp_path / "two.yaml",
        {"www-again": ("127.0.0.88", www.port, "tcp"), "all": ("127.0.0.93", 0, "any")},
    )
    run = maglevt(
        "--config", first, "--config", second, "--filter", "^(www|all)",
        "--port-for-all", every_port.port, "--count", "3", "--interval", "10ms",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    final = run.final()
    assert set(final) == {"www", "all"}  # www-again is the same VIP; skipme filtered out
    assert final["www"]["requests"] == 3
    assert www.requests == 3  # probed once per probe, not once per frontend
    assert final["all"]["vip"] == f"127.0.0.93:{every_port.port}/any"
    assert final["all"]["kind"] == "http"  # its backend is http-checked
    assert final["all"]["last_status"] == "200"


def test_sigterm_stops_cleanly_and_still_prints_the_final_lines(loopback, tmp_path):
    www = loopback("127.0.0.90", servers.http(servers.rotate(["w"])))
    config = write_config(tmp_path / "m.yaml", {"www": ("127.0.0.90", www.port, "tcp")})
    proc = subprocess.Popen(
        maglevt_command("--config", config, "--plain", "--interval", "20ms"),
        env=maglevt_env(tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = json.loads(proc.stdout.readline())
        assert first["final"] is False
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert err == ""
    (final,) = parse_lines(out)
    assert final["final"] is True
    assert final["requests"] >= first["requests"]


def test_plain_is_implied_when_stdout_is_not_a_terminal(loopback, tmp_path):
    www = loopback("127.0.0.91", servers.http(servers.rotate(["w"])))
    config = write_config(tmp_path / "m.yaml", {"www": ("127.0.0.91", www.port, "tcp")})
    proc = subprocess.Popen(
        maglevt_command("--config", config, "--interval", "20ms"),
        env=maglevt_env(tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = json.loads(proc.stdout.readline())
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert line["frontend"] == "www"
    assert parse_lines(out)[-1]["final"] is True
    assert proc.returncode == 0


def test_version_names_the_program(tmp_path):
    done = subprocess.run(
        maglevt_command("--version"), env=maglevt_env(tmp_path), capture_output=True, text=True
    )
    assert done.returncode == 0
    assert done.stdout.startswith("maglevt 0.")
    assert "(commit " in done.stdout


def test_a_usage_error_from_the_real_command_is_one_line_and_exit_2(maglevt):
    run = maglevt("--interval", "soon", "--config", "x.yaml")
    assert run.returncode == 2
    assert run.stdout == ""
    assert len(run.stderr.splitlines()) == 1
    assert run.stderr.startswith("maglevt: argument --interval: 'soon' is not a duration")


def _bad_config(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("maglev:\n  frontends:\n    www: { address: nowhere }\n")
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "nothing to probe: give --config FILE or --server HOST:PORT"),
        (["--config", "{tmp}/absent.yaml"], "cannot read {tmp}/absent.yaml: No such file"),
        (["--config", "{bad}"], "{bad}: line 3: maglev.frontends.www.address"),
        (["--config", "{ok}", "--filter", "^nomatch$"], "no frontend matching --filter to probe"),
        (["--config", "{ok}", "--filter", "("], "argument --filter: '(' is not a regular"),
        (["--config", "{ok}", "--interval", "0"], "argument --interval: '0' must be more than 0"),
        (["--config", "{ok}", "--timeout=-1"], "argument --timeout: '-1' must be more"),
        (["--config", "{ok}", "--count", "0"], "argument --count: '0' must be at least 1"),
        (["--config", "{ok}", "--port-for-all", "70000"], "argument --port-for-all: '70000'"),
        (["--config", "{ok}", "--path", "no-slash"], "argument --path: 'no-slash' is not a path"),
        (["--config", "{ok}", "--header", "X Bad"], "argument --header: 'X Bad' is not a header"),
        (["--config", "{ok}", "--host", "a b"], "argument --host: 'a b' is not a host name"),
        (["--config", "{ok}", "--bogus"], "unrecognized arguments: --bogus"),
        (["--server", "127.0.0.1:{free}"], "reading maglevd at 127.0.0.1:{free}: cannot reach"),
    ],
)
def test_usage_errors_are_one_line_on_stderr_and_exit_2(tmp_path, capsys, args, message):
    ok = write_config(tmp_path / "ok.yaml", {"www": ("127.0.0.92", 80, "tcp")})
    names = {"tmp": tmp_path, "bad": _bad_config(tmp_path), "ok": ok}
    names["free"] = servers.free_port("127.0.0.1")
    argv = ["manage.py", "maglevt", *(a.format(**names) for a in args)]
    with pytest.raises(SystemExit) as exited:
        execute_from_command_line(argv)
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith("maglevt: " + message.format(**names)), err
    assert "Traceback" not in err
