"""One CLI grammar across the commands: help texts, flag names, defaults and exit codes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from scratchdet.cli import app

runner = CliRunner()
MARKUP = re.compile(r"\[[a-zA-Z#/@]")  # what rich's markup parser takes for a tag


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))
    else:
        yield " ".join(path), command


COMMANDS = dict(_commands(typer.main.get_command(app)))
MODEL_COMMANDS = ("predict", "val", "watch", "export", "benchmark", "serve")


def _options(name: str) -> dict[str, Any]:
    return {opt: p for p in COMMANDS[name].params if p.param_type_name == "option"
            for opt in p.opts}


def test_every_command_is_walked() -> None:
    assert {"predict", "val", "watch", "export", "benchmark", "serve", "evaluate", "analyze",
            "report", "train", "crossval", "demo", "data validate", "token create"} <= set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_parameter_has_help_without_markup_brackets(name: str) -> None:
    for param in COMMANDS[name].params:
        text = (getattr(param, "help", None) or "").strip()
        assert text, f"{name}: {param.name} has no help text"
        # the help renderer takes [word...] for markup and drops it ("fails ." in --threshold)
        assert not MARKUP.search(text), f"{name}: {param.name}: use parentheses in {text!r}"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_one_name_per_concept(name: str) -> None:
    opts = _options(name)
    if "--out" in opts:
        assert "-o" in opts["--out"].opts, f"{name}: --out without -o"
    if "--score-thr" in opts:
        assert opts["--score-thr"].hidden, f"{name}: --score-thr is the hidden old name"
    if "--runtime" in opts:
        assert opts["--runtime"].default == "auto", name
    if "--threads" in opts:
        assert opts["--threads"].default == 0, name
        assert opts["--threads"].help == _options("predict")["--threads"].help, name
    if "--nested" in opts:  # None: the model's rule (crossval: the config's)
        assert opts["--nested"].default is None and opts["--nested"].metavar == "RULE", name


def test_commands_that_run_a_model_share_the_nested_option() -> None:
    helps = {name: _options(name)["--nested"].help for name in ("predict", "val", "watch", "serve")}
    assert len(set(helps.values())) == 1
    assert "default: the model's own rule" in helps["predict"]


@pytest.mark.parametrize("name", MODEL_COMMANDS)
def test_the_model_is_the_first_positional(name: str) -> None:
    first = next(p for p in COMMANDS[name].params if p.param_type_name == "argument")
    assert first.metavar == "MODEL"
    assert "--checkpoint" not in _options(name) or _options(name)["--checkpoint"].hidden


def test_threshold_help_names_its_default() -> None:
    result = runner.invoke(app, ["predict", "--help"], env={"COLUMNS": "200"})
    line = next(ln for ln in result.output.splitlines() if "--threshold " in ln)
    assert "fails when a box scores at or above it (default: the" in line


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    photo = tmp_path / "photos" / "white_a.jpg"
    photo.parent.mkdir()
    Image.new("RGB", (64, 48), (200, 200, 200)).save(photo)
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "white_a.jpg", "width": 64, "height": 48}],
        "annotations": [], "categories": [{"id": 1, "name": "scratch"}]}))
    return {"photos": photo.parent, "gt": gt, "model": tmp_path / "missing.pt",
            "out": tmp_path / "out"}


MISSING_MODEL = {
    "predict": ["predict", "{model}", "{photos}", "--out", "{out}"],
    "val": ["val", "{model}", "{gt}", "{photos}", "--out", "{out}"],
    "export": ["export", "{model}", "-o", "{out}/m.onnx"],
    "benchmark": ["benchmark", "{model}", "{photos}"],
    "watch": ["watch", "{model}", "{photos}", "--once", "--out", "{out}"],
    "serve": ["serve", "{model}", "--no-auth", "--db", "sqlite:///{out}/h.db",
              "--storage", "{out}/photos"],
}


@pytest.mark.parametrize("name", sorted(MISSING_MODEL))
def test_a_missing_model_file_is_a_usage_error(name: str, inputs: dict[str, Path]) -> None:
    args = [a.format(**inputs) for a in MISSING_MODEL[name]]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "missing.pt" in result.output
    assert not inputs["out"].exists()  # nothing made (serve: not even its history database)


def test_old_names_still_work_with_a_note(inputs: dict[str, Path]) -> None:
    bench = runner.invoke(app, ["benchmark", str(inputs["photos"]), "--checkpoint",
                                str(inputs["model"])])
    assert bench.exit_code == 2 and "missing.pt: model file not found" in bench.output
    assert "note: --checkpoint FILE is deprecated" in bench.output
    predict = runner.invoke(app, ["predict", str(inputs["model"]), str(inputs["photos"]),
                                  "--score-thr", "0.1", "-o", str(inputs["out"])])
    assert predict.exit_code == 2 and "note: --score-thr is deprecated; use --min-score" in \
        predict.output


def test_data_validate_missing_json_is_a_usage_error(inputs: dict[str, Path]) -> None:
    result = runner.invoke(app, ["data", "validate", str(inputs["out"] / "nope.json"),
                                 str(inputs["photos"])])
    assert result.exit_code == 2 and "nope.json: COCO json not found" in result.output
