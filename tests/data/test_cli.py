"""Every `scratchdet data` command answers --help quickly and without heavy imports."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from scratchdet.cli import app

runner = CliRunner()
COMMANDS = ("fetch-sample", "validate", "convert", "stats", "split")


@pytest.mark.parametrize("command", COMMANDS)
def test_help(command: str) -> None:
    result = runner.invoke(app, ["data", command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output and "--quiet" in result.output


def test_group_lists_all_commands() -> None:
    result = runner.invoke(app, ["data", "--help"])
    assert result.exit_code == 0
    assert all(c in result.output for c in COMMANDS)


def test_help_does_not_import_matplotlib_or_pil() -> None:
    code = (
        "import sys; from scratchdet.commands import data; "
        "print(sorted(m for m in ('matplotlib', 'PIL', 'tqdm') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
