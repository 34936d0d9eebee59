"""Every planted bad trajectory is rejected by the pipeline's own checks, with verifiers
that accept everything (so the deterministic checks alone reject it), and its good twin
passes those checks (so they do not reject everything)."""

import pytest

from synthesis.llm.scripted import ScriptedBackend
from synthesis.roleplay import RoleplayConfig
from synthesis.roleplay.multi_turn import rule_problems as multi_turn_rules
from synthesis.roleplay.single_turn import rule_problems as single_turn_rules
from synthesis.roleplay.steps import MemorySink, StepLog
from synthesis.roleplay.verify import (
    VerifySettings,
    multi_turn_transcript,
    single_turn_transcript,
    verify,
)

from .fakes import as_json
from .planted.cases import CASES
from .planted.cases_second import CASES as SECOND

CFG = RoleplayConfig()


def rules_of(case, bad: bool):
    if case.mode == "multi_turn":
        return multi_turn_rules(case.bad_messages if bad else case.good_messages, case.bad if bad else case.good)
    return single_turn_rules(case.bad if bad else case.good, CFG)


def run_verify(case, problems):
    """``verify`` driven as the engine drives it, every model verifier voting accept."""
    always = ScriptedBackend(default=lambda r: as_json(
        {"rationale": "The call matches what the user asked for in " + case.name, "decision": "accept"}).text)
    log = StepLog(case.name, MemorySink())
    transcript = (multi_turn_transcript(case.bad, case.bad_messages) if case.mode == "multi_turn"
                  else single_turn_transcript(case.bad))
    gen = verify(log, transcript=transcript, rule_problems=problems, settings=VerifySettings(verifier_count=3))
    answers = None
    try:
        while True:
            asks = gen.send(answers) if answers is not None else next(gen)
            answers = [[always.complete_batch([a.request])[0][0]] for a in asks]
    except StopIteration as stop:
        return stop.value


def test_the_set_is_large_and_covers_every_kind_of_defect():
    assert len(CASES) >= 20
    assert {c.mode for c in CASES} == {"single", "parallel", "multiple", "irrelevance", "multi_turn"}
    names = " ".join(c.name for c in CASES)
    for kind in ("wrong tool", "wrong city", "invented id", "contradicts", "irrelevance", "as string"):
        assert kind in names, kind


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_every_planted_trajectory_is_rejected_and_its_good_twin_passes(case):
    assert rules_of(case, bad=False) == [], f"{case.name}: the good twin is rejected"
    problems = rules_of(case, bad=True)
    assert problems, f"{case.name} ({case.defect}) passed every rule check"
    assert run_verify(case, problems) == "reject", f"{case.name}: rejected by {problems}"


def test_what_caught_each_planted_trajectory(capsys):
    with capsys.disabled():
        print()
        for case in CASES:
            print(f"  {case.mode:<11} {case.name:<40} {rules_of(case, bad=True)[0][:110]}")


# A second set, written apart from the first against the same brief: the checks must not be
# fitted to one author's examples.

# Known gaps, kept visible: these two defects are not caught yet (strict: the test fails the
# day a check catches them, so the mark goes with it).
KNOWN_GAPS = {
    "parallel_missing_call": "a request naming three orders whose reference looks up two: nothing counts the "
    "things a request names against its calls",
}
SECOND_PARAMS = [
    pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[c.name])) if c.name in KNOWN_GAPS else c
    for c in SECOND
]


@pytest.mark.parametrize("case", SECOND_PARAMS, ids=lambda c: c.name)
def test_the_second_set_is_rejected_too_and_its_good_twins_pass(case):
    assert rules_of(case, bad=False) == [], f"{case.name}: the good twin is rejected"
    problems = rules_of(case, bad=True)
    assert problems, f"{case.name} ({case.defect}) passed every rule check"
    assert run_verify(case, problems) == "reject"
