"""Progress where the user looks (issue 24): bars on a terminal, plain lines in a file, a default that
shows progress only on a terminal, and a one-line notice when a CPU stage will take hours."""

from __future__ import annotations

import io
import sys
import warnings

import pytest
import torch
from agent_helpers import TINY

from latent_skills import LDCQ
from latent_skills._progress import PlainProgress, on_terminal, progress
from latent_skills.agents import notices
from latent_skills.agents.notices import SlowStageNotice, SlowTrainingWarning


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_progress_writes_whole_lines_without_control_codes():
    out = io.StringIO()
    bar = PlainProgress(total=10, desc="LDCQ skills", unit="step", interval=0.0, file=out)
    for _ in range(10):
        bar.update(1)
    bar.set_postfix({"loss": "0.5"})
    bar.close()
    bar.close()  # a second close writes nothing
    text = out.getvalue()
    lines = text.splitlines()
    assert "\r" not in text and "\x1b" not in text
    assert lines[0] == "LDCQ skills: 0/10 step (0%), started"
    assert len(lines) == 12  # started, one per update (interval 0), done
    assert lines[5].startswith("LDCQ skills: 5/10 step (50%), ") and "left" in lines[5]
    assert lines[-1].startswith("LDCQ skills: 10/10 step (100%), done, ") and lines[-1].endswith("loss=0.5")


def test_plain_progress_over_an_iterable_counts_it_and_says_when_it_stopped_early():
    out = io.StringIO()
    seen = []
    for item in PlainProgress(range(4), desc="bank", interval=1e9, file=out):
        seen.append(item)
    assert seen == [0, 1, 2, 3]
    assert out.getvalue().splitlines() == [
        "bank: 0/4 it (0%), started",
        out.getvalue().splitlines()[1],
    ]
    assert out.getvalue().splitlines()[1].startswith("bank: 4/4 it (100%), done, ")
    out = io.StringIO()
    early = PlainProgress(total=4, desc="evaluate", unit="ep", interval=1e9, file=out)
    early.update(1)
    early.close()
    assert ", stopped, " in out.getvalue().splitlines()[-1]


def test_progress_is_a_bar_on_a_terminal_and_lines_elsewhere(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not on_terminal()
    assert isinstance(progress(total=3, desc="x"), PlainProgress)
    assert not isinstance(progress(total=3, desc="x", disable=True), PlainProgress)
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert on_terminal()
    bar = progress(total=3, desc="x")
    assert not isinstance(bar, PlainProgress)
    bar.close()


def test_learn_shows_progress_by_default_only_on_a_terminal(box_dataset, capsys):
    agent = LDCQ.from_dataset(box_dataset, **{**TINY, "skills_steps": 3, "prior_steps": 3, "q_steps": 3})
    agent.learn(stages=["skills"])  # stderr is not a terminal under pytest: nothing shown
    assert capsys.readouterr().err == ""
    agent.learn(stages=["skills"], progress_bar=True)  # asked for: plain lines, no control codes
    err = capsys.readouterr().err
    assert "LDCQ skills: 0/3 step (0%), started" in err and "LDCQ skills: 3/3 step (100%), done" in err
    assert "\r" not in err and "\x1b" not in err


def test_a_slow_cpu_stage_names_its_time_and_the_quick_preset():
    notice = SlowStageNotice("LDCQ", "skills", "skills_steps", 100_000, 0, torch.device("cpu"))
    text = notice.message(rate=1.0)  # the paper preset's skills stage on one CPU core
    assert text is not None
    assert "100,000 steps take about 27.8 h" in text and "preset='quick'" in text and "--preset quick" in text
    assert notice.message(rate=100.0) is None  # 1,000 s: no notice
    assert not SlowStageNotice("LDCQ", "q", "q_steps", 10**6, 0, torch.device("meta")).active  # not a CPU


def test_learn_warns_once_per_slow_stage_on_a_cpu(box_dataset, monkeypatch):
    monkeypatch.setattr(notices, "MEASURE_S", 0.0)
    monkeypatch.setattr(notices, "MEASURE_STEPS", 2)
    monkeypatch.setattr(notices, "SLOW_STAGE_S", 1e-9)  # every stage counts as slow
    agent = LDCQ.from_dataset(box_dataset, **{**TINY, "skills_steps": 6})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        agent.learn(stages=["skills"])
    slow = [w for w in caught if issubclass(w.category, SlowTrainingWarning)]
    assert len(slow) == 1
    assert str(slow[0].message).startswith("LDCQ skills on the CPU: ")
    monkeypatch.setattr(notices, "SLOW_STAGE_S", 1e9)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        agent.learn(stages=["skills"])
    assert not [w for w in caught if issubclass(w.category, SlowTrainingWarning)]


@pytest.mark.parametrize("value", ["", "nonsense", "-3"])
def test_the_plain_interval_falls_back_or_clamps(monkeypatch, value):
    monkeypatch.setenv("LATENT_SKILLS_PROGRESS_INTERVAL", value)
    bar = PlainProgress(total=1, file=io.StringIO())
    assert bar.interval == (0.0 if value == "-3" else 30.0)
