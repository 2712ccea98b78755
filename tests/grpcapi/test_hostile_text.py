"""What maglevc prints and what the daemon logs cannot be steered by a hostile name."""

from __future__ import annotations

import io
import logging

import pytest

from grpcapi.cli.sanitize import clean_message, clean_text
from grpcapi.gen import maglev_pb2 as pb
from maglev_site.logfmt import JsonFormatter, TextFormatter

EVIL = "web1\x1b]0;pwned\x07\x1b[2J\x1b[1A\r\nFAKE line\x9b31m\u202eevil"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("web1", "web1"),
        ("caf\u00e9 \u2603", "caf\u00e9 \u2603"),
        ("a\x1b[31mred\x1b[0m", "ared"),
        ("title\x1b]0;owned\x07x", "titlex"),
        ("tab\there", "tab here"),
        ("bell\x07", "bell"),
        (EVIL, "web1\nFAKE lineevil"),
    ],
)
def test_clean_text_removes_escapes_and_controls(raw, clean):
    assert clean_text(raw) == clean


def test_every_string_of_a_reply_is_cleaned_nested_repeated_and_maps():
    msg = pb.ListBackendsResponse(
        backends=[pb.Backend(name=EVIL, address="10.0.0.1", healthcheck="\x1b[2Jhc")]
    )
    clean_message(msg)
    assert msg.backends[0].name == "web1 FAKE lineevil"
    assert msg.backends[0].healthcheck == "hc"
    event = pb.Event()
    event.log.fields["k\x1b[1m"] = "v\x1b[0m"
    clean_message(event)
    assert dict(event.log.fields) == {"k": "v"}


def _format(formatter: logging.Formatter, **extra) -> str:
    record = logging.LogRecord("maglev.test", logging.INFO, __file__, 1, "msg\nforged", (), None)
    record.__dict__.update(extra)
    return formatter.format(record)


def test_text_log_fields_are_quoted_so_a_name_cannot_forge_a_field_or_a_line():
    line = _format(TextFormatter(), backend='web1 to=up reason="ok"\n2026 INFO fake', to="down")
    assert "\n" not in line
    assert "msg\\nforged" in line
    assert 'backend="web1 to=up reason=\\"ok\\"\\n2026 INFO fake" to=down' in line
    assert _format(TextFormatter(), backend="web1").endswith(" backend=web1")
    long = _format(TextFormatter(), backend="x" * 5000)
    assert len(long) < 1200


def test_json_log_lines_stay_one_line():
    line = _format(JsonFormatter(), backend="a\nb")
    assert "\n" not in line
    assert io.StringIO(line).readline() == line
