"""The command line, end to end."""

import json

from typer.testing import CliRunner

from ntknas.cli import app

runner = CliRunner()


def test_score_json_on_real_images():
    result = runner.invoke(app, ["score", "--model", "resnet18", "--batch-size", "8", "--format", "json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert scores["model"] == "resnet18" and scores["batch_size"] == 8
    assert 1 < scores["condition_number"] < 1e6
    assert scores["lambda_max"] >= scores["lambda_min"] > 0
    assert 1 <= scores["effective_rank"] <= 8


def test_score_table():
    result = runner.invoke(app, ["score", "--batch-size", "4", "--data", "synthetic", "--bn", "eval"])
    assert result.exit_code == 0, result.output
    assert "condition_number" in result.stdout and "bn=eval" in result.stdout


def test_bad_input_is_one_line_and_exit_2():
    for args, message in [
        (["score", "--model", "resnet1800"], "unknown torchvision model 'resnet1800'"),
        (["score", "--bn", "frozen"], "unknown --bn 'frozen'; choose one of: eval, batch, train"),
        (["score", "--batch-size", "1"], "--batch-size must be at least 2"),
        (["score", "--data", "/no/such/dir"], "data path /no/such/dir does not exist"),
        (["score", "--format", "xml"], "unknown --format 'xml'"),
    ]:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr and "Traceback" not in result.output
        assert len(result.stderr.strip().splitlines()) == 1
