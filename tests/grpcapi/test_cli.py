"""maglevc one-shot, as scripts run it: subprocesses against a `grpcserver` subprocess."""

from __future__ import annotations

import http.server
import re
import signal
import stat
import threading

import pytest

from tests.grpcapi.conftest import TOKEN, free_port, manage, start_server_process


def maglevc(server, *words: str, token: str | None = None, stdin: str | None = None, **env):
    args = ["maglevc", "--server", server.address, "--color=false", *words]
    if token:
        args[1:1] = ["--token", token]
    return manage({**server.env, **env}, *args, input=stdin)


def test_show_commands_print_aligned_tables(cli_server):
    r = maglevc(cli_server, "show", "frontends")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATE", "VIP", "ACTIVE", "POOL", "UP", "DESCRIPTION"]
    assert lines[2].startswith("www ")
    assert "198.51.100.10 tcp port 80" in lines[2]
    # Columns line up: every row has its VIP where the header has it.
    column = lines[0].index("VIP")
    assert all(line[column - 2 : column] == "  " for line in lines[1:])

    r = maglevc(cli_server, "sh", "ba")  # prefixes
    assert r.returncode == 0
    assert r.stdout.splitlines()[0].split()[:3] == ["NAME", "ADDRESS", "STATE"]
    assert len(r.stdout.splitlines()) == 7

    r = maglevc(cli_server, "show", "frontend", "www")
    assert "frontend www: unknown" in r.stdout
    assert "flush-on-down  yes" in r.stdout
    assert "primary" in r.stdout
    assert "web2" in r.stdout

    r = maglevc(cli_server, "show", "healthcheck", "web")
    assert "expect-status  200,300-302" in r.stdout
    assert maglevc(cli_server, "show", "healthchecks").stdout.count("\n") == 5


def test_show_version_prints_client_and_server(cli_server):
    r = maglevc(cli_server, "show", "version")
    client, server = r.stdout.splitlines()
    assert client.startswith("client  maglevc 0.1.0 (commit ")
    assert server.startswith("server  grpcserver 0.1.0 (commit ")
    assert "deployment 'default'" in server


def test_errors_are_one_line_and_the_exit_status_is_non_zero(cli_server):
    r = maglevc(cli_server, "show", "backend", "nope")
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "error: backend 'nope' does not exist\n")
    r = maglevc(cli_server, "sh", "bogus")
    assert r.returncode == 1
    assert r.stderr.startswith("error: unknown word 'bogus' after 'show'")
    r = maglevc(cli_server, "show", "vpp", "info")
    assert r.returncode == 1
    assert r.stderr.startswith("error: VPP is not reachable from this server")
    assert r.stderr.count("\n") == 1


def test_errors_are_red_when_colour_is_on(cli_server):
    r = manage(
        cli_server.env, "maglevc", "--server", cli_server.address, "--color=true", "sh", "x", "y"
    )
    assert r.stderr.startswith("\x1b[31merror: ")
    r = maglevc(cli_server, "show", "backends")  # --color=false: no escapes
    assert "\x1b[" not in r.stdout


def test_changes_need_the_token(cli_server):
    r = maglevc(cli_server, "set", "backend", "dns3", "pause")
    assert r.returncode == 1
    assert r.stderr == (
        "error: this call needs the server's token (maglevc reads MAGLEV_GRPC_TOKEN or the "
        "token file, see docs/security.md)\n"
    )
    r = maglevc(cli_server, "set", "backend", "dns3", "pause", token="wrong")
    assert r.stderr == "error: the token is wrong\n"
    r = maglevc(cli_server, "set", "backend", "dns3", "pause", token=TOKEN)
    assert (r.returncode, r.stdout) == (0, "backend dns3: paused\n")
    r = maglevc(cli_server, "set", "backend", "dns3", "disable", MAGLEV_GRPC_TOKEN=TOKEN)
    assert r.stdout == "backend dns3: disabled\n"
    r = maglevc(cli_server, "set", "backend", "dns3", "resume", token=TOKEN)
    assert r.returncode == 1
    assert r.stderr == "error: backend 'dns3' is disabled; enable it before you resume it\n"
    r = maglevc(cli_server, "show", "backend", "dns3")
    assert "dns3: disabled" in r.stdout
    assert re.search(
        r"paused +disabled +disable by \S+@127\.0\.0\.1:\d+ \(token operator\)", r.stdout
    )


def test_a_server_makes_its_own_token_and_maglevc_finds_it(tmp_path):
    # No MAGLEV_GRPC_TOKEN anywhere: the safe default is a generated token, not open changes.
    server = start_server_process(tmp_path / "data", env_extra={"MAGLEV_VPP_API_ADDR": ""})
    try:
        token_file = tmp_path / "data" / "grpc-token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        r = maglevc(server, "set", "backend", "dns3", "pause")
        assert (r.returncode, r.stdout) == (0, "backend dns3: paused\n"), r.stderr
        other = {**server.env, "MAGLEV_DATA_DIR": str(tmp_path / "elsewhere")}
        r = manage(other, "maglevc", "--server", server.address, "set", "backend", "dns3", "resume")
        assert r.returncode == 1
        assert "needs the server's token" in r.stderr
    finally:
        server.proc.terminate()
        server.proc.wait(timeout=15)


