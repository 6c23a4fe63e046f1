"""The console script leaves with main's exit code and flushed output."""
from __future__ import annotations

import pytest

from mistral_db_flows import cli
from mistral_db_flows import exceptions


class Exited(Exception):
    def __init__(self, code):
        super().__init__(code)
        self.code = code


@pytest.fixture
def exits(monkeypatch):
    def fake_exit(code):
        raise Exited(code)

    monkeypatch.setattr(cli.os, "_exit", fake_exit)


@pytest.mark.parametrize("returned,code", [(0, 0), (3, 3), (None, 0)])
def test_main_s_code_is_the_exit_code(exits, monkeypatch, returned, code):
    monkeypatch.setattr(cli, "main", lambda: returned)
    with pytest.raises(Exited) as exited:
        cli.console_main()
    assert exited.value.code == code


def test_a_text_system_exit_is_printed_and_fails(exits, monkeypatch, capsys):
    def bails():
        raise SystemExit("no such thing")

    monkeypatch.setattr(cli, "main", bails)
    with pytest.raises(Exited) as exited:
        cli.console_main()
    assert exited.value.code == exceptions.ExitCode.ERROR
    assert "no such thing" in capsys.readouterr().err


def test_output_is_flushed_before_leaving(exits, monkeypatch):
    flushed = []

    class Stream:
        def write(self, text):
            return len(text)

        def flush(self):
            flushed.append(self)

    out, err = Stream(), Stream()
    monkeypatch.setattr(cli.sys, "stdout", out)
    monkeypatch.setattr(cli.sys, "stderr", err)
    monkeypatch.setattr(cli, "main", lambda: 0)
    with pytest.raises(Exited):
        cli.console_main()
    assert out in flushed and err in flushed
