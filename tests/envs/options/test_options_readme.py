"""The README's options tables are the code's (regenerated, not hand-copied): a changed action or fee
row that the README does not show fails here."""

from pathlib import Path

from jaxtrade.envs.options import costs, strategies

README = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")


def test_readme_shows_the_action_table_and_the_fee_schedule_as_the_code_has_them():
    assert strategies.action_table_markdown("full") in README
    assert costs.options_fee_table() in README
