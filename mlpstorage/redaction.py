"""Which values are secrets, and how they look wherever mlpstorage writes or shows them.

A DLIO workload key can carry a credential (`-p reader.storage_options.secret_key=...`). DLIO
needs the real value, so it gets it in its environment (workloads/overrides.py: the value is on
no command line and in no file hydra saves); everything mlpstorage itself writes or shows
(events, and so events.jsonl, the text renderers and OTLP; the metadata JSON; --what-if; the
debug `command:` line) shows REDACTED instead. This module owns the rule.

The rule: a key is secret when the last part of its dotted name, split into words (at `_`,
`-` and camelCase), says so:
- its words, run together, contain secret, password, passwd, credential, accesskey, apikey
  or privatekey (secret_key, db_password, credentials_file, aws_access_key_id, AWSAccessKeyId,
  x-api-key, private_key_path);
- or one of its words ends in token(s) (token, auth_token, sessionToken), or starts with auth
  or oauth and is not author(s), authored, authority (auth, authorization, authKey, oauth_client).
A key that only looks secret (max_tokens) is shown as REDACTED too: DLIO still gets its value.
Only the key decides: a secret inside another value (a URL with a password in it) is not
recognised.
"""

from __future__ import annotations

import re

REDACTED = "***"

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_SECRET_TEXT = ("secret", "password", "passwd", "credential", "accesskey", "apikey", "privatekey")
_NOT_AUTH = frozenset({"author", "authors", "authored", "authority"})
# A hydra override or an environment assignment on a command line: [+|++|-|--]KEY=VALUE
_ASSIGNMENT = re.compile(r"([+-]{0,2})([A-Za-z_][\w.\-]*)=(.*)", re.DOTALL)


def is_secret_key(key: str) -> bool:
    """Whether the value of `key` (a dotted DLIO key, a config key, an environment name) is a secret."""
    words = [word.lower() for word in _WORD.findall(str(key).rsplit(".", 1)[-1])]
    joined = "".join(words)
    if any(text in joined for text in _SECRET_TEXT):
        return True
    return any(word.endswith(("token", "tokens")) or (word.startswith(("auth", "oauth")) and word not in _NOT_AUTH)
               for word in words)


def redact(value):
    """A copy of a params dict ({"reader.storage_options.secret_key": "..."}) or of a nested
    configuration, with the value of every secret key (at any depth) replaced by REDACTED."""
    if isinstance(value, dict):
        return {key: REDACTED if is_secret_key(key) else redact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def redact_argv(argv: list[str]) -> list[str]:
    """A command line with the value of every KEY=VALUE item whose key is secret replaced by
    REDACTED: hydra's `++workload.reader.storage_options.secret_key=VALUE` and the like."""
    shown = []
    for item in argv:
        match = _ASSIGNMENT.fullmatch(item)
        if match and is_secret_key(match.group(2)):
            item = f"{match.group(1)}{match.group(2)}={REDACTED}"
        shown.append(item)
    return shown
