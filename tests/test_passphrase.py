"""Pulumi's passphrase secrets provider, reimplemented: checked against Pulumi's own test vector."""

from __future__ import annotations

import pytest

from tools import engine, passphrase

# From Pulumi's own tests (pkg/secrets/passphrase): this salt line with passphrase "password" decrypts to "pulumi".
PULUMI_TEST_SALT = "v1:fozI5u6B030=:v1:F+6ZduKKd8G0/V7L:PGMFeIzwobWRKmEAzUdaQHqC5mMRIQ=="
LOCAL_PASSPHRASE = "local-only-passphrase"


def test_pulumi_test_vector_checks_out():
    key = passphrase.key_from_encryption_salt(PULUMI_TEST_SALT, "password")
    assert len(key) == 32


def test_wrong_passphrase_is_refused():
    with pytest.raises(passphrase.PassphraseError, match="incorrect passphrase"):
        passphrase.key_from_encryption_salt(PULUMI_TEST_SALT, "not-the-password")


def test_round_trip_with_a_new_salt():
    salt, key = passphrase.new_encryption_salt("correct horse")
    assert passphrase.key_from_encryption_salt(salt, "correct horse") == key
    secure = passphrase.encrypt_value(key, "s3cr3t")
    assert secure.startswith("v1:") and "s3cr3t" not in secure
    assert passphrase.decrypt_value(key, secure) == "s3cr3t"


def test_local_stack_file_decrypts_with_its_documented_passphrase():
    config, secret_keys = engine.stack_config("local", passphrase=LOCAL_PASSPHRASE)
    assert {"platform:api-token", "platform:web-session-key"} <= set(secret_keys)
    assert config["platform:api-token"].startswith("local-api-token-")
    assert not config["platform:api-token"].startswith(engine.PLACEHOLDER_PREFIX)


def test_without_passphrase_secure_values_are_placeholders():
    config, secret_keys = engine.stack_config("local")
    assert config["platform:api-token"] == f"{engine.PLACEHOLDER_PREFIX}-platform:api-token"
    assert "platform:api-token" in secret_keys


def test_wrong_passphrase_for_a_stack_is_a_clear_error():
    with pytest.raises(engine.StackFileError) as raised:
        engine.stack_config("staging", passphrase=LOCAL_PASSPHRASE)
    assert "Pulumi.staging.yaml: incorrect passphrase" in str(raised.value)
    assert "PULUMI_CONFIG_PASSPHRASE" in str(raised.value)


def test_corrupted_secure_value_names_the_key(tmp_path):
    text = (engine.PROJECT_DIR / "Pulumi.local.yaml").read_text()
    start = text.index("secure: v1:", text.index("platform:api-token:")) + len("secure: v1:")
    (tmp_path / "Pulumi.yaml").write_text((engine.PROJECT_DIR / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.local.yaml").write_text(text[:start] + "AAAA" + text[start + 4 :])
    with pytest.raises(engine.StackFileError) as raised:
        engine.stack_config("local", tmp_path, passphrase=LOCAL_PASSPHRASE)
    assert "Pulumi.local.yaml: platform:api-token: cannot decrypt" in str(raised.value)


def test_passphrase_file_is_read(tmp_path, monkeypatch):
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE", raising=False)
    secret_file = tmp_path / "passphrase"
    secret_file.write_text(LOCAL_PASSPHRASE + "\n")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE_FILE", str(secret_file))
    assert passphrase.passphrase_from_environment() == LOCAL_PASSPHRASE
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE_FILE", str(tmp_path / "missing"))
    with pytest.raises(passphrase.PassphraseError, match="cannot read it"):
        passphrase.passphrase_from_environment()
