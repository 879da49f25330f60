"""The help texts say what the commands do: `fakes` prints a table unless given --json (the command
list said "as JSON"), and `status` needs an admin key (its help said "a gateway API key", and a
client key gets 403)."""

from __future__ import annotations

import pytest

from sandbox import cli, status_cli


def _help(capsys: pytest.CaptureFixture[str], main: object, argv: list[str]) -> str:
    with pytest.raises(SystemExit):
        main(argv)  # type: ignore[operator]
    return capsys.readouterr().out


def test_the_command_list_says_fakes_prints_json_only_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("fakes"))
    assert "--json" in line, line


def test_status_help_asks_for_an_admin_key(capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(capsys, status_cli.main, ["--help"])
    assert "admin key" in text, text



def test_status_talks_to_the_gateway_and_key_the_environment_names(monkeypatch, capsys) -> None:
    """`keys` and `usage` take their gateway and admin key from LLM_GATEWAY_URL and
    LLM_GATEWAY_ADMIN_KEY; `status` ignored both and asked the local dev gateway with the dev key."""
    import httpx

    seen: list[tuple[str, str]] = []

    def get(url: str, headers: dict[str, str], **_: object) -> httpx.Response:
        seen.append((url, headers["Authorization"]))
        return httpx.Response(200, json={"providers": []})

    monkeypatch.setattr(httpx, "get", get)
    monkeypatch.setenv("LLM_GATEWAY_URL", "https://gw.example.com/prod")
    monkeypatch.setenv("LLM_GATEWAY_ADMIN_KEY", "ops-key-" + "o" * 32)
    assert status_cli.main(["--json"]) == 0
    assert seen == [("https://gw.example.com/prod/v1/status", "Bearer ops-key-" + "o" * 32)]
