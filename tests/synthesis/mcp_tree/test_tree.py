import numpy as np
import pytest

from synthesis.llm.base import ChatResult, LLMBackend
from synthesis.mcp_tree.dedup import embed_tools, tool_text
from synthesis.mcp_tree.tree import TreeConfig, build_tree, make_llm_namer, seed_domain

THEMES = {
    "weather": (
        ["weather"],
        [
            "current weather",
            "hourly forecast",
            "rain radar",
            "wind speed",
            "uv index",
            "air quality",
        ],
    ),
    "payments": (
        ["payment"],
        [
            "charge card",
            "refund payment",
            "list invoices",
            "create customer",
            "payout balance",
            "subscription plan",
        ],
    ),
    "email": (
        ["email"],
        [
            "send email",
            "list inbox messages",
            "mark message read",
            "create mail folder",
            "delete draft",
            "email attachment",
        ],
    ),
    "music": (
        ["media"],
        [
            "play song",
            "search album",
            "artist top tracks",
            "create playlist",
            "add track to playlist",
            "lyrics lookup",
        ],
    ),
}


def _tools():
    tools, cats, sources = [], [], []
    for theme, (cat, actions) in THEMES.items():
        for k, action in enumerate(actions):
            name = action.replace(" ", "_")
            tools.append(
                {
                    "name": name,
                    "description": f"{action.capitalize()} using the {theme} service.",
                    "inputSchema": {"type": "object", "properties": {"query": {"type": "string"}}},
                }
            )
            # Two tools per theme have no APIs.guru category, as in the corpus.
            cats.append(cat if k % 3 else [])
            sources.append(f"{theme}-api-{k % 2}")
    return tools, cats, sources


def _synthetic_embeddings(n_themes=4, per=6, dim=32, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_themes, dim))
    emb = np.vstack([c + 0.3 * rng.normal(size=(per, dim)) for c in centers]).astype(np.float32)
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


