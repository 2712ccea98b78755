"""The interactive maglevc shell in a pseudo-terminal: TAB, `?`, prefixes, ambiguity, errors."""

from __future__ import annotations

import re
import sys
import time

import pexpect
import pytest

from tests.conftest import REPO

# prompt_toolkit draws with escape sequences; compare the text a person would see.
ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]|\r")


class Screen:
    """A maglevc shell in a pty, read as plain text."""

    def __init__(self, server, home) -> None:
        env = {**server.env, "HOME": str(home), "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1"}
        self.child = pexpect.spawn(
            sys.executable,
            [str(REPO / "manage.py"), "maglevc", "--server", server.address, "--color=false"],
            env=env,
            encoding="utf-8",
            timeout=20,
            dimensions=(50, 200),
        )
        self.text = ""

    def wait_for(self, needle: str, timeout: float = 20.0) -> str:
        """Read until `needle` shows up in the text after what was already consumed."""
        deadline = time.monotonic() + timeout
        while needle not in self.text:
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} not seen; screen so far:\n{self.text}")
            try:
                self.text += ESCAPES.sub("", self.child.read_nonblocking(65536, timeout=0.2))
            except pexpect.TIMEOUT:
                continue
        seen, _, self.text = self.text.partition(needle)
        return seen

    def settle(self) -> None:
        """Drop what has been drawn so far (after the terminal has gone quiet)."""
        time.sleep(0.3)
        try:
            while True:
                self.child.read_nonblocking(65536, timeout=0.3)
        except pexpect.TIMEOUT:
            pass
        self.text = ""

    def send(self, keys: str) -> None:
        self.child.send(keys)

    def line(self, command: str, until: str) -> str:
        """Run one command; return what it printed up to and including `until`."""
        self.settle()
        self.send(command + "\r")
        return self.wait_for(until) + until


@pytest.fixture
def shell(cli_server, tmp_path):
    screen = Screen(cli_server, tmp_path)
    screen.wait_for("connected to grpcserver")
    screen.wait_for("maglev>")
    yield screen
    if screen.child.isalive():
        screen.child.terminate(force=True)


def test_tab_completes_keywords_and_lists_choices(shell):
    shell.settle()
    shell.send("sh\t")
    shell.wait_for("show")  # the space after it is drawn as a cursor move
    shell.send("ba\t")
    shell.wait_for("backend")  # only the changed part of the line is redrawn
    shell.settle()
    shell.send("\t")  # two words start with "backend": the second TAB lists both
    shell.wait_for("backends")
    shell.send("s\r")
    out = shell.wait_for("web3")
    assert "NAME" in out


def test_tab_completes_live_names_from_the_server(shell):
    shell.settle()
    shell.send("show backend w\t")
    shell.wait_for("web")
    shell.settle()
    shell.send("\t")
    listing = shell.wait_for("web3")
    assert "web1" in listing
    assert "web2" in listing
    shell.send("\x15")  # Ctrl-U: clear the line
    shell.settle()
    shell.send("set frontend www pool \t")
    assert "primary" in shell.wait_for("standby")


def test_question_mark_lists_choices_without_inserting_itself(shell):
    shell.settle()
    shell.send("show ?")
    help_text = shell.wait_for("one healthcheck with all its options")
    assert "backends      every backend with its state" in help_text
    shell.settle()
    shell.send("ver?")
    shell.wait_for("version  client and server versions")
    shell.settle()
    shell.send("\r")  # the line is "show ver": had "?" been inserted, this would be an error
    out = shell.wait_for("server  grpcserver")
    assert "client  maglevc" in out
    assert "error" not in out


def test_question_mark_names_live_values_and_says_when_a_line_can_end(shell):
    shell.settle()
    shell.send("sync vpp lb state ?")
    help_text = shell.wait_for("run the command")
    assert "FRONTEND  only this frontend: dns, www, www-tls" in help_text
    assert "<cr>" in help_text


def test_prefixes_ambiguity_and_errors(shell):
    out = shell.line("sh ba", "web3")
    assert re.search(r"NAME +ADDRESS +STATE", out)
    shell.line("s", "error: ambiguous 's': could be set, show, sync")
    shell.line("show backend nope", "error: backend 'nope' does not exist")
    out = shell.line("set backend web1 pause", "error: this call needs the server's token")
    assert "Traceback" not in out


def test_quit_leaves_and_keeps_history(shell, tmp_path):
    shell.line("show version", "server  grpcserver")
    shell.send("quit\r")
    shell.child.expect(pexpect.EOF)
    shell.child.close()
    assert shell.child.exitstatus == 0
    history = (tmp_path / ".maglevc_history").read_text()
    assert "+show version" in history
    assert "+quit" in history
