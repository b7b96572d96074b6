import pytest

from kernel.redaction import (
    REDACTED,
    credential_query_names,
    literal_credentials,
    redact,
    redact_text,
    redact_values,
)


@pytest.mark.parametrize(
    ("text", "kept", "gone"),
    [
        ("GET https://alice:hunter2@crm.example.com/x", "crm.example.com/x", "hunter2"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", "Authorization", "eyJhbGci"),
        ("called https://api.example.com/v1?api_key=AKIA123456&page=2", "page=2", "AKIA123456"),
        ("called https://maps.example.com/?key=abcdef&q=zurich", "q=zurich", "abcdef"),
        ('{"client_secret": "abc", "name": "crm"}', '"name": "crm"', "abc"),
        ("X-Api-Key: k-123456\nAccept: json", "Accept: json", "k-123456"),
        ("sent token 0123456789abcdef to the API", "to the API", "0123456789abcdef"),
    ],
)
def test_text_that_carries_a_credential_keeps_everything_but_the_credential(text: str, kept: str, gone: str) -> None:
    redacted = redact_text(text)
    assert gone not in redacted
    assert kept in redacted
    assert REDACTED in redacted


def test_ordinary_text_is_left_alone() -> None:
    text = "GET https://api.example.com/v1/items?page=2 answered 503 after 1.2 s"
    assert redact_text(text) == text


def test_headers_with_a_credentials_name_and_a_plain_value_are_literal_credentials() -> None:
    headers = {"Authorization": "Bearer x", "X-Api-Key": {"secret": "k"}, "Accept": "json", "Cookie": "s=1"}
    assert literal_credentials(headers) == ["Authorization", "Cookie"]


def test_query_parameters_named_like_credentials_are_found() -> None:
    url = "https://api.example.com/?page=1&access_token=x&sig=y&q=z&key=k"
    assert credential_query_names(url) == ["access_token", "sig", "key"]


def test_parameters_are_redacted_field_by_field_and_a_secret_reference_is_kept() -> None:
    parameters = {
        "url": "https://u:p@example.com/",
        "headers": {"Authorization": "Bearer abc", "X-Crm": {"secret": "crm-token"}, "Accept": "json"},
        "json_body": [{"password": "pw", "user": "me"}],
        "timeout_seconds": 3,
    }
    assert redact(parameters) == {
        "url": f"https://{REDACTED}@example.com/",
        "headers": {"Authorization": REDACTED, "X-Crm": {"secret": "crm-token"}, "Accept": "json"},
        "json_body": [{"password": REDACTED, "user": "me"}],
        "timeout_seconds": 3,
    }


def test_known_secret_values_are_replaced_by_their_names() -> None:
    assert redact_values("echo: abc-123 and abc-123", {"crm": "abc-123"}) == "echo: [secret crm] and [secret crm]"
