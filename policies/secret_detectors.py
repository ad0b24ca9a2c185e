"""What makes a plain value a secret: the pure detectors of the secrets policies, shared with stack config.

No Pulumi imports (only the standard library), so `stack_config.py` judges a service's plain `env` with exactly
the functions the policy pack (policies/secrets.py) judges the rendered ConfigMap and pod env with, and the
program does not load the policy SDK to validate its config. A value is judged two ways:
  * by name (DB_PASSWORD, API_KEY, ...), unless the name describes a setting about a secret
    (TOKEN_TTL_SECONDS, DB_PASSWORD_FILE, PASSWORD_MIN_LENGTH, SECRET_NAME) or the value cannot be a secret
    (empty, a number, a boolean, a path, a `$(VAR)` reference, a hostname or a URL without credentials);
  * by shape, whatever the name: URLs with user:password@, PEM private keys, AWS access key ids, JWTs,
    GitHub/GitLab/Slack/Stripe/Google-style tokens, and high-entropy random tokens.
Reasons never quote the value (they end up in logs, SARIF and config errors).
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

# --- judging names ------------------------------------------------------------------------------------------

# Word sequences (after splitting the name) that say "this holds a secret".
_SECRET_WORDS = (
    ("PASSWORD",), ("PASSWORDS",), ("PASSWD",), ("PASSPHRASE",), ("SECRET",), ("SECRETS",),
    ("TOKEN",), ("TOKENS",), ("APIKEY",), ("API", "KEY"), ("CREDENTIAL",), ("CREDENTIALS",), ("CREDS",),
    ("PRIVATE", "KEY"), ("PRIVATEKEY",), ("ACCESS", "KEY"), ("ACCESSKEY",), ("SECRET", "KEY"),
    ("SIGNING", "KEY"), ("ENCRYPTION", "KEY"), ("MASTER", "KEY"), ("SESSION", "KEY"), ("AUTH", "KEY"),
    ("BEARER",), ("DSN",), ("CONNECTION", "STRING"),
)
# A last word that makes the name a setting *about* a secret: TOKEN_TTL_SECONDS, DB_PASSWORD_FILE, SECRET_NAME.
_SETTING_WORDS = frozenset(
    """FILE PATH DIR DIRECTORY LOCATION MOUNT URL URI ENDPOINT HOST PORT TTL SECONDS SECS SEC MS MILLIS MINUTES
    MINS HOURS DAYS EXPIRY EXPIRATION EXPIRES LIFETIME TIMEOUT INTERVAL DURATION LENGTH LEN SIZE MIN MAX COUNT
    NAME NAMES REF KEYREF ENABLED DISABLED ENABLE DISABLE REQUIRED TYPE MODE POLICY HEADER ISSUER AUDIENCE
    ALGORITHM ALG FORMAT VERSION ROTATION KIND STORE PROVIDER FIELD PREFIX SCOPE SCOPES NAMESPACE
    USER USERNAME""".split()
)


def name_words(name: str) -> list[str]:
    """DB_PASSWORD, dbPassword, db.password and db-password all become [DB, PASSWORD]."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return [word for word in re.split(r"[^A-Za-z0-9]+", spaced.upper()) if word]


def _contains(words: list[str], phrase: tuple[str, ...]) -> bool:
    return any(tuple(words[i : i + len(phrase)]) == phrase for i in range(len(words) - len(phrase) + 1))


# Run-together names with these endings are secrets too: PGPASSWORD, APPSECRET, GITHUBTOKEN.
_SECRET_WORD_ENDINGS = ("PASSWORD", "PASSWD", "SECRET", "TOKEN", "APIKEY")


@functools.lru_cache(maxsize=4096)  # pure; a stack repeats the same env names and keys many times
def is_secret_name(name: str) -> bool:
    """True for names of values that are secrets themselves, False for settings about secrets."""
    words = name_words(name)
    if not words or words[-1] in _SETTING_WORDS:
        return False
    return any(_contains(words, phrase) for phrase in _SECRET_WORDS) or any(
        word.endswith(_SECRET_WORD_ENDINGS) for word in words
    )


