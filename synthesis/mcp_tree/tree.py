"""The MCP Tree: tools grouped into domains and long-tail categories.

Two levels.  Domains come from k-means over the tool embeddings joined with a weighted
one-hot of each tool's seed domain (tools weighted by 1/sqrt(size of their API), so that
Microsoft Graph's 33,000 operations do not make up most of the tree) (its APIs.guru categories mapped through
:data:`DOMAIN_OF_CATEGORY`), started from the seed domains' centroids: the corpus's own
labels steer the domains, the embeddings move tools whose API-level label does not fit
them.  Categories are k-means sub-clusters inside each domain, their number shared out by
domain size.  Categories are found before any name is chosen.  A domain is named after
its APIs.guru label where that label says what it holds ("Finance & Payments"); where the
label is generic (:data:`GENERIC_CATEGORIES`: "Developer Tools", "Cloud") or there is none,
after the theme (:data:`THEMES`) that categories holding most of its tools point to
("Identity & Access" for Groups and Calendar View), else after its two largest categories'
own words.  Categories are named from distinctive resource phrases and keywords (c-TF-IDF).
An optional ``namer`` callable (e.g. :func:`make_llm_namer`) names every node instead.

Public API
----------
``build_tree(embeddings, texts, categories=None, *, sources=None, config=TreeConfig(), namer=None) -> ToolTree``
    ``embeddings``: unit-norm rows, one per tool; ``texts``: one per tool (e.g.
    :func:`synthesis.mcp_tree.dedup.tool_text`); ``categories``: per tool, its API's
    APIs.guru categories (``ToolDef.source.categories``), may be empty; ``sources``: per
    tool, its API (:func:`synthesis.mcp_tree.dedup.source_id`), so that keywords count
    APIs rather than tools.
``ToolTree.nodes``: :class:`TreeNode` list (domains first, then categories);
``ToolTree.category_of``: per tool, the key of its category node.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from synthesis.llm.base import LLMBackend

DOMAIN_OF_CATEGORY: dict[str, str] = {
    "cloud": "Cloud & Infrastructure",
    "hosting": "Cloud & Infrastructure",
    "backend": "Cloud & Infrastructure",
    "storage": "Cloud & Infrastructure",
    "monitoring": "Cloud & Infrastructure",
    "developer_tools": "Developer Tools",
    "tools": "Developer Tools",
    "analytics": "Data & Analytics",
    "open_data": "Data & Analytics",
    "ecommerce": "Commerce",
    "marketing": "Marketing & Customer Relations",
    "customer_relation": "Marketing & Customer Relations",
    "support": "Marketing & Customer Relations",
    "financial": "Finance & Payments",
    "payment": "Finance & Payments",
    "media": "Media & Entertainment",
    "entertainment": "Media & Entertainment",
    "telecom": "Messaging & Telecom",
    "messaging": "Messaging & Telecom",
    "email": "Messaging & Telecom",
    "social": "Social & Education",
    "education": "Social & Education",
    "text": "Text, Search & AI",
    "machine_learning": "Text, Search & AI",
    "search": "Text, Search & AI",
    "location": "Location & Transport",
    "transport": "Location & Transport",
    "collaboration": "Productivity & Collaboration",
    "project_management": "Productivity & Collaboration",
    "time_management": "Productivity & Collaboration",
    "forms": "Productivity & Collaboration",
    "enterprise": "Enterprise",
    "security": "Security & Identity",
    "iot": "IoT & Devices",
}

# How a person writes an APIs.guru category as a name (the rest: capitalised).
CATEGORY_LABEL: dict[str, str] = {
    "customer_relation": "Customer Relations",
    "developer_tools": "Developer Tools",
    "ecommerce": "E-commerce",
    "financial": "Finance",
    "iot": "IoT",
    "machine_learning": "Machine Learning",
    "open_data": "Open Data",
    "payment": "Payments",
    "project_management": "Project Management",
    "time_management": "Time Management",
    "text": "Text Processing",
    "tools": "Utilities",
}


# Themes a person names a domain by, and the resource words (singular) that point to each.
# A domain that no APIs.guru category names (none holds 30% of its tools) is named by the
# theme its distinctive resource phrases and keywords point to most ("Identity & Access",
# not "Users"), else by its keywords.
THEMES: dict[str, tuple[str, ...]] = {
    "Identity & Access": ("user", "group", "member", "role", "permission", "identity", "auth", "login", "account",
                          "directory", "principal", "owner", "invitation", "policy", "access", "token"),
    "Cloud Resources": ("subscription", "resourcegroup", "resource group", "deployment", "server", "cluster",
                        "instance", "virtual machine", "vm", "network", "location", "region", "provider",
                        "container", "node", "disk", "snapshot", "image"),
    "Security & Secrets": ("key", "secret", "certificate", "vault", "encryption", "firewall", "threat", "alert",
                           "vulnerability", "credential"),
    "Automation & Jobs": ("automation account", "automation", "runbook", "job", "schedule", "workflow", "trigger",
                          "pipeline", "task", "run", "webhook"),
    "Configuration": ("setting", "configuration", "config", "preference", "option", "property", "feature"),
    "Files & Documents": ("file", "document", "drive", "folder", "attachment", "upload", "page", "note"),
    "Monitoring & Logs": ("log", "metric", "monitor", "diagnostic", "event", "incident", "trace", "stat",
                          "report", "usage"),
    "Projects & Teams": ("project", "team", "board", "issue", "sprint", "milestone", "workspace", "assignment"),
    "Messaging": ("message", "channel", "chat", "conversation", "mail", "email", "sms", "notification", "thread"),
    "Data Stores": ("database", "table", "query", "record", "dataset", "collection", "index", "schema", "backup"),
    "Tagging & Metadata": ("tag", "label", "metadata", "annotation", "category"),
    "Devices & IoT": ("device", "sensor", "gateway", "hub", "thing"),
    "Calendars & Events": ("calendar", "meeting", "appointment", "booking", "reservation"),
    "Content & Media": ("video", "photo", "image", "playlist", "episode", "track", "album", "stream", "media"),
    "Commerce & Orders": ("product", "order", "cart", "customer", "invoice", "price", "catalog", "inventory",
                          "shipment", "payment", "transaction"),
}
_THEME_OF: dict[str, str] = {w: theme for theme, words in THEMES.items() for w in words}


def _singulars(word: str) -> list[str]:
    """``word`` and the singulars it may be the plural of: "messages" -> messages, message, messag."""
    out = [word]
    if word.endswith("ies"):
        out.append(word[:-3] + "y")
    if word.endswith("s"):
        out.append(word[:-1])
    if word.endswith("es"):
        out.append(word[:-2])
    return out


def theme_name(keywords: Sequence[str], taken: set[str], min_score: float = 0.5) -> str:
    """The theme (:data:`THEMES`) that ``keywords`` (most distinctive first) point to most,
    each counting 1 / (1 + its rank); "" when none scores ``min_score`` or the best are taken.

    >>> theme_name(["users", "groups", "settings"], set())
    'Identity & Access'
    >>> theme_name(["users", "groups"], {"Identity & Access"})
    ''
    >>> theme_name(["zebra", "quux"], set())
    ''
    """
    score: Counter[str] = Counter()
    for rank, word in enumerate(keywords[:10]):
        w = word.lower().strip()
        # the phrase, else its last word ("automation accounts", then "accounts"), singular or not
        forms = [f for p in dict.fromkeys([w, w.split()[-1] if w else ""]) for f in _singulars(p)]
        theme = next((_THEME_OF[f] for f in forms if f in _THEME_OF), None)
        if theme:
            score[theme] += 1.0 / (1 + rank)
    for theme, value in score.most_common():
        if value < min_score:
            break
        if theme not in taken:
            return theme
    return ""


def category_label(category: str) -> str:
    return CATEGORY_LABEL.get(category) or category.replace("_", " ").strip().title()


# Path segments that name no resource.
_PATH_NOISE = frozenset(
    """api apis rest v1 v2 v3 v4 v5 beta alpha json xml public private internal service services
    admin me self batch bulk search query find list get all info providers pvt""".split()
    # Azure Resource Manager's scaffolding, in front of every Azure path (some spell it as
    # one word: /resourcegroups/{name})
    + ["resource groups", "resourcegroups"]
)
# Actions that paths spell as segments (/servers/{id}/start): they name no resource.
_PATH_VERBS = frozenset(
    """start stop restart reboot run execute sync send play pause resume reset enable disable
    register unregister verify validate upload download import export cancel approve reject
    login logout signin signout signup authorize authenticate refresh revoke activate deactivate
    publish unpublish archive unarchive restore test check lock unlock move copy merge
    subscribe unsubscribe invite accept decline confirm assign unassign attach detach
    dismiss mute unmute block follow pin favourite favorite reblog unreblog bookmark unbookmark react
    vote clear flush purge rotate renew retry rerun trigger ping hide unhide mark acknowledge resolve
    reopen close suspend redeem void capture rollback resize promote rebuild reindex recalculate""".split()
)
_VERSION_RE = re.compile(r"^(v\d+([._]\d+)*|\d+([._-]\d+)*|[a-z]?\d{4}-\d{2}-\d{2})$", re.I)
_CAMEL_RE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|[_\-.\s]+")


def resource_phrases(path: str) -> list[str]:
    """The resources an operation's path names, as lower-case phrases a person would write:
    ``/v1/{parent}/backupPlans/{id}:restore`` gives ``["backup plans"]``."""
    out: list[str] = []
    segs = (path or "").split("?")[0].split("/")
    for k, seg in enumerate(segs):
        seg = seg.split(":")[0]
        if not seg or "{" in seg or "=" in seg or seg.startswith(("#", "$", "@")) or _VERSION_RE.match(seg):
            continue
        if "." in seg:  # a namespace (Microsoft.Compute) or a file (swagger.json), not a resource
            continue
        words = [w.lower() for w in _CAMEL_RE.split(seg) if w]
        # The last segment after an id is mostly an action on it (/accounts/{id}/unblock),
        # unless it is plural (/users/{id}/playlists).
        after_id = k > 0 and "{" in segs[k - 1]
        if after_id and k == len(segs) - 1 and words and not words[-1].endswith("s"):
            continue
        if not words or not all(w.isalpha() and len(w) > 1 for w in words) or len(words) > 3:
            continue
        phrase = " ".join(words)
        if phrase in _PATH_NOISE or len(phrase) < 3 or all(w in _STOP for w in words) or words[0] in _PATH_VERBS:
            continue
        if phrase not in out:
            out.append(phrase)
    return out


# Words every API uses; they name nothing.
_STOP = frozenset(
    """a an and are as at be by can for from get gets has have if in into is it its list lists
    of on or per set sets that the their this to use used using via when which will with you your
    api apis id ids request requests response responses returns return returned parameter
    parameters object objects value values specified specify given new create creates created
    update updates updated delete deletes deleted retrieve retrieves retrieved information
    details detail data operation operations resource resources property properties field fields
    type types name names string true false null one all any more may must only also other
    see e g i etc not no default current based number item items entity entities collection
    navigation odata select expand filter top skip count orderby search format version
    post put patch head options limit offset page size since until key token sid specific
    required optional accept array show view execute modify remove add existing provided
    first last next previous true without within about after before https http www com
    description summary example examples result results status code error errors
    remove removes removed deleting cancel cancels replace replaces edit edits describe
    describes adds added change changes changed sorted available partial found doesn fail
    maximum minimum allows lets creates creating updating getting listing returns gets fetch
    specific specified associated related existing certain various multiple single
    """.split()
)
_WORD_RE = re.compile(r"[A-Za-z][a-z]+|[A-Z]{2,}(?![a-z])")


@dataclass(slots=True)
class TreeConfig:
    n_domains: int = field(default=15, metadata={"help": "domains (level 1)"})
    n_categories: int = field(
        default=40, metadata={"help": "categories in all (level 2), shared by domain size"}
    )
    seed_weight: float = field(
        default=0.35,
        metadata={"help": "pull of the APIs.guru seed domain against the embedding (0: none)"},
    )
    seed: int = field(default=0, metadata={"help": "k-means random state"})
    max_iter: int = field(default=100, metadata={"help": "k-means iterations"})
    keywords: int = field(default=6, metadata={"help": "keywords kept per node"})
    domain_of_category: dict[str, str] = field(default_factory=lambda: dict(DOMAIN_OF_CATEGORY))
    min_category_size: int = field(
        default=1, metadata={"help": "fewest tools a category may hold; smaller ones join their nearest sibling"}
    )
    max_domain_share: float = field(
        default=0.15,
        metadata={"help": "most of the tools one domain may hold (raised to 1/n_domains when fewer domains force it)"},
    )
    minibatch_above: int = field(
        default=20_000,
        metadata={"help": "cluster more rows than this with mini-batch k-means (bounded work per step)"},
    )

    def __post_init__(self) -> None:
        if self.n_domains < 1:
            raise ValueError(f"n_domains must be >= 1, got {self.n_domains}")
        if self.n_categories < self.n_domains:
            raise ValueError(
                f"n_categories ({self.n_categories}) must be >= n_domains ({self.n_domains}): "
                "every domain holds at least one category"
            )
        if self.seed_weight < 0:
            raise ValueError("seed_weight must be >= 0")


@dataclass(slots=True)
class TreeNode:
    key: str  # "d03" for a domain, "d03.c02" for a category
    level: int  # 1 = domain, 2 = category
    name: str
    parent: str | None  # the domain key of a category
    members: list[int]  # tool indices (a domain lists all tools of its categories)
    keywords: list[str] = field(default_factory=list)
    # How the name was chosen: "corpus-category" (APIs.guru x-apisguru-categories vote),
    # "categories-theme" (the theme most of a domain's categories point to), "keywords"
    # (c-TF-IDF keyphrases), "llm" (a configured namer).
    name_source: str = "keywords"


@dataclass(slots=True)
class ToolTree:
    nodes: list[TreeNode]
    category_of: list[str]  # per tool, its category key
    domain_of: list[str]  # per tool, its domain key

    def domains(self) -> list[TreeNode]:
        return [n for n in self.nodes if n.level == 1]

    def categories(self) -> list[TreeNode]:
        return [n for n in self.nodes if n.level == 2]

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodes": [
                {
                    "key": n.key,
                    "level": n.level,
                    "name": n.name,
                    "parent": n.parent,
                    "members": n.members,
                    "keywords": n.keywords,
                    "name_source": n.name_source,
                }
                for n in self.nodes
            ]
        }


# A namer gets the level ("domain" | "category"), the node's keywords, a few member texts
# and the names already taken; it returns a short name.
Namer = Callable[[str, list[str], list[str], set[str]], str]


def seed_domain(categories: Sequence[str], mapping: dict[str, str]) -> str | None:
    """The domain the first mapped APIs.guru category points to."""
    for c in categories:
        d = mapping.get(c)
        if d:
            return d
    return None


MINIBATCH_SIZE = 4096


def _kmeans(
    x: np.ndarray,
    k: int,
    init: np.ndarray | str,
    seed: int,
    max_iter: int,
    weight: np.ndarray | None = None,
    minibatch_above: int = 20_000,
) -> np.ndarray:
    """k-means labels; above ``minibatch_above`` rows, scikit-learn's MiniBatchKMeans, whose
    steps each read ``MINIBATCH_SIZE`` rows instead of all of them."""
    from sklearn.cluster import KMeans, MiniBatchKMeans

    if len(x) > minibatch_above:
        km = MiniBatchKMeans(n_clusters=k, init=init, n_init=1, random_state=seed, max_iter=max_iter,
                             batch_size=MINIBATCH_SIZE)
    else:
        km = KMeans(n_clusters=k, init=init, n_init=1, random_state=seed, max_iter=max_iter)
    return km.fit_predict(x, sample_weight=weight)


def _absorb_tiny(
    labels: np.ndarray, x: np.ndarray, weight: np.ndarray, k: int, cfg: TreeConfig
) -> np.ndarray:
    """Fold clusters of a few outliers into their nearest neighbour, splitting the heaviest
    cluster in two instead, so that the tree keeps ``k`` domains of useful size."""
    labels = np.asarray(labels).copy()
    n = len(labels)
    min_size = max(3, int(0.005 * n))
    for _ in range(k):
        sizes = np.bincount(labels, minlength=k)
        tiny = [d for d in range(k) if 0 < sizes[d] < min_size]
        if not tiny or n < 2 * min_size * k:
            break
        d = tiny[0]
        others = [e for e in range(k) if e != d and sizes[e] > 0]
        cents = np.vstack([x[labels == e].mean(axis=0) for e in others])
        for i in np.flatnonzero(labels == d):
            labels[i] = others[int(np.argmin(((cents - x[i]) ** 2).sum(axis=1)))]
        heavy = int(np.argmax(np.bincount(labels, weights=weight, minlength=k)))
        idx = np.flatnonzero(labels == heavy)
        if len(idx) < 2 * min_size:
            break
        halves = _kmeans(x[idx], 2, "k-means++", cfg.seed, cfg.max_iter, weight[idx], cfg.minibatch_above)
        labels[idx[halves == 1]] = d
    return labels


def _merge_small(groups: list[list[int]], emb: np.ndarray, min_size: int) -> list[list[int]]:
    """Fold groups under ``min_size`` tools into the nearest sibling (by centroid), smallest first."""
    groups = [list(g) for g in groups]
    while len(groups) > 1:
        small = min(range(len(groups)), key=lambda i: (len(groups[i]), i))
        if len(groups[small]) >= min_size:
            break
        cent = np.vstack([emb[g].mean(axis=0) for g in groups])
        dist = ((cent - cent[small]) ** 2).sum(-1)
        dist[small] = np.inf
        target = int(dist.argmin())
        groups[target] = sorted(groups[target] + groups[small])
        del groups[small]
    return sorted(groups, key=lambda g: (-len(g), g[0]))


def _cap_domains(labels: np.ndarray, features: np.ndarray, k: int, max_share: float) -> np.ndarray:
    """Move tools out of domains above ``max_share`` of all tools into their nearest domain with room.

    The tools that move are those closest to another domain's center (smallest loss), so an
    oversized domain sheds its border first. With k domains no cap below 1/k is possible: the
    cap is then raised to ceil(n/k), which is where the corpus forces it.
    """
    n = len(labels)
    if k <= 1 or n == 0:
        return labels
    cap = max(int(np.ceil(max_share * n)), int(np.ceil(n / k)))
    labels = labels.copy()
    sizes = np.bincount(labels, minlength=k)
    if sizes.max() <= cap:
        return labels
    centers = np.vstack([
        features[labels == d].mean(axis=0) if sizes[d] else np.full(features.shape[1], np.inf) for d in range(k)
    ])
    centers = np.nan_to_num(centers, posinf=1e6)
    for d in np.argsort(-sizes):
        excess = int(sizes[d] - cap)
        if excess <= 0:
            continue
        members = np.flatnonzero(labels == d)
        # in chunks, so a large corpus never makes an n x k distance matrix at once
        best_other = np.empty(len(members), dtype=int)
        loss = np.empty(len(members), dtype=np.float32)
        for a in range(0, len(members), 8192):
            part = members[a : a + 8192]
            dist = ((features[part, None, :] - centers[None, :, :]) ** 2).sum(-1)
            own = dist[:, d].copy()
            dist[:, d] = np.inf
            dist[:, sizes >= cap] = np.inf
            best_other[a : a + len(part)] = dist.argmin(1)
            loss[a : a + len(part)] = dist.min(1) - own
        for j in np.argsort(loss, kind="stable"):
            if excess <= 0:
                break
            target = best_other[j]
            if sizes[target] >= cap:  # filled meanwhile: next nearest with room
                room = np.flatnonzero(sizes < cap)
                room = room[room != d]
                if not len(room):
                    break
                target = room[((centers[room] - features[members[j]]) ** 2).sum(-1).argmin()]
            labels[members[j]] = target
            sizes[target] += 1
            sizes[d] -= 1
            excess -= 1
    return labels


def _source_weights(sources: Sequence[str] | None, n: int) -> np.ndarray:
    """1/sqrt(tools of the same API): one API with 20,000 operations must not own the tree."""
    if sources is None:
        return np.ones(n, dtype=np.float64)
    counts = Counter(sources)
    return np.array([1.0 / np.sqrt(counts[s]) for s in sources], dtype=np.float64)


def _more_centers(
    x: np.ndarray, centers: list[np.ndarray], k: int, seed: int, weight: np.ndarray
) -> list[np.ndarray]:
    """k-means++ continued from the seed centers: new ones where no seed domain reaches."""
    rng = np.random.default_rng(seed)
    centers = list(centers)
    if not centers:
        centers.append(x[rng.integers(len(x))])
    d2 = np.full(len(x), np.inf)
    for c in centers:
        d2 = np.minimum(d2, ((x - c) ** 2).sum(-1))
    while len(centers) < k:
        score = d2 * weight
        total = float(score.sum())
        i = int(rng.choice(len(x), p=score / total)) if total > 0 else int(rng.integers(len(x)))
        centers.append(x[i])
        d2 = np.minimum(d2, ((x - x[i]) ** 2).sum(-1))
    return centers


def _share(total: int, sizes: list[float], floor: int = 1) -> list[int]:
    """Split ``total`` slots in proportion to ``sizes`` (largest remainder), each >= floor."""
    n = len(sizes)
    alloc = [floor] * n
    left = total - floor * n
    if left <= 0:
        return alloc
    weight = sum(sizes) or 1
    exact = [left * s / weight for s in sizes]
    base = [int(e) for e in exact]
    for i, b in enumerate(base):
        alloc[i] += b
    rest = left - sum(base)
    for i in sorted(range(n), key=lambda i: (-(exact[i] - base[i]), i))[:rest]:
        alloc[i] += 1
    return alloc


class _Keywords:
    """c-TF-IDF over tool texts: words frequent in a cluster and rare in the others."""

    def __init__(self, texts: Sequence[str] | Sequence[Sequence[str]], sources: Sequence[str] | None = None):
        """``texts``: one text per tool, or one list of ready terms (phrases) per tool."""
        ready = bool(texts) and not isinstance(texts[0], str)
        if not ready:
            # Parameter lists name fields, not what the tools are about.
            texts = [t.split(" Parameters: ", 1)[0] for t in texts]  # type: ignore[union-attr]
        self.sources = np.asarray(sources) if sources is not None else None
        from sklearn.feature_extraction.text import CountVectorizer

        self.vec = CountVectorizer(
            tokenizer=list if ready else self._tokens,
            preprocessor=(lambda terms: terms) if ready else None,
            lowercase=False,
            token_pattern=None,
            min_df=2 if len(texts) > 50 else 1,
        )
        try:
            self.counts = self.vec.fit_transform(texts).tocsr()
            self.vocab = np.array(self.vec.get_feature_names_out())
        except ValueError:  # nothing but stop words
            self.counts = None
            self.vocab = np.array([])

    @staticmethod
    def _tokens(text: str) -> list[str]:
        words = (w.lower() for w in _WORD_RE.findall(text))
        return [w for w in words if len(w) > 2 and w not in _STOP]

    def _group_counts(self, group: list[int]) -> np.ndarray:
        assert self.counts is not None
        if not group:
            return np.zeros(self.counts.shape[1])
        rows = self.counts[group]
        if self.sources is None:
            return np.asarray(rows.sum(axis=0)).ravel()
        # Count the APIs that use a word, not the tools: one big API (11,000 Graph tools)
        # must not name a whole cluster after itself.
        from scipy import sparse

        _, owner = np.unique(self.sources[group], return_inverse=True)
        onehot = sparse.csr_matrix(
            (np.ones(len(group)), (owner, np.arange(len(group)))),
            shape=(owner.max() + 1, len(group)),
        )
        per_source = (onehot @ rows) > 0
        return (
            np.asarray(per_source.sum(axis=0)).ravel() + 0.01 * np.asarray(rows.sum(axis=0)).ravel()
        )

    def top(self, groups: list[list[int]], k: int) -> list[list[str]]:
        if self.counts is None or not groups:
            return [[] for _ in groups]
        tf = np.vstack([self._group_counts(g) for g in groups])
        df = (tf > 0).sum(axis=0)
        idf = np.log1p(len(groups) / np.maximum(df, 1))
        score = (tf / np.maximum(tf.sum(axis=1, keepdims=True), 1)) * idf
        out = []
        for row in score:
            idx = np.argsort(-row, kind="stable")[:k]
            out.append([str(self.vocab[i]) for i in idx if row[i] > 0])
        return out


def _stem(word: str) -> str:
    w = word.lower().strip(",&:()")
    for suf in ("ies", "es", "s"):
        if w.endswith(suf) and len(w) > len(suf) + 2:
            return w[: -len(suf)] + ("y" if suf == "ies" else "")
    return w


# Words whose usual spelling is not a capital and lower case.
_CASED = {w.lower(): w for w in """OAuth API APIs SMS DNS IoT AI ML IP VPN SSL TLS URL URLs PDF SQL
    NoSQL AWS GCP CRM ERP SEO VM VMs SSH HTTP JSON XML CSV FAQ KPI GitHub GitLab YouTube PayPal
    LinkedIn iOS ID IDs SAML SSO JWT CDN RSS GPS NFT NFTs DevOps""".split()}


def _title(phrase: str) -> str:
    """``phrase`` as a name: each word capitalised, acronyms and brands as they are spelt.

    >>> _title("oauth tokens"), _title("dns records"), _title("SMS")
    ('OAuth Tokens', 'DNS Records', 'SMS')
    """
    return " ".join(_CASED.get(w.lower()) or (w if w.isupper() else w.capitalize()) for w in phrase.split())


def _stems(phrase: str) -> set[str]:
    return {_stem(w) for w in phrase.split()}


def _keyword_name(keywords: list[str], taken: set[str], avoid: set[str] = frozenset(),  # type: ignore[assignment]
                  *, pair: bool = False, scope: set[str] | None = None) -> str:
    """A short name a person would write: one keyword ("Payments"), else two ("Users & Billing");
    with ``pair``, two first ("Versions & Events", for a domain whose two largest categories
    are about versions and events).

    Skips words of the parent's name and words whose singular is already a word of a name in
    ``scope`` (default: every name taken), so "User, Users & Account" does not happen; a
    numeric suffix is the last resort.  A category's scope is its domain and its siblings: a
    word another domain's name holds ("Users & Groups") may still name the category of
    Microsoft Graph's user operations, which was "Instances" when it could not.
    """
    used = {_stem(w) for n in (taken if scope is None else scope) for w in n.split()} | {_stem(w) for w in avoid}
    avoid_stems = {_stem(a) for a in avoid}
    words = [w for w in keywords if w and not (_stems(w) & avoid_stems)] or list(keywords) or ["misc"]
    seen: set[str] = set()
    uniq = []
    for w in words:
        if _stem(w) not in seen:
            seen.add(_stem(w))
            uniq.append(w)
    free = [w for w in uniq if not (_stems(w) & used) and _title(w) not in taken]
    if pair and len(free) >= 2:
        # never two phrases of one word ("Fabric Locations & Locations")
        other = next((w for w in free[1:] if not (_stems(w) & _stems(free[0]))), None)
        name = f"{_title(free[0])} & {_title(other)}" if other else ""
        if name and name not in taken and len(name) <= 40:
            return name
    if free:
        return _title(free[0])
    for a, b in zip(uniq, uniq[1:], strict=False):
        name = f"{_title(a)} & {_title(b)}"
        if name not in taken and len(name) <= 40 and not (_stems(a) & _stems(b)):
            return name
    base = _title(uniq[0])
    name, i = base, 2
    while name in taken:
        name = f"{base} ({i})"
        i += 1
    return name


def build_tree(
    embeddings: np.ndarray,
    texts: Sequence[str],
    categories: Sequence[Sequence[str]] | None = None,
    *,
    sources: Sequence[str] | None = None,
    resources: Sequence[Sequence[str]] | None = None,
    config: TreeConfig | None = None,
    namer: Namer | None = None,
) -> ToolTree:
    """Cluster tools into domains and categories; deterministic for a given seed.

    ``resources``: per tool, the resource phrases its path names (:func:`resource_phrases`);
    categories are named after the most distinctive of them ("Backup Plans", "Playlists"),
    else after keywords of the texts.
    """
    cfg = config or TreeConfig()
    emb = np.ascontiguousarray(embeddings, dtype=np.float32)
    n = emb.shape[0]
    if n != len(texts) or any(x is not None and len(x) != n for x in (categories, sources, resources)):
        raise ValueError("embeddings, texts, categories, sources and resources must have one entry per tool")
    if n == 0:
        return ToolTree([], [], [])
    cats = categories if categories is not None else [()] * n
    seeds = [seed_domain(c, cfg.domain_of_category) for c in cats]
    kw = _Keywords(texts, sources)
    if resources is not None and sources is not None:
        resources = without_scaffolding(resources, sources)
    rkw = _Keywords([list(r) for r in resources], sources) if resources is not None and any(resources) else None

    # ---- domains
    n_dom = min(cfg.n_domains, n)
    seed_names = sorted({s for s in seeds if s})
    features = emb
    if seed_names and cfg.seed_weight > 0:
        onehot = np.zeros((n, len(seed_names)), dtype=np.float32)
        col = {name: i for i, name in enumerate(seed_names)}
        for i, s in enumerate(seeds):
            if s:
                onehot[i, col[s]] = cfg.seed_weight
        features = np.hstack([emb, onehot])
    weight = _source_weights(sources, n)
    by_seed: Counter[str] = Counter()
    for i, s in enumerate(seeds):
        if s:
            by_seed[s] += weight[i]
    total = float(weight.sum())
    centers = []
    # A seed domain earns its own starting center only with a fair share of the tools;
    # a center for a handful of tools stays a cluster of a handful.
    for name, w in sorted(by_seed.items(), key=lambda kv: (-kv[1], kv[0]))[:n_dom]:
        if w < 0.25 * total / n_dom:
            break
        rows = [i for i, s in enumerate(seeds) if s == name]
        centers.append(np.average(features[rows], axis=0, weights=weight[rows]))
    if len(centers) < n_dom:
        centers = _more_centers(features, centers, n_dom, cfg.seed, weight)
    labels = (
        _kmeans(features, n_dom, np.vstack(centers), cfg.seed, cfg.max_iter, weight, cfg.minibatch_above)
        if n_dom > 1
        else np.zeros(n, int)
    )
    labels = _absorb_tiny(labels, features, weight, n_dom, cfg)
    labels = _cap_domains(labels, features, n_dom, cfg.max_domain_share)
    dom_members = [np.flatnonzero(labels == d).tolist() for d in range(n_dom)]
    # Largest domain first, so keys read in order of importance and stay stable.
    dom_members = sorted((m for m in dom_members if m), key=lambda m: (-len(m), m[0]))
    dom_keywords = kw.top(dom_members, cfg.keywords)

    # ---- categories: k-means sub-clusters of each domain, their number shared out by size.
    # They are found before any name is chosen, so that a domain is named after what its
    # categories hold.
    n_cat = max(cfg.n_categories, len(dom_members))
    # Categories are shared out by the geometric mean of a domain's tools and of its weight
    # (APIs count by 1/sqrt(size)): by weight alone, a domain of a few huge APIs got one
    # category of 14,863 tools; by tools alone, those APIs would fill most categories.
    sizes = [float(np.sqrt(len(m) * weight[m].sum())) for m in dom_members]
    alloc = [min(a, len(m)) for a, m in zip(_share(n_cat, sizes), dom_members, strict=True)]
    dom_groups: list[list[list[int]]] = []
    for members, k in zip(dom_members, alloc, strict=True):
        members = sorted(members)
        if k > 1:
            sub = emb[members]
            from sklearn.cluster import kmeans_plusplus

            init, _ = kmeans_plusplus(
                sub, n_clusters=k, random_state=cfg.seed, sample_weight=weight[members]
            )
            sub_labels = _kmeans(sub, k, init, cfg.seed, cfg.max_iter, weight[members], cfg.minibatch_above)
            groups = [[members[j] for j in np.flatnonzero(sub_labels == c)] for c in range(k)]
            groups = sorted((g for g in groups if g), key=lambda g: (-len(g), g[0]))
            groups = _merge_small(groups, emb, cfg.min_category_size)
        else:
            groups = [list(members)]
        dom_groups.append(groups)
    # each category's distinctive words: its resource phrases first, then its keywords
    cat_words: list[list[list[str]]] = []
    for _members, words, groups in zip(dom_members, dom_keywords, dom_groups, strict=True):
        words_list = kw.top(groups, cfg.keywords) if len(groups) > 1 else [words]
        res_list = rkw.top(groups, cfg.keywords) if rkw is not None else [[] for _ in groups]
        cat_words.append([list(dict.fromkeys(r + w)) for r, w in zip(res_list, words_list, strict=True)])

    # ---- names
    nodes: list[TreeNode] = []
    taken: set[str] = set()
    domain_of = [""] * n
    # A seed domain that leads several domains names none of them: each is named after
    # its own most common APIs.guru category instead ("Education", not "Social &
    # Education: District").
    leads: Counter[str] = Counter()
    for members in dom_members:
        votes = Counter(seeds[i] for i in members if seeds[i])
        if votes and votes.most_common(1)[0][1] >= 0.3 * len(members):
            leads[votes.most_common(1)[0][0]] += 1
    dom_resources = rkw.top(dom_members, cfg.keywords) if rkw is not None else [[] for _ in dom_members]
    for d, (members, words) in enumerate(zip(dom_members, dom_keywords, strict=True)):
        key = f"d{d:02d}"
        source = "keywords"
        if namer is not None:
            name = namer("domain", words, [texts[i] for i in members[:8]], set(taken))
            source = getattr(namer, "last_source", "llm")
        else:
            votes = Counter(seeds[i] for i in members if seeds[i])
            name = ""
            top = votes.most_common(1)[0][0] if votes else ""
            voted = bool(votes) and votes[top] >= 0.3 * len(members)
            raw = [c for i in members for c in cats[i] if cfg.domain_of_category.get(c) == top] if voted else []
            generic = voted and _generic_vote(raw)
            # the label itself where this domain alone is led by it, else its APIs' own category
            label = top if leads[top] == 1 and top not in taken else _raw_category_name(raw, len(members), taken)
            if voted and not generic:
                name, source = label, "corpus-category"
            if not name:
                # what the categories hold: the theme most of the domain's tools point to
                name = categories_theme(dom_groups[d], cat_words[d], taken)
                source = "categories-theme"
            if not name and generic:
                name, source = label, "corpus-category"
            if not name:
                # else the largest categories' own words ("Versions & Events")
                source = "keywords"
                name = _keyword_name(_leading_words(dom_groups[d], cat_words[d]) + dom_resources[d] + words, taken,
                                     pair=True)
        name = _dedupe_name(name, taken)
        taken.add(name)
        nodes.append(TreeNode(key, 1, name, None, sorted(members), words, source))
        for i in members:
            domain_of[i] = key

    category_of = [""] * n
    cat_nodes: list[TreeNode] = []
    for dom, groups, words_per in zip(nodes, dom_groups, cat_words, strict=True):
        avoid = {w.lower().strip(",&:()") for w in dom.name.split()}
        siblings = {dom.name}
        for c, (group, words) in enumerate(zip(groups, words_per, strict=True)):
            key = f"{dom.key}.c{c:02d}"
            if namer is not None:
                name = namer("category", words, [texts[i] for i in group[:8]], set(taken))
                source = getattr(namer, "last_source", "llm")
            else:
                name, source = _keyword_name(words, taken, avoid, scope=siblings), "keywords"
            name = _dedupe_name(name, taken)
            taken.add(name)
            siblings.add(name)
            cat_nodes.append(TreeNode(key, 2, name, dom.key, sorted(group), words, source))
            for i in group:
                category_of[i] = key
    return ToolTree(nodes + cat_nodes, category_of, domain_of)


# APIs.guru categories that say little about what an API does: nearly every API is a
# tool for developers, and "cloud" holds storage, compute, mail and maps alike.  A domain
# they vote for is named after what its categories hold, where a theme covers most of it.
GENERIC_CATEGORIES = frozenset({"developer_tools", "tools", "cloud", "backend", "hosting", "enterprise"})


def without_scaffolding(
    resources: Sequence[Sequence[str]], sources: Sequence[str], share: float = 0.5, min_tools: int = 4
) -> list[list[str]]:
    """Each tool's resource phrases less its API's frame: a phrase that more than ``share`` of
    the API's operations name (Azure's ``/subscriptions/{id}/...``, Google's
    ``/projects/{p}/locations/{l}/...``) says where the API lives, not what an operation acts
    on.  APIs with fewer than ``min_tools`` operations keep every phrase, and an operation
    whose every phrase is frame keeps its last.

    >>> res = [["subscriptions", "servers"]] * 9 + [["subscriptions", "databases"]] * 8 + [["subscriptions", "vaults"]] * 8
    >>> out = without_scaffolding(res + [["orders"]], ["azure"] * 25 + ["shop"])
    >>> out[0], out[10], out[25]
    (['servers'], ['databases'], ['orders'])
    >>> without_scaffolding([["orders"]] * 20 + [["orders", "items"]] * 5, ["shop"] * 25)[::20]
    [['orders'], ['items']]
    """
    per_source: dict[str, Counter[str]] = {}
    sizes: Counter[str] = Counter(sources)
    for phrases, src in zip(resources, sources, strict=True):
        per_source.setdefault(src, Counter()).update(set(phrases))
    frame = {src: {p for p, c in counts.items() if c > share * sizes[src]}
             for src, counts in per_source.items() if sizes[src] >= min_tools}
    # an operation whose every phrase is frame keeps its last one (/orders/{id} in an API of orders)
    return [[p for p in phrases if p not in frame.get(src, ())] or list(phrases[-1:])
            for phrases, src in zip(resources, sources, strict=True)]


def _generic_vote(raw: list[str]) -> bool:
    """Whether the APIs.guru category that names a domain (the most common of ``raw``) is
    one of :data:`GENERIC_CATEGORIES`."""
    top = Counter(raw).most_common(1)
    return bool(top) and top[0][0] in GENERIC_CATEGORIES


def categories_theme(groups: list[list[int]], words: list[list[str]], taken: set[str], min_share: float = 0.5) -> str:
    """The theme (:data:`THEMES`) that the categories holding more than ``min_share`` of a
    domain's tools point to, each category by its own words; "" when none does or it is taken.

    >>> categories_theme([[0] * 80, [1] * 20], [["groups", "members"], ["calendar view", "events"]], set())
    'Identity & Access'
    >>> categories_theme([[0] * 40, [1] * 35, [2] * 25], [["versions"], ["events"], ["roles"]], set())
    ''
    >>> categories_theme([[0] * 32], [["domains", "connection monitors", "network watchers", "subscriptions"]], set())
    ''
    """
    total = sum(len(g) for g in groups) or 1
    votes: Counter[str] = Counter()
    for group, ws in zip(groups, words, strict=True):
        # a category points to a theme when its leading word does, or several of its words:
        # one word far down its list ("monitors" in Domains, tld, connection monitors, ...)
        # does not make a domain "Monitoring & Logs"
        theme = theme_name(ws, set(), min_score=0.8)
        if theme:
            votes[theme] += len(group)
    for theme, count in votes.most_common():
        if count <= min_share * total:
            break
        if theme not in taken:
            return theme
    return ""


def _leading_words(groups: list[list[int]], words: list[list[str]]) -> list[str]:
    """The first word of each of a domain's two largest categories."""
    order = sorted(range(len(groups)), key=lambda c: -len(groups[c]))
    return [words[c][0] for c in order[:2] if words[c]]


