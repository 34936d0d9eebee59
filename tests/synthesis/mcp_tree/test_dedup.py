import json
import os

import numpy as np
import pytest

from synthesis.llm.base import ChatRequest, ChatResult, LLMBackend
from synthesis.mcp_tree.dedup import (
    JUDGE_SCHEMA,
    DedupConfig,
    content_hash,
    dedup_tools,
    embed_texts,
    embed_tools,
    exact_key,
    finish_dedup,
    make_llm_judge,
    neighbor_pairs,
    normalize_name,
    plan_dedup,
)


def _tool(name, desc, props, source, required=()):
    return {
        "name": name,
        "description": desc,
        "inputSchema": {
            "type": "object",
            "properties": {p: {"type": "string", "description": f"The {p}."} for p in props},
            "required": list(required),
        },
        "source": source,
    }


def test_content_hash_and_exact_key():
    a = _tool("get_user", "Get a user.", ["id"], "a")
    b = _tool("getUser", "Fetch one user by id.", ["id"], "b")
    assert content_hash(a) == content_hash(json.loads(json.dumps(a)))
    assert content_hash(a) != content_hash(b)
    assert len(content_hash(a)) == 64
    # Same normalised name and schema shape: exact duplicates whatever the wording.
    assert exact_key(a) == exact_key(b)
    assert exact_key(a) != exact_key(_tool("get_user", "Get a user.", ["uid"], "a"))
    assert normalize_name("Get-User_v2") == "getuserv2"


def test_neighbor_pairs_matches_brute_force():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(40, 16)).astype(np.float32)
    emb = np.vstack([base, base[:10] + 0.05 * rng.normal(size=(10, 16)).astype(np.float32)])
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    got = neighbor_pairs(emb, 0.9, max_neighbors=50, chunk=7)
    sims = emb @ emb.T
    want = {(i, j) for i in range(len(emb)) for j in range(i + 1, len(emb)) if sims[i, j] >= 0.9}
    assert {(i, j) for i, j, _ in got} == want
    assert [s for *_, s in got] == sorted((s for *_, s in got), reverse=True)
    assert len(neighbor_pairs(emb, 0.9, max_neighbors=1, chunk=7)) <= len(emb)
    # Tiles narrower than a chunk, and not dividing it: the same pairs, and a row's best
    # neighbours are chosen across its tiles.
    assert neighbor_pairs(emb, 0.9, max_neighbors=50, chunk=7, tile=5) == got
    assert neighbor_pairs(emb, 0.5, max_neighbors=2, chunk=7, tile=3) == neighbor_pairs(emb, 0.5, max_neighbors=2)


