"""The README stays true: every setting and every CLI command is documented."""

from __future__ import annotations

from pathlib import Path

from alertfeat.cli import build_parser
from alertfeat.config import Settings

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_every_setting_is_in_the_config_table():
    for name in Settings.model_fields:
        assert f"| `{name}` | `ALERTFEAT_{name.upper()}" in README, name


def test_every_command_is_in_the_cli_table():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name in commands:
        assert f"`alertfeat {name}" in README, name


def test_quickstart_commands_exist():
    root = Path(__file__).parent.parent
    for script in ("scripts/demo", "scripts/test"):
        assert f"{script} " in README
        assert (root / script).stat().st_mode & 0o111
    assert "scripts/test" in (root / ".ci/run").read_text()