def _raw_category_name(raw: list[str], size: int, taken: set[str]) -> str:
    """The label of the most common APIs.guru category (at least 30% of ``size`` tools)
    whose label is not taken; "" when none qualifies."""
    for category, count in Counter(raw).most_common():
        label = category_label(category)
        if count >= 0.3 * size and label not in taken:
            return label
    return ""


def _dedupe_name(name: str, taken: set[str]) -> str:
    name = (name or "Misc").strip()[:80]
    base, i = name, 2
    while name in taken:
        name = f"{base} ({i})"
        i += 1
    return name


def name_is_acceptable(name: str, taken: set[str], *, max_words: int = 4, max_chars: int = 40) -> bool:
    """A proposed name passes when it is non-empty, short, not taken (case-insensitive), holds
    no word twice in singular/plural form, and shares no word stem with a name already taken."""
    words = name.replace("&", " ").replace(",", " ").split()
    if not words or len(name) > max_chars or len(words) > max_words:
        return False
    if name.lower() in {t.lower() for t in taken}:
        return False
    stems = [_stem(w) for w in words if w.lower() not in {"and", "of", "the"}]
    if len(stems) != len(set(stems)):
        return False
    used = {_stem(w) for t in taken for w in t.replace("&", " ").replace(",", " ").split()}
    return not (set(stems) & used)


