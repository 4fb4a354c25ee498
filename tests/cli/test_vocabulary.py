"""One CLI vocabulary: the same flag means the same thing on every command, and every flag says what it does."""

from __future__ import annotations

import argparse

import pytest

from fcnseg.cli.main import full_parser

#: the commands that run a model
RUNS_A_MODEL = ("train", "eval", "predict", "export", "serve", "bench", "demo", "experiment miniature")


def _commands(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[f"{prefix}{name}"] = sub
                found.update(_commands(sub, f"{prefix}{name} "))
    return found


COMMANDS = _commands(full_parser())


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {s: a for a in parser._actions for s in (a.option_strings or [a.dest])}


def test_every_flag_and_argument_has_help() -> None:
    missing = [
        f"{name} {opt}"
        for name, p in COMMANDS.items()
        for opt, a in _options(p).items()
        if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)) and not a.help
    ]
    assert missing == []


@pytest.mark.parametrize("name", RUNS_A_MODEL)
def test_every_command_that_runs_a_model_takes_device(name: str) -> None:
    device = _options(COMMANDS[name])["--device"]
    assert "cuda:N" in device.help and device.type is None  # one helper: checked when the command runs


@pytest.mark.parametrize("name", [n for n, p in COMMANDS.items() if "--checkpoint" in _options(p)])
def test_every_command_with_a_checkpoint_also_takes_a_model_name_and_weights(name: str) -> None:
    assert {"--model", "--weights", "--num-classes", "--preprocessing"} <= set(_options(COMMANDS[name]))


def test_counts_are_named_one_way() -> None:
    """``--num-NOUN`` for a count of things (no ``--n``), ``--max-NOUN`` for a limit."""
    flags = {opt for p in COMMANDS.values() for opt in _options(p) if opt.startswith("--")}
    assert "--n" not in flags and "--workers" not in flags and not [f for f in flags if f.endswith("-count")]
    assert {"--num-classes", "--num-workers", "--num-images", "--max-images"} <= flags


def test_grid_n_means_a_grid_png_of_the_first_n_images_everywhere() -> None:
    grids = {name: _options(p)["--grid"] for name, p in COMMANDS.items() if "--grid" in _options(p)}
    assert set(grids) == {"eval", "predict"}
    assert all(a.metavar == "N" and a.type("3") == 3 and "first N images" in a.help for a in grids.values())
