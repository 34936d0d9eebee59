import json
import re

import pytest

from synthesis.llm.scripted import ScriptedBackend
from synthesis.roleplay.personas import SEED_PERSONAS, generate_personas, select_diverse
from synthesis.roleplay.steps import Persona


def bag_of_words(texts):
    vocab = {}
    rows = []
    for t in texts:
        words = re.findall(r"[a-z]+", t.lower())
        for w in words:
            vocab.setdefault(w, len(vocab))
        rows.append(words)
    out = []
    for words in rows:
        v = [0.0] * len(vocab)
        for w in words:
            v[vocab[w]] += 1
        out.append(v)
    return out


def persona_json(name, role, background, goals):
    return json.dumps(
        {"name": name, "role": role, "background": background, "style": "plain", "goals": goals}
    )


def test_seed_personas_are_diverse_and_complete():
    assert len(SEED_PERSONAS) >= 12
    assert len({p.name for p in SEED_PERSONAS}) == len(SEED_PERSONAS)
    assert all(p.role and p.background and p.style and p.goals for p in SEED_PERSONAS)
    kept, rejected = select_diverse(SEED_PERSONAS, bag_of_words, threshold=0.9)
    assert rejected == []


def test_generation_rejects_invalid_and_near_duplicates():
    nurse = persona_json(
        "Ana Lima",
        "night nurse",
        "Works night shifts in a children's hospital ward.",
        ["check shift schedules"],
    )
    nurse_again = persona_json(
        "Ana Lopes",
        "night nurse",
        "Works night shifts in a children's hospital ward.",
        ["check shift schedules"],
    )
    farmer = persona_json(
        "Joe Kraft",
        "dairy farmer",
        "Runs a family farm with sixty cows in Wisconsin.",
        ["track milk prices"],
    )
    backend = ScriptedBackend(replies=[nurse, nurse_again, "{oops", farmer], default=farmer)
    report = generate_personas(
        backend, ["health"], per_domain=3, embedder=bag_of_words, threshold=0.9, max_rounds=2
    )
    names = [p.name for p in report.personas]
    assert names == ["Ana Lima", "Joe Kraft"]
    assert report.invalid == 1
    assert report.near_duplicates >= 2  # the second nurse, and the farmer repeated in round 2
    assert all(p.domain == "health" for p in report.personas)
    req = backend.requests[0]
    assert req.json_schema["required"] == ["name", "role", "background", "style", "goals"]
    assert "health" in req.messages[-1]["content"]


def test_threshold_is_checked():
    with pytest.raises(ValueError, match="threshold"):
        generate_personas(ScriptedBackend(), ["x"], per_domain=1, embedder=None, threshold=0)


def test_persona_round_trip():
    p = SEED_PERSONAS[0]
    assert Persona.from_dict(p.to_dict()) == p