def test_neighbor_pairs_near_the_threshold_are_the_float32_ones():
    # 384 dimensions, partners at cosines within 0.0005 of 0.86, inside bf16's error: whatever the screen's
    # dtype, the pairs kept and their cosines are float32's.
    rng = np.random.default_rng(1)
    base = rng.normal(size=(300, 384)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    noise = rng.normal(size=(300, 384)).astype(np.float32)
    noise -= (noise * base).sum(1, keepdims=True) * base
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    cos = rng.uniform(0.8595, 0.8605, size=(300, 1)).astype(np.float32)
    emb = np.vstack([base, cos * base + np.sqrt(1 - cos**2) * noise]).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    got = neighbor_pairs(emb, 0.86, max_neighbors=5, chunk=64)
    sims = emb @ emb.T
    want = {(i, j) for i in range(len(emb)) for j in range(i + 1, len(emb)) if sims[i, j] >= 0.86}
    assert 100 < len(want) < 200  # about half of the 300 partners pass
    assert {(i, j) for i, j, _ in got} == want
    assert max(abs(v - sims[i, j]) for i, j, v in got) < 1e-5


def test_exact_duplicates_without_embeddings():
    tools = [
        _tool("list_pets", "List pets.", ["limit"], "v1"),
        _tool("listPets", "List all the pets in the store.", ["limit"], "v2"),
        _tool("delete_pet", "Delete a pet.", ["id"], "v1"),
    ]
    result = dedup_tools(tools, config=DedupConfig(semantic=False))
    # The longer description wins the canonical slot.
    assert result.canonical_of == [1, 1, 2]
    assert result.canonical == [1, 2] and result.duplicates == 1
    (d,) = result.decisions
    assert (d.tool, d.other, d.canonical, d.method, d.verdict) == (1, 0, 1, "exact", True)


def _pairs_by_names(tools, result):
    return {
        (tools[d.tool]["name"], tools[d.other]["name"]): (d.method, d.verdict)
        for d in result.decisions
    }


def test_semantic_thresholds_same_source_and_judge_with_synthetic_embeddings():
    tools = [
        _tool("get_weather", "Current weather for a city.", ["city"], "wx1"),
        _tool("current_weather", "Current weather for a city.", ["q"], "wx2"),
        _tool("forecast", "Weather forecast for a city.", ["city"], "wx3"),
        _tool("block_account", "Block an account.", ["id"], "social"),
        _tool("unblock_account", "Unblock an account.", ["id"], "social"),
        _tool("send_mail", "Send an email.", ["to"], "mail"),
    ]
    e = np.eye(6, dtype=np.float32)
    e[1] = 0.99 * e[0] + np.sqrt(1 - 0.99**2) * e[5]  # 0.99 to get_weather
    e[2] = 0.9 * e[0] + np.sqrt(1 - 0.9**2) * e[4]  # 0.9: for the judge
    e[4] = 0.995 * e[3] + np.sqrt(1 - 0.995**2) * e[5]  # 0.995 but the same API
    e /= np.linalg.norm(e, axis=1, keepdims=True)

    seen = []

    def judge(a, b):
        seen.append((a["name"], b["name"]))
        return a["name"] != "block_account" and b["name"] != "block_account", "scripted"

    no_judge = dedup_tools(tools, embeddings=e)
    assert no_judge.canonical_of[1] == no_judge.canonical_of[0]
    assert no_judge.canonical_of[2] == 2 and no_judge.canonical_of[4] == 4
    pairs = _pairs_by_names(tools, no_judge)
    assert pairs[("current_weather", "get_weather")] == ("semantic", True)
    assert pairs[("unblock_account", "block_account")] == ("semantic", False)

    judged = dedup_tools(tools, embeddings=e, judge=judge)
    assert judged.canonical_of[2] == judged.canonical_of[0]
    assert judged.canonical_of[4] == 4  # the judge said no
    pairs = _pairs_by_names(tools, judged)
    assert pairs[("unblock_account", "block_account")] == ("judge", False)
    assert ("block_account", "unblock_account") in seen
    assert judged.embeddings.shape == (len(judged.canonical), 6)
    assert all(d.rationale for d in judged.decisions)
    # In two steps with the vectors dropped before the judge: the same groups, no vectors.
    n_seen = len(seen)
    plan = plan_dedup(tools, embeddings=e, judged=True)
    plan.drop_embeddings()
    two_step = finish_dedup(plan, tools, judge)
    assert seen[n_seen:] == seen[:n_seen]
    assert two_step.canonical_of == judged.canonical_of and two_step.embeddings is None
    assert two_step.decisions == judged.decisions


class _Scripted(LLMBackend):
    name = "test-scripted"
    supports_schema = True

    def __init__(self, replies):
        self.replies = list(replies)
        self.requests: list[ChatRequest] = []

    def complete_batch(self, requests):
        self.requests.extend(requests)
        return [[ChatResult(text=self.replies.pop(0))] for _ in requests]


def test_llm_judge_uses_the_schema_and_survives_bad_output():
    backend = _Scripted(
        ['{"duplicate": true, "reason": "same call"}', "not json", '{"duplicate": "yes"}']
    )
    judge = make_llm_judge(backend)
    a = _tool("get_weather", "Current weather.", ["city"], "a")
    b = _tool("weather_now", "Weather now.", ["city"], "b")
    assert judge(a, b) == (True, "same call")
    verdicts = judge.batch([(a, b), (b, a)])
    assert [v for v, _ in verdicts] == [False, False]
    assert "unusable" in verdicts[0][1]
    req = backend.requests[0]
    assert req.json_schema == JUDGE_SCHEMA and req.temperature == 0.0
    assert (
        "get_weather" in req.messages[-1]["content"]
        and "weather_now" in req.messages[-1]["content"]
    )


def test_the_judge_reasons_before_its_verdict_and_a_verdict_against_its_reason_merges_nothing():
    assert list(JUDGE_SCHEMA["properties"]) == ["reason", "duplicate"]
    assert JUDGE_SCHEMA["required"] == ["reason", "duplicate"]
    # Replies the embedded model gave on corpus pairs with the verdict first.
    said = ["The two tools are not duplicates.", "Exceptions are not duplicates",
            "The event is not a duplicate of the other two tools.", "They aren't duplicates.",
            "These tools are different: one takes a calendar id.", "no", "No, they are the same request."]
    replies = [json.dumps({"reason": r, "duplicate": True}) for r in said]
    replies += [json.dumps({"reason": "Both list the issues of a repository.", "duplicate": True}),
                json.dumps({"reason": "One lists issues, the other pull requests.", "duplicate": False})]
    judge = make_llm_judge(_Scripted(replies))
    a = _tool("get_weather", "Current weather.", ["city"], "a")
    verdicts = judge.batch([(a, a)] * len(replies))
    assert [v for v, _ in verdicts] == [False] * len(said) + [True, False]
    assert all("contradicts itself" in why for _, why in verdicts[: len(said)])


@pytest.mark.slow
def test_semantic_duplicates_with_the_real_model():
    tools = [
        _tool(
            "issues_list_for_repo",
            "List issues in a repository.",
            ["owner", "repo", "state"],
            "ghes-3.7",
        ),
        _tool(
            "issues_list_for_repo",
            "Lists issues in a repository.",
            ["owner", "repo", "state", "sort"],
            "ghes-3.8",
        ),
        _tool("repoIssues", "Get the issues of a repository.", ["owner", "repo", "state"], "gitea"),
        _tool(
            "pulls_list",
            "List pull requests in a repository.",
            ["owner", "repo", "state"],
            "ghes-3.7",
        ),
        _tool("get_weather", "Current weather for a city.", ["city", "units"], "owm"),
        _tool("send_email", "Send an email message.", ["to", "subject", "body"], "mail"),
    ]
    emb = embed_tools(tools)
    assert emb.shape == (6, 384) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-4)
    calls = []

    def judge(a, b):
        calls.append({a["source"], b["source"]})
        return True, "same operation"

    result = dedup_tools(
        tools, embeddings=emb, config=DedupConfig(lower=0.75, upper=0.96), judge=judge
    )
    # ghes 3.7 / 3.8 are the same tool across versions: merged without the judge.
    assert result.canonical_of[0] == result.canonical_of[1]
    methods = {(d.tool, d.other): d.method for d in result.decisions}
    assert methods[(1, 0)] == "semantic"
    assert result.canonical_of[4] == 4 and result.canonical_of[5] == 5
    assert len(result.canonical) < len(tools)


