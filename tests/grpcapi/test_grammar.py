"""The maglevc command tree: prefixes, exact-match priority, ambiguity, options and `?` choices."""

from __future__ import annotations

import pytest

from grpcapi.cli import grammar
from grpcapi.cli.grammar import ParseError, choices, help_lines, parse


@pytest.mark.parametrize(
    ("line", "command", "params"),
    [
        ("show backends", "show-backends", {}),
        ("sh ba", "show-backends", {}),  # only `backends` can end the line here
        ("sh b", "show-backends", {}),
        ("sh ba web1", "show-backend", {"backend": "web1"}),  # only `backend` takes a name
        ("show backend web1", "show-backend", {"backend": "web1"}),
        ("SHOW Frontends", "show-frontends", {}),
        ("sh fr www", "show-frontend", {"frontend": "www"}),
        ("sh hea web", "show-healthcheck", {"healthcheck": "web"}),
        ("sh v", "show-version", {}),  # version, not vpp: only it ends the line
        ("sh vpp l c", "show-vpp-counters", {}),
        ("sync vpp lb state", "sync-vpp", {}),
        ("sy v l s www", "sync-vpp", {"frontend": "www"}),
        ("set backend Web-1.a dis", "set-backend", {"backend": "Web-1.a", "action": "disable"}),
        (
            "set fr www pool primary backend web1 weight 0 flush",
            "set-weight",
            {"frontend": "www", "pool": "primary", "backend": "web1", "weight": "0", "flush": True},
        ),
        ("watch events", "watch", {}),
        (
            "watch events frontend num 5 log level debug",
            "watch",
            {"frontend": True, "num": "5", "log": True, "level": "debug"},
        ),
        ("config check", "config-check", {}),
        ("q", "quit", {}),
    ],
)
def test_lines_parse_to_commands(line, command, params):
    parsed = parse(line)
    assert parsed is not None
    assert (parsed.command, parsed.params) == (command, params)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("s", "ambiguous 's': could be set, show, sync"),
        ("s x", "ambiguous 's': could be set, show, sync"),
        ("show backend", "incomplete command 'show backend'; expected NAME"),
        ("show bogus", "unknown word 'bogus' after 'show'; expected version | frontends"),
        ("show version now", "unexpected 'now' after 'show version': the command ends there"),
        ("set backend web1", "incomplete command 'set backend web1'; expected pause | resume"),
        (
            "set fr www pool p backend b weight 101",
            "weight '101' is not a whole number in 0-100",
        ),
        ("set backend we!rd pause", "'we!rd' is not a valid name"),
        ("watch events num 0", "N '0' is not a whole number in 1 or more"),
        ("watch events num 2 num 3", "unknown word 'num'"),
        ("watch events log level loud", "log level 'loud' is not one of"),
    ],
)
def test_bad_lines_say_what_is_wrong(line, message):
    with pytest.raises(ParseError) as info:
        parse(line)
    assert str(info.value).startswith(message)


def test_an_empty_line_is_nothing():
    assert parse("   ") is None


def test_choices_at_the_cursor():
    found, can_end = choices("sh")
    assert ([n.word for _, n in found], can_end) == (["show"], False)
    found, can_end = choices("show ")
    assert [n.word for _, n in found][:3] == ["version", "frontends", "frontend"]
    found, can_end = choices("sync vpp lb state ")
    assert ([n.word for _, n in found], can_end) == (["FRONTEND"], True)
    found, _ = choices("set frontend www pool primary backend ")
    ((state, node),) = found
    assert (node.source, state.values) == ("pool-backends", {"frontend": "www", "pool": "primary"})
    found, can_end = choices("watch events num 3 ")
    assert ([n.word for _, n in found], can_end) == (["log", "backend", "frontend"], True)


def test_choices_after_a_bad_word_raise():
    with pytest.raises(ParseError):
        choices("show bogus ")


def test_help_lists_every_command_once():
    lines = [line for line, _ in help_lines()]
    assert "set frontend NAME pool POOL backend NAME weight 0-100 flush" in lines
    assert "watch events [num N] [log [level LEVEL]] [backend] [frontend]" in lines
    assert len(lines) == len(set(lines))
    assert all(
        grammar.parse(
            line.split(" [")[0]
            .replace("NAME", "x")
            .replace("POOL", "p")
            .replace("0-100", "5")
            .replace("FRONTEND", "f")
        )
        for line in lines
    )