def test_tree_structure_is_complete_and_deterministic():
    tools, cats, sources = _tools()
    texts = [tool_text(t) for t in tools]
    emb = _synthetic_embeddings()
    cfg = TreeConfig(n_domains=4, n_categories=8, seed=3)
    tree = build_tree(emb, texts, cats, sources=sources, config=cfg)
    domains, categories = tree.domains(), tree.categories()
    assert len(domains) == 4 and len(categories) == 8
    assert sorted(i for d in domains for i in d.members) == list(range(len(tools)))
    assert sorted(i for c in categories for i in c.members) == list(range(len(tools)))
    keys = {d.key for d in domains}
    for c in categories:
        assert c.parent in keys
        parent = next(d for d in domains if d.key == c.parent)
        assert set(c.members) <= set(parent.members)
        assert all(tree.category_of[i] == c.key for i in c.members)
    names = [n.name for n in tree.nodes]
    assert len(set(names)) == len(names) and all(names)
    # Each theme is one domain, named after its APIs.guru seed category.
    for d in domains:
        assert len({i // 6 for i in d.members}) == 1
    seeded = {"Finance & Payments", "Messaging & Telecom", "Media & Entertainment"}
    assert seeded <= {d.name for d in domains}
    weather = next(d for d in domains if d.members[0] < 6)
    assert "weather" in weather.name.lower()
    again = build_tree(emb, texts, cats, sources=sources, config=cfg)
    assert again.to_dict() == tree.to_dict()


def test_tree_small_inputs_and_validation():
    emb = _synthetic_embeddings(n_themes=1, per=3)
    tree = build_tree(emb, ["a b", "c d", "e f"], config=TreeConfig(n_domains=15, n_categories=40))
    assert len(tree.domains()) <= 3 and len(tree.categories()) <= 3
    assert build_tree(np.zeros((0, 4)), []).nodes == []
    with pytest.raises(ValueError, match="one entry per tool"):
        build_tree(emb, ["only one"])
    with pytest.raises(ValueError, match="n_categories"):
        TreeConfig(n_domains=10, n_categories=5)
    assert seed_domain(["unknown", "payment"], {"payment": "Finance"}) == "Finance"


class _Namer(LLMBackend):
    name = "test-namer"

    def __init__(self):
        self.count = 0

    def complete_batch(self, requests):
        self.count += 1
        text = f'{{"name": "Group {self.count}"}}' if self.count % 2 else "garbage"
        return [[ChatResult(text=text)] for _ in requests]


def test_llm_namer_names_nodes_and_falls_back():
    tools, cats, sources = _tools()
    tree = build_tree(
        _synthetic_embeddings(),
        [tool_text(t) for t in tools],
        cats,
        config=TreeConfig(n_domains=2, n_categories=4),
        namer=make_llm_namer(_Namer()),
    )
    names = [n.name for n in tree.nodes]
    assert "Group 1" in names and len(set(names)) == len(names)


@pytest.mark.slow
def test_tree_over_real_embeddings():
    tools, cats, sources = _tools()
    emb = embed_tools(tools)
    tree = build_tree(
        emb,
        [tool_text(t) for t in tools],
        cats,
        sources=sources,
        config=TreeConfig(n_domains=4, n_categories=8),
    )
    # Tools of one theme mostly share a domain.
    for theme in range(4):
        doms = [tree.domain_of[i] for i in range(theme * 6, theme * 6 + 6)]
        assert max(doms.count(d) for d in doms) >= 4


def test_keyword_names_are_short_unique_and_skip_plurals_of_a_taken_word():
    from synthesis.mcp_tree.tree import _keyword_name

    taken: set[str] = set()
    first = _keyword_name(["user", "users", "account"], taken)
    assert first == "User"
    taken.add(first)
    second = _keyword_name(["users", "account", "billing"], taken)
    assert second == "Account", "a plural of a taken word is not a new name"
    taken.add(second)
    third = _keyword_name(["user", "accounts"], taken)
    assert third and third not in taken
    assert "," not in first + second + third


def test_a_category_may_take_a_word_another_domains_name_holds_but_not_its_siblings():
    """On the corpus, a keyword domain "Users & Groups" took both words from every other node,
    so the 12,059-tool category of Microsoft Graph's user and group operations became
    "Instances".  A category avoids its own domain's and its siblings' words only."""
    from synthesis.mcp_tree.tree import _keyword_name

    taken = {"Users & Groups", "Identity & Access"}
    home = {"Identity & Access"}
    avoid = {"identity", "access"}
    assert _keyword_name(["users", "instances"], taken, avoid) == "Instances"  # every name's words
    assert _keyword_name(["users", "instances"], taken, avoid, scope=home) == "Users"
    assert _keyword_name(["users", "instances"], taken | {"User Settings"}, avoid,
                         scope=home | {"User Settings"}) == "Instances", "a sibling's word"
    assert _keyword_name(["access", "users"], taken, avoid, scope=home) == "Users", "its domain's word"


def test_a_pair_name_never_holds_one_word_twice():
    from synthesis.mcp_tree.tree import _keyword_name, name_is_acceptable

    name = _keyword_name(["fabric locations", "locations", "metrics"], set(), pair=True)
    assert name == "Fabric Locations & Metrics"  # was "Fabric Locations & Locations" on the corpus
    assert name_is_acceptable(name, set())


def test_tree_names_are_unique_non_empty_and_say_how_they_were_chosen():
    import numpy as np

    from synthesis.mcp_tree.tree import TreeConfig, build_tree

    rng = np.random.default_rng(1)
    centers = rng.normal(size=(6, 16))
    emb = np.concatenate([c + 0.05 * rng.normal(size=(30, 16)) for c in centers]).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    topics = ["payment charge invoice", "weather forecast rain", "message chat send", "user account login",
              "file upload storage", "map route geocode"]
    texts = [f"{topics[i // 30]} item{i % 7}" for i in range(len(emb))]
    cats = [["financial"] if i < 30 else [] for i in range(len(emb))]
    tree = build_tree(emb, texts, cats, config=TreeConfig(n_domains=3, n_categories=6, seed=0))
    names = [n.name for n in tree.nodes]
    assert all(n.strip() for n in names) and len(names) == len(set(names))
    assert all(len(n) <= 40 for n in names)
    assert {n.name_source for n in tree.nodes} <= {"keywords", "categories-theme", "corpus-category", "llm"}
    assert all(n.name_source for n in tree.nodes)
    # a domain of two topics, half and half, that no APIs.guru category names is named after
    # both of its categories ("Chat & Account"), not after one theme that covers half of it
    users = {i for i, t in enumerate(texts) if t.startswith("user account")}
    home = next(d for d in tree.domains() if users <= set(d.members))
    assert home.name_source == "keywords" and " & " in home.name, home.name


def test_a_domain_is_named_after_what_most_of_its_categories_hold_not_a_generic_corpus_label():
    import numpy as np

    from synthesis.mcp_tree.tree import TreeConfig, build_tree

    rng = np.random.default_rng(3)
    # one domain: two identity topics and one calendar topic, all of APIs labelled
    # "developer_tools" (as APIs.guru labels Microsoft Graph); another of "financial" APIs
    topics = ["group members add", "user roles assign", "calendar view events",
              "payment charge invoice", "refund payment card", "invoice tax ledger"]
    centers = rng.normal(size=(2, 16))
    emb = np.concatenate([centers[t // 3] + 0.1 * rng.normal(size=(40, 16)) for t in range(6)]).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    texts = [f"{topics[i // 40]} op{i % 9}" for i in range(len(emb))]
    cats = [["developer_tools"] if i < 120 else ["financial"] for i in range(len(emb))]
    tree = build_tree(emb, texts, cats, config=TreeConfig(n_domains=2, n_categories=6, seed=0))
    by_name = {d.name: d for d in tree.domains()}
    assert set(by_name) == {"Identity & Access", "Finance & Payments"}, by_name.keys()
    assert by_name["Identity & Access"].name_source == "categories-theme"
    assert by_name["Finance & Payments"].name_source == "corpus-category"  # a label that says what it is
    assert set(range(120)) == set(by_name["Identity & Access"].members)


def test_theme_names_come_from_the_domain_keywords_and_are_never_taken_twice():
    from synthesis.mcp_tree.tree import THEMES, theme_name

    assert theme_name(["users", "groups", "roles"], set()) == "Identity & Access"
    assert theme_name(["subscriptions", "resourcegroups", "deployments"], set()) == "Cloud Resources"
    assert theme_name(["automation accounts", "runbooks"], set()) == "Automation & Jobs"
    # a taken theme gives way to the next one the words point to, else to no theme at all
    assert theme_name(["users", "settings", "preferences"], {"Identity & Access"}) == "Configuration"
    assert theme_name(["users"], {"Identity & Access"}) == ""
    # a weak hint (one word far down the list) names nothing
    assert theme_name(["zebra", "quux", "flux", "users"], set()) == ""
    assert all(0 < len(t) <= 40 for t in THEMES) and len(set(THEMES)) == len(THEMES)


def test_no_domain_holds_more_than_its_share():
    import numpy as np

    from synthesis.mcp_tree.tree import TreeConfig, build_tree

    rng = np.random.default_rng(2)
    # one topic holds half the corpus: left alone, k-means gives it the largest domain
    centers = rng.normal(size=(10, 16))
    sizes = [500] + [55] * 9
    emb = np.concatenate([c + 0.1 * rng.normal(size=(m, 16)) for c, m in zip(centers, sizes, strict=True)]).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    texts = [f"topic{t} thing{i % 5}" for t, m in enumerate(sizes) for i in range(m)]
    cfg = TreeConfig(n_domains=10, n_categories=20, seed=0, max_domain_share=0.15)
    tree = build_tree(emb, texts, config=cfg)
    n = len(emb)
    assert max(len(d.members) for d in tree.domains()) <= int(np.ceil(0.15 * n))
    assert sum(len(d.members) for d in tree.domains()) == n
    # fewer domains than 1/share force a larger cap: ceil(n/k)
    tree3 = build_tree(emb, texts, config=TreeConfig(n_domains=3, n_categories=6, seed=0))
    assert max(len(d.members) for d in tree3.domains()) <= int(np.ceil(n / 3))


def test_every_category_holds_at_least_the_minimum():
    import numpy as np

    from synthesis.mcp_tree.tree import TreeConfig, build_tree

    rng = np.random.default_rng(3)
    emb = rng.normal(size=(300, 16)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    texts = [f"word{i % 13} other{i % 7}" for i in range(300)]
    tree = build_tree(emb, texts, config=TreeConfig(n_domains=4, n_categories=40, seed=0, min_category_size=12))
    assert min(len(c.members) for c in tree.categories()) >= 12
    assert sum(len(c.members) for c in tree.categories()) == 300


def test_llm_names_are_checked_and_fall_back_to_keywords():
    from types import SimpleNamespace

    from synthesis.mcp_tree.tree import make_llm_namer, name_is_acceptable

    assert name_is_acceptable("Payments", set())
    assert not name_is_acceptable("", set())
    assert not name_is_acceptable("User & Users", set()), "plural of the same word"
    assert not name_is_acceptable("payments", {"Payments"})
    assert not name_is_acceptable("Payment Links", {"Payments"}), "a taken word's stem"
    assert not name_is_acceptable("A Very Long Name With Many Words", set())

    class Fixed:
        def __init__(self, text):
            self.text = text

        def complete(self, request):
            return SimpleNamespace(text=self.text)  # the namer reads only .text

    assert make_llm_namer(Fixed('{"name": "Weather"}'))("domain", ["forecast"], [], set()) == "Weather"
    fallback = make_llm_namer(Fixed('{"name": "Users & User"}'))("domain", ["billing", "invoice"], [], {"Weather"})
    assert fallback == "Billing"


def test_many_rows_cluster_in_mini_batches_and_find_the_same_groups(monkeypatch):
    import sklearn.cluster

    from synthesis.mcp_tree import tree as tree_module

    rng = np.random.default_rng(0)
    centers = np.eye(3, 8, dtype=np.float32) * 5
    x = np.vstack([c + rng.normal(scale=0.3, size=(1500, 8)).astype(np.float32) for c in centers])
    truth = np.repeat(np.arange(3), 1500)
    used = []
    real = sklearn.cluster.MiniBatchKMeans

    class Spy(real):
        def fit_predict(self, *args, **kwargs):
            used.append(self.batch_size)
            return super().fit_predict(*args, **kwargs)

    monkeypatch.setattr(sklearn.cluster, "MiniBatchKMeans", Spy)
    labels = tree_module._kmeans(x, 3, "k-means++", 0, 100, minibatch_above=1000)
    assert used == [tree_module.MINIBATCH_SIZE]
    # every true group lands in one cluster, and no two groups share one
    assert {len(set(labels[truth == g])) for g in range(3)} == {1} and len(set(labels)) == 3
    small = tree_module._kmeans(x[:900], 2, "k-means++", 0, 100, minibatch_above=1000)
    assert used == [tree_module.MINIBATCH_SIZE] and len(set(small)) == 2  # full k-means below the bound


def test_resource_phrases_are_the_nouns_a_path_names():
    from synthesis.mcp_tree.tree import resource_phrases

    assert resource_phrases("/v1/{parent}/backupPlans/{id}:restore") == ["backup plans"]
    assert resource_phrases("/users/{userId}/playlists") == ["users", "playlists"]
    assert resource_phrases("/api/v2/accounts/{id}/unblock") == ["accounts"], "an action on an id is no resource"
    assert resource_phrases("/2015-01-01/tags/{ARN}") == ["tags"]
    assert resource_phrases("/#X-Amz-Target=Foo.Bar") == [] and resource_phrases("") == []
    assert resource_phrases("/servers/start") == ["servers"], "an action is no resource"
    # Mastodon's category "Dismiss" on the sample corpus
    assert resource_phrases("/api/v1/notifications/dismiss") == ["notifications"]
    azure = "/subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.Compute/virtualMachines/{vm}"
    assert resource_phrases(azure) == ["subscriptions", "virtual machines"]
    # path words that named categories on the corpus ("Pvt", "Resourcegroups")
    assert resource_phrases("/subscriptions/{s}/resourcegroups/{g}/deployments") == ["subscriptions", "deployments"]
    assert resource_phrases("/api/catalog/pvt/product/{id}") == ["catalog", "product"]


def test_names_spell_acronyms_and_brands_as_people_do():
    from synthesis.mcp_tree.tree import _keyword_name

    assert _keyword_name(["oauth"], set()) == "OAuth"
    assert _keyword_name(["dns records", "zones"], {"DNS"}) == "Zones"
    assert _keyword_name(["github", "repos"], set()) == "GitHub"


def test_categories_are_named_after_their_resources_and_shared_seeds_after_their_own_category():
    import numpy as np

    from synthesis.mcp_tree.tree import TreeConfig, build_tree

    rng = np.random.default_rng(4)
    centers = rng.normal(size=(4, 16))
    emb = np.concatenate([c + 0.05 * rng.normal(size=(40, 16)) for c in centers]).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    # Two clusters are social APIs, two education APIs: both map to "Social & Education".
    raw = ["social", "social", "education", "education"]
    res = [["followers"], ["posts"], ["students"], ["courses"]]
    texts = [f"get the thing number{i % 9} by its id" for i in range(160)]
    tree = build_tree(
        emb, texts, [[raw[i // 40]] for i in range(160)], sources=[f"api{i // 4}" for i in range(160)],
        resources=[res[i // 40] for i in range(160)],
        config=TreeConfig(n_domains=2, n_categories=4, seed=0),
    )
    assert sorted(d.name for d in tree.domains()) == ["Education", "Social"]
    assert {d.name_source for d in tree.domains()} == {"corpus-category"}
    assert sorted(c.name for c in tree.categories()) == ["Courses", "Followers", "Posts", "Students"]


def test_a_resource_every_operation_of_an_api_names_is_its_frame_and_names_no_node():
    import numpy as np

    from synthesis.mcp_tree.tree import TreeConfig, build_tree

    rng = np.random.default_rng(4)
    # Azure-like APIs: every path starts /subscriptions/{id}/...; what each acts on differs
    leaves = ["servers", "databases", "vaults", "disks"]
    centers = rng.normal(size=(4, 16))
    emb = np.concatenate([c + 0.05 * rng.normal(size=(30, 16)) for c in centers]).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    texts = [f"manage {leaves[i // 30]} op{i % 7}" for i in range(len(emb))]
    sources = [f"azure.com/{leaves[i // 30]}-{i % 5}" for i in range(len(emb))]  # 5 APIs per leaf, 6 tools each
    resources = [["subscriptions", leaves[i // 30]] for i in range(len(emb))]
    tree = build_tree(emb, texts, sources=sources, resources=resources,
                      config=TreeConfig(n_domains=2, n_categories=4, seed=0))
    names = " ".join(n.name.lower() for n in tree.nodes)
    assert "subscription" not in names, names
    assert {c.name.lower() for c in tree.categories()} & set(leaves), names