@pytest.mark.slow
def test_the_mean_pooled_path_gives_the_sentence_models_own_vectors():
    from synthesis.mcp_tree.dedup import _mean_pooled, load_embedder

    model = load_embedder()
    assert _mean_pooled(model) is not None, "MiniLM is a transformer with mean pooling: the fast path applies"
    # Lengths that differ a lot, so batches of 2 cut from the sorted texts pad differently
    # from the sentence model's own batches.
    texts = ["weather", "List issues in a repository, with labels, milestones and assignees. " * 3,
             "Send an email message.", "get user by id: Returns a user.", "x", "Current weather for a city."]
    ours = embed_texts(texts, model=model, batch_size=2, max_seq_length=64, dtype="float32")
    model.max_seq_length = 64
    try:
        theirs = model.encode(texts, batch_size=2, normalize_embeddings=True, convert_to_numpy=True)
    finally:
        model.max_seq_length = 128
    assert ours.shape == theirs.shape and np.allclose(ours, theirs, atol=1e-5)
    assert not np.allclose(ours[0], ours[5], atol=1e-2), "rows are kept in the texts' order"


def test_a_sentence_model_that_is_not_mean_pooled_keeps_its_own_encode():
    from synthesis.mcp_tree.dedup import _mean_pooled

    class Pooling:
        def __init__(self, mode):
            self.mode = mode

        def get_config_dict(self):
            return {"pooling_mode": self.mode}

    class Transformer:
        auto_model = object()
        do_lower_case = False

    class Normalize:
        pass

    class Model(list):
        tokenizer = object()

    assert _mean_pooled(Model([Transformer(), Pooling("mean"), Normalize()])) is not None
    assert _mean_pooled(Model([Transformer(), Pooling("cls"), Normalize()])) is None
    assert _mean_pooled(Model([Transformer(), Pooling("mean"), Normalize(), Normalize()])) is None
    lower = Transformer()
    lower.do_lower_case = True
    assert _mean_pooled(Model([lower, Pooling("mean")])) is None
    assert _mean_pooled(object()) is None