def test_set_weight_and_its_validation(cli_server):
    words = ["set", "frontend", "dns", "pool", "all", "backend", "dns2", "weight"]
    r = maglevc(cli_server, *words, "101", token=TOKEN)
    assert r.returncode == 1
    assert r.stderr == "error: weight '101' is not a whole number in 0-100\n"
    r = maglevc(cli_server, *words, "25", "flush", token=TOKEN)
    assert r.returncode == 0, r.stderr
    assert r.stdout == (
        "frontend dns pool all backend dns2: weight 25 (effective 0), flows flushed\n"
    )
    assert " 25 " in maglevc(cli_server, "show", "frontend", "dns").stdout


def test_config_check_and_reload(cli_server):
    r = maglevc(cli_server, "config", "check")
    assert r.returncode == 0
    assert r.stdout.endswith("maglev.yaml: configuration is valid\n")
    r = maglevc(cli_server, "config", "reload", token=TOKEN)
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith("maglev.yaml: no changes\n")


def test_watch_events_stops_after_n(cli_server):
    r = maglevc(cli_server, "watch", "events", "num", "2", "frontend")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 2
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d frontend dns is (unknown|down)", lines[0])


def test_commands_from_a_pipe(cli_server):
    r = manage(
        cli_server.env,
        "maglevc",
        "--server",
        cli_server.address,
        input="show version\nbogus\nshow healthchecks\n",
    )
    assert r.returncode == 1
    assert "server  grpcserver" in r.stdout
    assert "NAME" in r.stdout
    assert r.stderr.startswith("error: unknown word 'bogus'")


def test_a_server_that_is_down_is_one_clear_line(cli_server):
    address = f"127.0.0.1:{free_port()}"
    r = manage(cli_server.env, "maglevc", "--server", address, "show", "backends")
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == f"error: cannot reach the maglev server at {address}: connection refused\n"


def test_a_server_that_does_not_speak_grpc_is_one_clear_line(cli_server):
    httpd = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    address = f"127.0.0.1:{httpd.server_address[1]}"
    try:
        r = manage(cli_server.env, "maglevc", "--server", address, "show", "version")
    finally:
        httpd.shutdown()
    assert r.returncode == 1
    assert r.stderr == (f"error: {address} does not speak gRPC (is it the maglev gRPC address?)\n")


def test_tls_with_a_trusted_certificate(cli_server, certificate):
    from grpcapi.auth import Policy, parse_tokens
    from grpcapi.server import ServerThread

    cert, key = certificate
    thread = ServerThread(
        "127.0.0.1:0",
        deployment="default",
        policy=Policy(parse_tokens(TOKEN)),
        tls_cert=str(cert),
        tls_key=str(key),
    )
    port = thread.start()
    try:
        args = ("maglevc", "--server", f"localhost:{port}", "show", "version")
        ok = manage(cli_server.env, args[0], "--tls-ca", str(cert), *args[1:])
        plain = manage(cli_server.env, *args)
    finally:
        thread.stop(grace=0.5)
    assert ok.returncode == 0, ok.stderr
    assert "server  grpcserver" in ok.stdout
    assert plain.returncode == 1
    assert plain.stderr.startswith("error: ")
    assert plain.stderr.count("\n") == 1


def test_programs_print_version_and_commit(cli_server):
    for program in ("grpcserver", "maglevc"):
        r = manage(cli_server.env, program, "--version")
        assert r.returncode == 0
        assert r.stdout.startswith(f"{program} 0.1.0 (commit ")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_grpcserver_stops_cleanly_on_a_signal(tmp_path, sig):
    server = start_server_process(tmp_path / "data")
    server.proc.send_signal(sig)
    assert server.proc.wait(timeout=15) == 0
    log = server.log.read_text()
    assert "stopping" in log
    assert "Traceback" not in log


def test_grpcserver_refuses_a_busy_port(cli_server):
    # With the same token as the running server: a second server must not leave a token file.
    env = {**cli_server.env, "MAGLEV_GRPC_TOKEN": TOKEN}
    r = manage(env, "grpcserver", "--grpc-addr", cli_server.address)
    assert r.returncode == 1
    assert f"cannot listen on {cli_server.address}" in r.stderr


def test_help_names_the_flags(cli_server):
    r = manage(cli_server.env, "help", "maglevc")
    assert "--server" in r.stdout
    assert "MAGLEV_SERVER" in r.stdout
    assert "--color" in r.stdout
