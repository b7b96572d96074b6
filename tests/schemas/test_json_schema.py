from schemas.json_schema import SCHEMA_DIR, generated_schemas


def test_the_committed_json_schemas_match_the_models() -> None:
    stale = []
    for name, content in generated_schemas().items():
        path = SCHEMA_DIR / name
        if not path.exists() or path.read_text() != content:
            stale.append(name)
    assert not stale, f"stale JSON Schemas {stale}: run `python -m schemas.json_schema` and commit the result"


def test_no_committed_schema_is_left_over_from_a_removed_model() -> None:
    committed = {str(p.relative_to(SCHEMA_DIR)) for p in SCHEMA_DIR.rglob("*.json")}
    assert committed == set(generated_schemas())
