"""Random and hostile YAML through every door that parses config: a clean verdict each time.

Doors: the parser itself, a reload of the owning file (what SIGHUP,
gRPC ReloadConfig and admin's "Reload config from its file" call), `maglevconfig import`, and
admin's reload action over HTTP (gRPC CheckConfig: tests/grpcapi/test_hostile_yaml_grpc.py). Whatever the text, a door answers with the config's problems
(bounded in number and length) or accepts it; it never raises anything else, never takes long,
and a refused text changes nothing in the database.
"""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from health import services
from health.config import ConfigError, parse_config
from health.config.errors import MAX_ISSUES, MAX_TEXT
from health.models import Deployment
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.django_db(transaction=True)
FRAGMENTS = [
    "maglev:",
    "\n",
    "  ",
    "    ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ": ",
    ",",
    "&a ",
    "*a",
    "<<: *a",
    "!!python/object/apply:os.system ['id']",
    "!!binary aGk=",
    "!custom",
    "%YAML 1.1\n",
    "---\n",
    "...\n",
    "'",
    '"',
    "\\",
    "\t",
    "\x00",
    "\ufeff",
    "\x1b[2J",
    "? ",
    "| ",
    "> ",
    "# c",
    "healthchecks:",
    "backends:",
    "frontends:",
    "pools:",
    "web:",
    "type: http",
    "port: 80",
    "address: 10.0.0.1",
    "address: nope",
    "weight: 1e400",
    "port: 99999999999999999999999",
    "interval: 2 parsecs",
    "expect-body: '(a+)+$'",
    "netns: ../../proc/1/ns/net",
    'name: "x\\u0000y"',
    "~",
    "null",
    "yes",
    "0x1F",
    "0o17",
    ".inf",
    "2026-12-03",
]
hostile = st.one_of(
    st.lists(st.sampled_from(FRAGMENTS), max_size=60).map("".join),
    st.text(max_size=300),
    st.builds(
        lambda n, o, c: "maglev: " + o * n + c * n,
        st.integers(20, 20_000),
        st.sampled_from(["[", "{a: "]),
        st.sampled_from(["]", "}"]),
    ),
    st.builds(
        lambda n: "a: &a [x]\n" + "".join(f"a{i}: &a{i} [*a, *a, *a]\n" for i in range(n)),
        st.integers(1, 40),
    ),
)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DOOR = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _verdict(call) -> ConfigError | None:
    """Run `call`; it may raise ConfigError (returned, its issues checked), nothing else."""
    t = time.monotonic()
    error = None
    try:
        call()
    except ConfigError as exc:
        error = exc
    assert time.monotonic() - t < 5
    if error is not None:
        assert 1 <= len(error.issues) <= MAX_ISSUES + 1
        assert all(len(i.message) <= MAX_TEXT for i in error.issues)
        assert all(len(i.path) <= MAX_TEXT for i in error.issues)
    return error


@FAST
@given(hostile)
def test_the_parser_gives_a_verdict(text):
    _verdict(lambda: parse_config(text))


@pytest.fixture
def owned(tmp_path):
    path = tmp_path / "maglev.yaml"
    path.write_bytes((EXAMPLES / "maglev.yaml").read_bytes())
    services.import_config_text(
        path.read_bytes(), "default", services.SYSTEM, config_file=str(path)
    )
    return path


@DOOR
@given(text=hostile)
def test_reload_and_import_give_a_verdict_and_a_refusal_changes_nothing(owned, text):
    before = services.export_config("default")
    owned.write_text(text, encoding="utf-8", errors="surrogatepass")
    if _verdict(lambda: services.reload_config("default", services.SYSTEM)) is not None:
        assert services.export_config("default") == before
    refusal, code = "", 0
    try:
        call_command("maglevconfig", "import", str(owned), verbosity=0)
    except CommandError as exc:
        refusal = str(exc)
    except SystemExit as exc:  # the command's exit status names the kind of problem
        code = exc.code
    assert len(refusal) < (MAX_ISSUES + 2) * (MAX_TEXT + 20)
    assert code in (0, 1, 2)
    owned.write_bytes((EXAMPLES / "maglev.yaml").read_bytes())
    services.reload_config("default", services.SYSTEM)


@DOOR
@given(text=hostile)
def test_admin_reload_gives_a_verdict(client, owned, text):
    user = get_user_model().objects.filter(username="ops").first() or (
        get_user_model().objects.create_superuser("ops", password="s3cret-pass-for-tests")
    )
    client.force_login(user)
    before = services.export_config("default")
    owned.write_text(text, encoding="utf-8", errors="surrogatepass")
    dep = Deployment.objects.get(name="default")
    r = client.post(
        "/admin/health/deployment/",
        {"action": "reload_from_file", "_selected_action": [dep.pk]},
        follow=True,
    )
    assert r.status_code == 200
    body = r.content.decode()
    assert ("reloaded" in body) or ("nothing changed" in body)
    if "nothing changed" in body:
        assert services.export_config("default") == before
    owned.write_bytes((EXAMPLES / "maglev.yaml").read_bytes())
    services.reload_config("default", services.SYSTEM)
