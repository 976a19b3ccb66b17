"""The end of `ntknas search`: the top table and a few lines on where the study is, what it holds,
its best configuration and what to run next; in narrow and wide terminals, secrets masked."""

import io

from ntknas.cli.search import guidance, summarise
from ntknas.core.terminal import Terminal
from ntknas.inputs.sources import BUNDLED
from ntknas.study.settings import Settings

NB201 = "|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_1x1~2|"
ROWS = [
    {"trial": 0, "config": "|none~0|+|skip_connect~0|none~1|+|none~0|none~1|none~2|", "reuses": 0,
     "ntk_score": 1.5, "condition_number": 40.0, "params": 129306, "flops": 31294720, "seconds": 0.2},
    {"trial": 2, "config": NB201, "reuses": 3,
     "ntk_score": 5.112, "condition_number": 2.004, "params": 400346, "flops": 109937920, "seconds": 0.34},
    {"trial": 3, "config": "|nor_conv_1x1~0|+|none~0|none~1|+|skip_connect~0|skip_connect~1|none~2|",
     "reuses": 0, "ntk_score": -0.09, "condition_number": 21.25, "params": 129306, "flops": 31294720,
     "seconds": 0.15},
]  # fmt: skip


def settings(objective: str = "ntk_score", **budget) -> Settings:
    return Settings("nb201", BUNDLED, 8, "batch", 0, objective, **budget)


def test_guidance_names_the_storage_the_count_the_best_and_the_next_commands():
    assert guidance("nb201", None, settings(), ROWS, reused=3) == [
        "Study 'nb201' in sqlite:///results/ntknas.db: 3 distinct configurations scored; "
        "3 more proposals reused stored values.",
        f"Best: trial 2, ntk_score 5.112 (higher is better): {NB201}",
        "Next:",
        "  ntknas results nb201                  # every candidate, as a table, CSV or JSON",
        "  ntknas verify nb201 --top 3           # train the best from scratch",
        "  ntknas plot nb201                     # score vs. size, search history, eigenspectra",
        "  ntknas dashboard nb201                # the study in a web browser",
        "  ntknas export nb201 --out nb201-pick  # the best pick, to train or deploy",
    ]


def test_guidance_counts_in_the_singular_too():
    lines = guidance("nb201", None, settings(), ROWS[:1], reused=1)
    assert lines[0] == (
        "Study 'nb201' in sqlite:///results/ntknas.db: 1 distinct configuration scored; "
        "1 more proposal reused stored values."
    )


def test_guidance_follows_the_objective_direction_and_the_budget():
    lines = guidance("cond", None, settings("condition_number", max_params=500_000), ROWS, reused=0)
    assert lines[0] == (
        "Study 'cond' in sqlite:///results/ntknas.db: 3 distinct configurations scored, "
        "within the budget --max-params 500,000."
    )
    assert lines[1] == f"Best: trial 2, condition_number 2.004 (lower is better): {NB201}"


def test_guidance_masks_a_password_and_quotes_what_the_shell_would_split():
    secret = guidance("nb201", "postgresql://u:secret@db:5432/nas", settings(), ROWS, reused=0)
    assert "secret" not in "\n".join(secret)
    assert secret[0].startswith("Study 'nb201' in postgresql://u:***@db:5432/nas: ")
    assert secret[3].split("#")[0].strip() == "ntknas results nb201 --storage URL"
    spaced = guidance("my study", "sqlite:///my results/x.db", settings(), ROWS, reused=0)
    assert (
        spaced[4].split("#")[0].strip()
        == "ntknas verify 'my study' --top 3 --storage 'sqlite:///my results/x.db'"
    )


def test_no_configuration_no_guidance():
    assert guidance("nb201", None, settings(), [], reused=0) == []


def printed(width: int) -> list[str]:
    console = Terminal(file=io.StringIO(), width=width)
    summarise("nb201", None, settings(), ROWS, 3, top=2, console=console)
    return console.file.getvalue().splitlines()


def test_a_narrow_terminal_gets_a_table_that_fits_and_the_lines_unbroken():
    lines = printed(80)
    table = lines[: lines.index(next(line for line in lines if line.startswith("Study ")))]
    assert table[0].startswith("Top 2 of study 'nb201' by ntk_score")
    assert max(len(line) for line in table) <= 80
    header = table[2].split("┃")
    assert [c.strip() for c in header[1:-1]] == ["trial", "config", "ntk_score", "params", "reuses"]
    assert f"Best: trial 2, ntk_score 5.112 (higher is better): {NB201}" in lines  # one line, unbroken
    assert any(line.split("#")[0].strip() == "ntknas results nb201" for line in lines)


def test_a_wide_terminal_gets_every_score_and_unfolded_configurations():
    lines = printed(250)
    header = [c.strip() for c in lines[2].split("┃")[1:-1]]
    assert header[:3] == ["trial", "config", "ntk_score"]
    assert {"condition_number", "flops", "seconds", "reuses"} <= set(header)
    assert any(NB201 in line for line in lines[4:])  # the best's row, its configuration on one line
