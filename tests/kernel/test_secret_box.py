import pytest

from kernel.secret_box import SecretBox, SecretBoxError, generate_master_key, parse_master_keys

OLD, NEW = generate_master_key("old"), generate_master_key("new")


def test_a_sealed_value_opens_to_itself_and_does_not_contain_it() -> None:
    box = SecretBox.from_text(NEW)
    sealed = box.seal("whsec_top-secret", "tenant_webhook_secrets:acme")
    assert "top-secret" not in sealed
    assert box.open(sealed, "tenant_webhook_secrets:acme") == "whsec_top-secret"


def test_sealing_twice_gives_different_ciphertexts() -> None:
    box = SecretBox.from_text(NEW)
    assert box.seal("same", "c") != box.seal("same", "c")


def test_a_value_copied_into_another_row_does_not_open() -> None:
    box = SecretBox.from_text(NEW)
    sealed = box.seal("whsec_acme", "tenant_webhook_secrets:acme")
    with pytest.raises(SecretBoxError, match="does not belong here"):
        box.open(sealed, "tenant_webhook_secrets:globex")


def test_an_altered_value_does_not_open() -> None:
    box = SecretBox.from_text(NEW)
    sealed = box.seal("whsec_acme", "c")
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(SecretBoxError):
        box.open(flipped, "c")


def test_rotation_rewraps_under_the_new_key_and_the_old_key_can_then_go() -> None:
    sealed = SecretBox.from_text(OLD).seal("whsec_acme", "c")
    both = SecretBox.from_text(f"{NEW},{OLD}")
    assert both.open(sealed, "c") == "whsec_acme"
    rewrapped = both.rewrap(sealed)
    assert SecretBox.key_id_of(rewrapped) == "new"
    assert SecretBox.from_text(NEW).open(rewrapped, "c") == "whsec_acme"
    assert both.rewrap(rewrapped) == rewrapped


def test_a_value_sealed_with_a_key_no_longer_configured_says_which_key_is_missing() -> None:
    sealed = SecretBox.from_text(OLD).seal("x", "c")
    with pytest.raises(SecretBoxError, match="'old'"):
        SecretBox.from_text(NEW).open(sealed, "c")


@pytest.mark.parametrize("text", ["", "k1", "k1:notbase64!", "k1:c2hvcnQ=", ":" + NEW.split(":", 1)[1]])
def test_malformed_master_keys_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="master key"):
        parse_master_keys(text)