@pytest.mark.slow
def test_bf16_embeddings_are_unit_rows_close_to_float32_ones():
    texts = ["List issues in a repository.", "Lists issues in a repository.", "Current weather for a city.",
             "Send an email message.", "Get the issues of a repository."]
    full = embed_texts(texts, dtype="float32")
    half = embed_texts(texts, dtype="bfloat16")
    assert half.dtype == np.float32 and np.allclose(np.linalg.norm(half, axis=1), 1, atol=1e-5)
    assert not np.array_equal(full, half), "the bf16 path computed in float32"
    # The same pairs on each side of the dedup thresholds: cosines move by well under 0.01.
    assert np.abs(full @ full.T - half @ half.T).max() < 0.01
    with pytest.raises(ValueError, match="embedding dtype"):
        embed_texts(texts, dtype="half")


def test_the_embedding_process_returns_what_this_process_would_and_says_when_it_dies():
    from synthesis.mcp_tree.dedup import EmbedProcess

    texts = ["List issues in a repository.", "Current weather for a city.", "Send an email message."]
    here = embed_texts(texts, max_seq_length=64, dtype="float32")
    # Chunks far larger than a pipe's buffer, both ways, two queued before the first is read:
    # the way build_tree keeps one chunk ahead (it hung on this before the pipes were split).
    big = [f"{t} number {i} {'with a long tail of words ' * 8}" for i in range(600) for t in texts[:1]]
    with EmbedProcess(max_seq_length=64, dtype="float32") as embedder:
        embedder.submit(big)
        embedder.submit(big)
        embedder.submit(texts[:2])
        embedder.submit(texts[2:])  # queued behind the others: results come back in order
        assert embedder.result().shape == (600, 384) and embedder.result().shape == (600, 384)
        assert np.allclose(embedder.result(), here[:2], atol=1e-5)
        assert np.allclose(embedder.result(), here[2:], atol=1e-5)
        child = embedder._proc
        assert child.pid != os.getpid() and child.is_alive()
        embedder.submit(texts)
        child.kill()  # a dead embedder: the chunk in flight is reported, nothing hangs
        with pytest.raises(RuntimeError, match="the embedding process ended .* 1 chunks unfinished"):
            embedder.result()
    assert not child.is_alive()


def test_submitting_to_an_embedding_process_that_died_says_so():
    """A child that died before the first chunk (a script without a ``__main__`` guard
    re-runs itself in the spawned child) surfaced as a bare BrokenPipeError."""
    from synthesis.mcp_tree.dedup import EmbedProcess

    with EmbedProcess(max_seq_length=64, dtype="float32") as embedder:
        child = embedder._proc
        child.kill()
        child.join(10)
        big = ["a text of several words " * 20] * 3000  # more than a pipe's buffer
        with pytest.raises(RuntimeError, match=r"the embedding process ended \(exit code -9\) before a chunk"):
            embedder.submit(big)


def test_a_process_that_may_not_have_children_embeds_in_itself(monkeypatch):
    import multiprocessing
    from types import SimpleNamespace

    from synthesis.mcp_tree.dedup import EmbedProcess

    # a Celery prefork worker is daemonic: it may not start processes of its own
    monkeypatch.setattr(multiprocessing, "current_process", lambda: SimpleNamespace(daemon=True))
    texts = ["List issues in a repository.", "Send an email message."]
    with EmbedProcess(max_seq_length=64, dtype="float32") as embedder:
        assert embedder._proc is None
        embedder.submit(texts)
        assert np.allclose(embedder.result(), embed_texts(texts, max_seq_length=64, dtype="float32"))
        with pytest.raises(RuntimeError, match="no chunk was submitted"):
            embedder.result()


