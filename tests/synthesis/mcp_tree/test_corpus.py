import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from synthesis.mcp_tree.corpus import corpus_dir, iter_corpus_specs, sample_specs, spec_categories
from synthesis.mcp_tree.openapi import SpecError, convert_spec

REPO = Path(__file__).resolve().parents[3]
CORPUS = corpus_dir(REPO / "var")


def test_package_imports_without_django():
    code = (
        "import sys; import synthesis.mcp_tree.corpus, synthesis.mcp_tree.openapi, "
        "synthesis.mcp_tree.dedup, synthesis.mcp_tree.tree; "
        "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules), 'django imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_iter_and_sample_on_a_fake_corpus(tmp_path):
    api = tmp_path / "api"
    for i, cat in enumerate(["media", "payment", "media", "iot", "payment", "email"]):
        d = api / f"p{i}.com"
        d.mkdir(parents=True)
        pad = "x" * 5000
        body = f'{{"openapi": "3.0.0", "info": {{"x-apisguru-categories": ["{cat}"]}}, "pad": "{pad}"}}'
        (d / "svc.json").write_text(body)
    (api / "_index.js").write_text("")
    paths = list(iter_corpus_specs(tmp_path))
    assert len(paths) == 6 and paths == sorted(paths)
    assert list(iter_corpus_specs(tmp_path, only="p3")) == [api / "p3.com" / "svc.json"]
    shuffled = list(iter_corpus_specs(tmp_path, seed=1, limit=4))
    assert len(shuffled) == 4 and shuffled == list(iter_corpus_specs(tmp_path, seed=1, limit=4))
    sample = sample_specs(tmp_path, n=4)
    assert len(sample) == 4 and sample == sample_specs(tmp_path, n=4)
    assert len({spec_categories(p)[0] for p in sample}) == 4  # one per category first


@pytest.mark.skipif(
    not (CORPUS / "api").is_dir(), reason="corpus not installed (make run installs it)"
)
def test_real_corpus_sample_converts_to_valid_schemas():
    meta = jsonschema.Draft202012Validator(
        jsonschema.Draft202012Validator.META_SCHEMA, format_checker=jsonschema.FormatChecker()
    )
    converted = 0
    for path in sample_specs(CORPUS, n=15):
        try:
            result = convert_spec(path)
        except SpecError as exc:
            assert exc.reason_code in {"no_operations", "no_valid_operations"}
            continue
        for tool in result.tools:
            meta.validate(tool.input_schema)
            if tool.output_schema is not None:
                meta.validate(tool.output_schema)
            converted += 1
    assert converted > 50