def make_llm_namer(backend: LLMBackend, *, max_tokens: int = 24) -> Namer:
    """A namer that asks an LLM for a 1-4 word name; falls back to keywords on bad output."""
    from synthesis.llm.base import ChatRequest

    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 40}},
        "required": ["name"],
        "additionalProperties": False,
    }

    def namer(level: str, keywords: list[str], examples: list[str], taken: set[str]) -> str:
        import json

        prompt = (
            f"Name this {level} of API tools in 1 to 4 words (title case).\n"
            f"Keywords: {', '.join(keywords)}\nExample tools:\n- "
            + "\n- ".join(e[:160] for e in examples[:6])
            + (f"\nNames already used: {', '.join(sorted(taken)[:40])}" if taken else "")
        )
        res = backend.complete(
            ChatRequest(
                messages=[{"role": "user", "content": prompt}],
                json_schema=schema,
                max_tokens=max_tokens,
            )
        )
        try:
            name = str(json.loads(res.text)["name"]).strip()
        except (ValueError, KeyError, TypeError):
            name = ""
        if name_is_acceptable(name, taken):
            namer.last_source = "llm"  # type: ignore[attr-defined]
            return name
        namer.last_source = "keywords"  # type: ignore[attr-defined]
        return _keyword_name(keywords, taken)

    return namer
