"""The `triskel` command's own surface: help, flags, `--version`."""

from __future__ import annotations

from importlib.metadata import version

import pytest
import typer
from typer.core import TyperGroup, TyperOption
from typer.testing import CliRunner

from triskel.cli.main import app

runner = CliRunner()


def _group() -> TyperGroup:
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    return group


COMMAND_NAMES = list(_group().commands)


def _help(*args: str) -> str:
    result = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def _bool_options() -> list[tuple[str, TyperOption]]:
    options = []
    for name, command in _group().commands.items():
        for param in command.params:
            if isinstance(param, TyperOption) and param.type_descriptor.annotation is bool:
                options.append((name, param))
    assert options, "no boolean option found: the test below checks nothing"
    return options


def test_the_app_has_every_command_it_should() -> None:
    # Guards the tests below: they iterate the registered commands.
    assert set(COMMAND_NAMES) >= {"up", "worker", "router", "crds", "operator", "simulate"}


@pytest.mark.parametrize("name", COMMAND_NAMES)
def test_help_lists_and_describes_every_command(name: str) -> None:
    help_text = _help()
    # A row of the commands table, and a mention in the description above it, which
    # once named four commands of seven.
    assert f"│ {name} " in help_text, help_text
    assert f"`{name}`" in (_group().help or "")


@pytest.mark.parametrize("args", [[], *[[name] for name in COMMAND_NAMES]])
def test_no_help_shows_a_value_placeholder_for_a_flag(args: list[str]) -> None:
    # `--goodput <bool>` read as if the flag took a value, and `--goodput true` is refused.
    assert "<bool>" not in _help(*args)


@pytest.mark.parametrize(("command", "option"), _bool_options(), ids=lambda value: str(value))
def test_every_boolean_option_is_a_flag_that_takes_no_value(
    command: str, option: TyperOption
) -> None:
    assert option.is_flag, f"{command} {option.opts[0]} takes a value"
    # Each spelling sets the value on its own: `--x` true, `--no-x` false.
    spellings = [(opt, True) for opt in option.opts] + [
        (opt, False) for opt in option.secondary_opts
    ]
    for spelling, expected in spellings:
        context = (
            _group().commands[command].make_context(command, [spelling], resilient_parsing=True)
        )
        assert context.params[option.name or ""] is expected, spelling


def test_a_flag_followed_by_a_value_is_refused() -> None:
    result = runner.invoke(app, ["simulate", "--trace", "missing.jsonl", "--goodput", "true"])
    assert result.exit_code == 2
    assert "true" in result.output


def test_version_prints_the_installed_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output == f"triskel {version('triskel')}\n"
