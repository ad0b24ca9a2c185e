"""Pulumi's passphrase secrets provider, as the CLI implements it: PBKDF2-HMAC-SHA256 + AES-256-GCM.

Stack file: `encryptionsalt: v1:<b64 salt>:v1:<b64 nonce>:<b64 ciphertext of "pulumi">` checks the passphrase;
each secret is `{secure: v1:<b64 12-byte nonce>:<b64 ciphertext+tag>}`.
`python -m tools.passphrase encrypt` reads a value on stdin and prints its `secure:` string (for the docs and tests).
"""

from __future__ import annotations

import base64
import os
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

PBKDF2_ITERATIONS = 1_000_000
CHECK_PLAINTEXT = b"pulumi"


class PassphraseError(Exception):
    """Wrong passphrase, or a value that is not a passphrase-provider ciphertext."""


def derive_key(passphrase: str, salt: bytes) -> bytes:
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=PBKDF2_ITERATIONS)
    return kdf.derive(passphrase.encode())


def _encrypt(key: bytes, plaintext: bytes) -> str:
    nonce = os.urandom(12)
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, None)
    return f"v1:{base64.b64encode(nonce).decode()}:{base64.b64encode(ciphertext).decode()}"


def _decrypt(key: bytes, secure: str) -> bytes:
    parts = secure.split(":")
    if len(parts) != 3 or parts[0] != "v1":
        raise PassphraseError("not a passphrase-provider ciphertext (expected v1:<nonce>:<ciphertext>)")
    try:
        return AESGCM(key).decrypt(base64.b64decode(parts[1]), base64.b64decode(parts[2]), None)
    except (InvalidTag, ValueError) as error:
        raise PassphraseError("cannot decrypt: wrong passphrase or corrupted value") from error


def new_encryption_salt(passphrase: str) -> tuple[str, bytes]:
    """A fresh `encryptionsalt` line for a stack file, and the key it derives."""
    salt = os.urandom(8)
    key = derive_key(passphrase, salt)
    return f"v1:{base64.b64encode(salt).decode()}:{_encrypt(key, CHECK_PLAINTEXT)}", key


def key_from_encryption_salt(encryption_salt: str, passphrase: str) -> bytes:
    """The key for a stack file, after checking the passphrase against its `encryptionsalt`."""
    parts = encryption_salt.split(":")
    if len(parts) != 5 or parts[0] != "v1":
        raise PassphraseError("encryptionsalt is not of the form v1:<salt>:v1:<nonce>:<ciphertext>")
    try:
        salt = base64.b64decode(parts[1])
    except ValueError as error:
        raise PassphraseError("encryptionsalt holds invalid base64") from error
    key = derive_key(passphrase, salt)
    try:
        check = _decrypt(key, ":".join(parts[2:]))
    except PassphraseError:
        raise PassphraseError("incorrect passphrase: it does not decrypt the stack file's encryptionsalt") from None
    if check != CHECK_PLAINTEXT:
        raise PassphraseError("incorrect passphrase: it does not decrypt the stack file's encryptionsalt")
    return key


def encrypt_value(key: bytes, value: str) -> str:
    return _encrypt(key, value.encode())


def decrypt_value(key: bytes, secure: str) -> str:
    return _decrypt(key, secure).decode()


def passphrase_from_environment() -> str | None:
    """PULUMI_CONFIG_PASSPHRASE, else the contents of PULUMI_CONFIG_PASSPHRASE_FILE, as the CLI reads them."""
    if "PULUMI_CONFIG_PASSPHRASE" in os.environ:
        return os.environ["PULUMI_CONFIG_PASSPHRASE"]
    path = os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read().rstrip("\r\n")
        except OSError as error:
            raise PassphraseError(f"PULUMI_CONFIG_PASSPHRASE_FILE={path}: cannot read it ({error.strerror})") from None
    return None


def main(argv: list[str]) -> int:
    if argv[:1] != ["encrypt"] or len(argv) != 2:
        print("usage: PULUMI_CONFIG_PASSPHRASE=... python -m tools.passphrase encrypt ENCRYPTIONSALT < value", file=sys.stderr)
        return 2
    passphrase = passphrase_from_environment()
    if passphrase is None:
        print("set PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE", file=sys.stderr)
        return 2
    try:
        key = key_from_encryption_salt(argv[1], passphrase)
    except PassphraseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(encrypt_value(key, sys.stdin.read().rstrip("\n")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