# --- judging values -----------------------------------------------------------------------------------------

_NOT_SECRET_VALUES = [
    re.compile(r"(?i)(true|false|yes|no|on|off|enabled?|disabled?|none|null|nil)"),
    re.compile(r"[-+]?\d+(\.\d+)?([eE][-+]?\d+)?"),  # numbers
    re.compile(r"\d+(\.\d+)?(ns|us|ms|s|m|h|d|w|Ki|Mi|Gi|Ti|K|M|G|T)"),  # durations and quantities
    re.compile(r"(/[\w.@+-]*)+/?"),  # absolute paths (/run/secrets/db)
    re.compile(r"\$\([A-Za-z_][A-Za-z0-9_]*\)"),  # Kubernetes env expansion $(VAR)
    re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_.:-]*\}"),  # ${VAR} templating
    re.compile(r"\{\{.*\}\}"),  # Go/Helm templates
    re.compile(r"(?=.*\.)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+(:\d+)?"),  # hostnames
]
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S+")

# Well-known credential shapes: (what it looks like, pattern). Patterns follow the vendors' documented formats.
_SECRET_SHAPES: list[tuple[str, re.Pattern[str]]] = [
    ("a PEM private key", re.compile(r"-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----")),
    ("an AWS access key id", re.compile(r"(?<![A-Z0-9])(AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA)[A-Z0-9]{16}(?![A-Z0-9])")),
    ("a JSON Web Token", re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")),
    ("a GitHub token", re.compile(r"(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})")),
    ("a GitLab token", re.compile(r"glpat-[A-Za-z0-9_-]{20,}")),
    ("a Slack token", re.compile(r"xox[abposr]-[A-Za-z0-9-]{10,}")),
    ("a Slack webhook URL", re.compile(r"hooks\.slack\.com/services/T[A-Za-z0-9]+/B[A-Za-z0-9]+/[A-Za-z0-9]+")),
    ("a Stripe secret key", re.compile(r"(sk|rk)_live_[A-Za-z0-9]{20,}")),
    ("a Google API key", re.compile(r"AIza[A-Za-z0-9_-]{35}")),
    ("an npm token", re.compile(r"npm_[A-Za-z0-9]{36}")),
]
# scheme://user:password@host, where the password is not a reference like $(DB_PASSWORD) or ${DB_PASSWORD}.
_URL_CREDENTIALS = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:(?P<password>[^/\s@]+)@")
_REFERENCE = re.compile(r"(\$\(|\$\{|\{\{|%24%28|%24%7B)")

# Random tokens: base64/base64url alphabet, no separators that identifiers, paths or hostnames have.
_TOKEN_ALPHABET = re.compile(r"[A-Za-z0-9+/=_-]+")
_HEX_OR_UUID = re.compile(r"[0-9a-fA-F-]+")  # git SHAs, digests, UUIDs: common, and not credentials alone
MIN_TOKEN_LENGTH = 20
# A random string over a large alphabet reaches about log2(length) bits per character; 0.85 of that keeps
# 99% of random 20-40 character tokens while camelCase identifiers and words (repeated letters) stay below
# once the class-change test below is added.
ENTROPY_RATIO = 0.85
# Past ~36 characters the entropy of a random string grows slower than log2(length) (the alphabet, not the
# length, limits it), so the threshold stops growing there.
ENTROPY_LENGTH_CAP = 36
# Random tokens switch between upper case, lower case, digits and symbols at most positions (about 60%);
# identifiers like MyApplicationServiceName2024 switch only at word boundaries (20-36%).
MIN_CLASS_CHANGES = 0.4


def shannon_entropy(text: str) -> float:
    """Bits per character of the string's own character distribution."""
    counts = Counter(text)
    return -sum(count / len(text) * math.log2(count / len(text)) for count in counts.values())


def _char_class(char: str) -> int:
    return 0 if char.isupper() else 1 if char.islower() else 2 if char.isdigit() else 3


def class_change_ratio(text: str) -> float:
    changes = sum(_char_class(a) != _char_class(b) for a, b in zip(text, text[1:]))
    return changes / max(len(text) - 1, 1)


def looks_random(text: str) -> bool:
    """A high-entropy token: long enough, token alphabet, mixed case and digits, near-maximal entropy."""
    if len(text) < MIN_TOKEN_LENGTH or not _TOKEN_ALPHABET.fullmatch(text) or _HEX_OR_UUID.fullmatch(text):
        return False
    if text.startswith("/"):
        return False  # a path, even with mixed case and digits
    if not (any(c.isupper() for c in text) and any(c.islower() for c in text) and any(c.isdigit() for c in text)):
        return False
    threshold = ENTROPY_RATIO * math.log2(min(len(text), ENTROPY_LENGTH_CAP))
    return shannon_entropy(text) >= threshold and class_change_ratio(text) >= MIN_CLASS_CHANGES


@functools.lru_cache(maxsize=4096)  # pure; a stack repeats the same values many times
def secret_shape(text: str) -> str | None:
    """What kind of credential the text looks like, or None. Judges the value alone, whatever its name."""
    for description, pattern in _SECRET_SHAPES:
        if pattern.search(text):
            return description
    for match in _URL_CREDENTIALS.finditer(text):
        if not _REFERENCE.match(match.group("password")):
            return "a URL with an embedded user:password"
    if any(looks_random(word) for word in re.split(r"[\s,;\"']+", text) if word):
        return "a high-entropy token"
    return None


def cannot_be_secret(text: str) -> bool:
    """Values a secret-sounding name may hold harmlessly: empty, numbers, booleans, paths, references, hosts."""
    stripped = text.strip()
    if not stripped:
        return True
    if _URL.fullmatch(stripped):
        return True  # credentials in URLs are caught by secret_shape
    return any(pattern.fullmatch(stripped) for pattern in _NOT_SECRET_VALUES)


def judge(name: str, value: Any) -> str | None:
    """Why name=value holds a secret ("looks like a JWT", "is a literal password value"), or None."""
    if not isinstance(value, str):
        return None  # numbers and booleans arrive as such from programs
    shape = secret_shape(value)
    if shape:
        return f"looks like {shape}"
    if is_secret_name(name) and not cannot_be_secret(value):
        return "holds a literal value under a secret-sounding name"
    return None


# Lines like `password=x`, `password: x`, `"password": "x"`, `export PASSWORD=x` inside config files.
_ASSIGNMENT = re.compile(
    r"""^\s*(?:export\s+)?["']?(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)["']?\s*[:=]\s*["']?(?P<value>[^"'\s,#]*)"""
)


def embedded_assignments(text: str) -> Iterator[tuple[str, str]]:
    """(name, value) pairs of a multi-line config file (properties, .env, YAML, JSON-ish)."""
    for line in text.splitlines():
        match = _ASSIGNMENT.match(line)
        if match and match.group("value"):
            yield match.group("name"), match.group("value")


# A ConfigMap key that names a file: dashboard.json, app.properties, platform-secrets.yaml.
_FILE_NAME = re.compile(r"[^\s]+\.[A-Za-z][A-Za-z0-9]{0,9}")


def judge_text(name: str, value: str) -> str | None:
    """judge() for a value that may be a whole config file: the value itself, then each `key = value` line.

    A multi-line file under a file name (`platform-secrets.json`: a Grafana dashboard named after its service) is
    judged by what it holds, by shape and line by line, not by the words of its file name; a one-line value is
    judged by its name as well (`db-password.txt` holding the password).
    """
    if "\n" in value.strip() and _FILE_NAME.fullmatch(name):
        shape = secret_shape(value)
        if shape:
            return f"looks like {shape}"
    else:
        reason = judge(name, value)
        if reason or "\n" not in value:
            return reason
    for key, inner in embedded_assignments(value):
        inner_reason = judge(key, inner)
        if inner_reason:
            return f"has a line '{key}' that {inner_reason}"
    return None