def test_slim_tools_dedup_like_full_tools():
    from synthesis.mcp_tree.dedup import completeness, slim_tool, tool_text

    big = {p: {"type": "integer", "description": "x" * 500, "enum": list(range(50))} for p in map(str, range(40))}
    tools = [
        _tool("get_user", "Get a user.", ["id"], "a"),
        _tool("getUser", "Fetch one user by id, with more words.", ["id"], "b"),
        {"name": "list_items", "description": "List items. " * 100, "source": "c",
         "inputSchema": {"type": "object", "properties": big, "required": ["1", "39"]}},
        _tool("delete_user", "Delete a user.", ["id", "force"], "a", required=["id"]),
    ]
    slim = [slim_tool(t) for t in tools]
    for t, s in zip(tools, slim, strict=True):
        assert exact_key(s) == exact_key(t) and completeness(s) == completeness(t)
    assert len(json.dumps(slim[2])) < len(json.dumps(tools[2])) / 8, "the big schema is not kept"
    assert tool_text(slim[2]) == tool_text(tools[2])
    from synthesis.mcp_tree.dedup import _describe_tool

    # What the judge reads of a tool is the same, and no dict per parameter is held.
    assert [_describe_tool(x) for x in slim] == [_describe_tool(t) for t in tools]
    assert all(not any(isinstance(v, dict) for v in x.values()) for x in slim)
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(len(tools), 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    full = dedup_tools(tools, embeddings=emb)
    lean = dedup_tools(slim, embeddings=emb)
    assert full.canonical_of == lean.canonical_of and full.canonical == lean.canonical


def test_the_embedded_text_is_the_name_and_the_lead_of_the_description():
    from synthesis.mcp_tree.dedup import RECIPES, embed_text, lead

    tool = _tool(
        "gamesManagement_achievements_resetAllForAllPlayers",
        "Resets all draft achievements for all players. This method is only available to user "
        "accounts for your developer console. See [the guide](https://example.com/x) for *more*.",
        ["playerId", "pageToken"],
        "games",
    )
    text = embed_text(tool)
    assert text.startswith("games management achievements reset all for all players: Resets all draft")
    assert "developer console." in text, "the summary and the first sentence after it"
    assert "See the guide" not in text and "https://" not in text and "playerId" not in text
    assert lead("A. B. C.") == "A. B." and lead("e.g. one thing. Two.") == "e.g. one thing. Two."
    assert lead("*Create* an `API` [object](http://x)") == "Create an API object"
    assert len(lead("word " * 200, max_chars=50)) <= 50
    assert RECIPES["lead-64"].text is embed_text and RECIPES["lead-64"].max_seq_length == 64


def test_identical_texts_are_encoded_once_and_get_the_same_row():
    from synthesis.mcp_tree.dedup import embed_texts

    class Counting:
        max_seq_length = 128

        def __init__(self):
            self.seen = []
            self.caps = []

        def get_sentence_embedding_dimension(self):
            return 3

        def encode(self, texts, **_):
            self.seen.append(list(texts))
            self.caps.append(self.max_seq_length)
            return np.array([[len(t), 1.0, 0.0] for t in texts], dtype=np.float32)

    m = Counting()
    out = embed_texts(["aa", "b", "aa", "ccc", "b"], model=m, max_seq_length=64, dtype="float32")
    assert m.seen == [["aa", "b", "ccc"]] and m.caps == [64]
    assert m.max_seq_length == 128, "the model's own cap is restored"
    assert out[:, 0].tolist() == [2, 1, 2, 3, 1]


def test_a_remembering_judge_asks_only_about_pairs_it_has_no_verdict_for():
    from synthesis.mcp_tree.dedup import RememberingJudge

    asked = []

    class Judge:
        def batch(self, pairs):
            asked.extend((a.get("_key"), b.get("_key")) for a, b in pairs)
            return [(True, "asked") for _ in pairs]

    built = []

    def make():
        built.append(1)
        return Judge()

    t = {k: {"name": f"t{k}", "_key": k} for k in range(5)}
    judge = RememberingJudge(make, known={(1, 0): (False, "stored"), (2, 3): (True, "stored too")})
    # Stored either way round; nothing to ask, so the judge's model is never built.
    assert judge.batch([(t[0], t[1]), (t[3], t[2])]) == [(False, "stored"), (True, "stored too")]
    assert built == [] and judge.reused == 2 and judge.asked == 0
    assert judge.batch([(t[0], t[1]), (t[0], t[4]), (t[2], t[4])]) == [
        (False, "stored"), (True, "asked"), (True, "asked")]
    assert asked == [(0, 4), (2, 4)] and built == [1] and judge.asked == 2 and judge.reused == 3
    # Tools without a key are always asked.
    assert judge({"name": "x"}, t[1]) == (True, "asked") and judge.asked == 3


def test_the_heap_is_trimmed_after_every_judge_batch(monkeypatch):
    from synthesis.mcp_tree import dedup

    trims = []
    monkeypatch.setattr(dedup, "release_memory", lambda collect=True: trims.append(collect))
    tools = [_tool(f"op_{i}", f"Operation {i}.", ["x"], f"src{i}") for i in range(6)]
    emb = np.tile(np.array([[1.0, 0.0]], dtype=np.float32), (6, 1))
    emb[:, 1] = np.linspace(0, 0.3, 6)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    batches = []

    def judge(a, b):
        return False, "different"

    class Batched:
        def batch(self, pairs):
            batches.append(len(pairs))
            return [judge(a, b) for a, b in pairs]

    dedup_tools(tools, embeddings=emb, config=DedupConfig(lower=0.5, upper=0.9999, judge_batch=2), judge=Batched())
    assert len(batches) >= 2 and trims == [False] * len(batches)
