"""MAGLEV_* variables: typed values and errors that name the variable."""

from __future__ import annotations

import pytest

from maglev_site.env import EnvError, env_bool, env_choice

CHOICES = {"auto": None, "true": True, "false": False}


def test_a_choice_maps_words_and_refuses_others(monkeypatch):
    monkeypatch.delenv("MAGLEV_X", raising=False)
    assert env_choice("MAGLEV_X", CHOICES, "auto") is None
    monkeypatch.setenv("MAGLEV_X", " False ")
    assert env_choice("MAGLEV_X", CHOICES, "auto") is False
    monkeypatch.setenv("MAGLEV_X", "sometimes")
    with pytest.raises(EnvError, match=r"MAGLEV_X='sometimes': use one of auto, true, false"):
        env_choice("MAGLEV_X", CHOICES, "auto")


def test_a_switch_refuses_what_is_not_a_yes_or_no(monkeypatch):
    monkeypatch.setenv("MAGLEV_X", "on")
    assert env_bool("MAGLEV_X", False) is True
    monkeypatch.setenv("MAGLEV_X", "2")
    with pytest.raises(EnvError, match="use true or false"):
        env_bool("MAGLEV_X", False)
