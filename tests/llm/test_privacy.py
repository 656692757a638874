"""Redaction, restoration, the audit log, the policy and their configuration."""

from __future__ import annotations

import json

import pytest
from llm_support import write_config

from ragls.config import ConfigError, ModelConfig, PrivacyConfig
from ragls.privacy import Privacy, PrivacyError
from ragls.privacy.audit import AuditLog
from ragls.privacy.redact import Redactor, Restorer

JWT_HEAD = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
SECRETS = {  # name: (text with {} where the secret goes, secret)
    "aws key": ('aws_access_key_id = "{}"', "AKIAIOSFODNN7EXAMPLE"),
    "github token": ('token = "{}"', "ghp_16C7e42F292c6912E7710c838347Ae178B4a"),
    "openai key": ("OPENAI_API_KEY={}", "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"),
    "password literal": ('db_password = "{}"', "correct-horse-battery-9"),
    "connection string": ('DSN = "postgresql://app:{}@db.internal:5432/prod"', "Sup3rS3cret!"),
    "env file": ("SMTP_PASSWORD={}", "hunter2hunter2"),
    "unquoted random token": ("curl -H 'X-Token: {}'", "Zq8vN3xLp2Rk7Tm9Wb4Yc6Hd1Jf5Gs0A"),
    "jwt": (f"auth = '{JWT_HEAD}{{}}'", "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"),
    "slack": ('SLACK = "xoxb-123456789012-1234567890123-{}"', "AbCdEfGhIjKlMnOpQrStUvWx"),
}

PEM = """-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEAx9v2wzWXs6R0Dl1bdC0sdfklj3409sdfLKJ3
lkj34LKJlkj3409sdfLKJsdf098sdfLKJ3lkj3409sdfLKJ3lkjZ
-----END RSA PRIVATE KEY-----"""

ORDINARY_CODE = '''
def get_password(user: User) -> str:
    """Look the password up in the vault."""
    password = vault.lookup(user.id)
    token = request.headers["Authorization"]
    api_key = os.environ["API_KEY"]
    secret = settings.SECRET_KEY
    user_id = "4f9c1a2b-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
    return password

class TestAuthenticationMiddlewareConfiguration:
    def test_password_reset_requires_valid_token_and_email(self):
        url = "https://example.com/reset?next=/home"
        assert hash_password("x") != "x"
'''


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor()


@pytest.mark.parametrize("name", list(SECRETS))
def test_each_kind_of_secret_is_redacted(redactor, name):
    template, secret = SECRETS[name]
    red = redactor.session()
    out = red.redact(template.format(secret))
    assert secret not in out, out
    assert "[[REDACTED_SECRET_" in out
    assert red.count >= 1


def test_a_whole_private_key_block_is_redacted(redactor):
    red = redactor.session()
    out = red.redact(f"key file:\n{PEM}\nend")
    assert out.startswith("key file:\n[[REDACTED_SECRET_") and out.endswith("]]\nend")
    assert "MIIE" not in out and "lkj34" not in out
    # A key cut off before its END line is still covered to the end of the text.
    assert "MIIE" not in redactor.session().redact(PEM.rsplit("\n", 1)[0])


def test_ordinary_code_is_left_alone(redactor):
    red = redactor.session()
    assert red.redact(ORDINARY_CODE) == ORDINARY_CODE
    assert red.count == 0


def test_same_secret_same_placeholder_across_one_request(redactor):
    red = redactor.session()
    a = red.redact('KEY = "AKIAIOSFODNN7EXAMPLE"')
    b = red.redact("the key AKIAIOSFODNN7EXAMPLE is used twice: AKIAIOSFODNN7EXAMPLE")
    assert a == 'KEY = "[[REDACTED_SECRET_1]]"'
    assert b == "the key [[REDACTED_SECRET_1]] is used twice: [[REDACTED_SECRET_1]]"
    assert red.count == 3


def test_user_patterns_and_bad_user_patterns():
    red = Redactor([r"ACME-\d{6}"]).session()
    assert red.redact("ticket ACME-123456 here") == "ticket [[REDACTED_SECRET_1]] here"
    with pytest.raises(ValueError, match=r"privacy\.redact_patterns"):
        Redactor(["(unclosed"])


def test_restorer_handles_every_split_of_the_stream(redactor):
    red = redactor.session()
    red.redact('a = "AKIAIOSFODNN7EXAMPLE"; b = "ghp_16C7e42F292c6912E7710c838347Ae178B4a"')
    answer = "use [[REDACTED_SECRET_1]] then [[REDACTED_SECRET_2]], not [[REDACTED_SECRET_9]] or [[x]]"
    expected = ("use AKIAIOSFODNN7EXAMPLE then ghp_16C7e42F292c6912E7710c838347Ae178B4a, "
                "not [[REDACTED_SECRET_9]] or [[x]]")
    for i in range(len(answer)):
        for j in range(i, len(answer)):
            restorer = red.restorer()
            out = [restorer.feed(p) for p in (answer[:i], answer[i:j], answer[j:])]
            assert "".join(out) + restorer.flush() == expected


def test_restorer_does_not_hold_back_ordinary_text():
    restorer = Restorer({"[[REDACTED_SECRET_1]]": "s3cret"})
    assert restorer.feed("x = [1, 2") == "x = [1, 2"  # a lone "[" followed by more text is not a placeholder
    assert restorer.feed("] and [") == "] and "  # a trailing "[" might start one
    assert restorer.feed("[REDACTED_SECRET_1]]!") == "s3cret!"
    assert restorer.flush() == ""


def test_audit_log_is_append_only_metadata(tmp_path):
    log = AuditLog(tmp_path / "sub" / "audit.jsonl")
    payload = b'{"messages":[{"content":"def secret_sauce(): ..."}]}'
    first = log.record(provider="openai", model="m", endpoint="http://x/v1/chat", payload=payload,
                       redactions=2)
    log.record(provider="anthropic", model="c", endpoint="http://y/v1/messages", payload=b"{}", redactions=0)
    lines = (tmp_path / "sub" / "audit.jsonl").read_text().splitlines()
    assert len(lines) == 2
    row = json.loads(lines[0])
    assert set(row) == {"time", "provider", "model", "endpoint", "bytes", "sha256", "redactions", "local"}
    assert row["local"] is False
    assert row["bytes"] == len(payload) and row["redactions"] == 2
    assert row["sha256"] == first.sha256 and len(first.sha256) == 64
    assert "secret_sauce" not in lines[0]
    assert [e.provider for e in log.entries()] == ["openai", "anthropic"]
    # A line written before the "local" field existed reads as remote traffic, as it was.
    old = {k: v for k, v in row.items() if k != "local"}
    with (tmp_path / "sub" / "audit.jsonl").open("a") as f:
        f.write(json.dumps(old) + "\n")
    assert log.entries()[-1].local is False
    assert oct((tmp_path / "sub" / "audit.jsonl").stat().st_mode & 0o777) == "0o600"


def test_damaged_audit_line_is_reported_with_its_location(tmp_path):
    path = tmp_path / "audit.jsonl"
    path.write_text('{"time": "t"}\n')
    with pytest.raises(ValueError, match=r"audit\.jsonl:1: not an audit entry"):
        AuditLog(path).entries()


@pytest.mark.parametrize(
    ("mode", "provider", "zero_retention", "allowed"),
    [
        ("local", "llama_cpp", False, True),
        ("local", "ctransformers", False, True),
        ("local", "openai", True, False),
        ("local", "anthropic", True, False),
        ("zero-retention", "openai", False, False),
        ("zero-retention", "openai", True, True),
        ("zero-retention", "anthropic", True, True),
        ("standard", "anthropic", False, True),
    ],
)
def test_policy_matrix(mode, provider, zero_retention, allowed):
    privacy = Privacy(PrivacyConfig(mode=mode))
    model = ModelConfig(provider=provider, zero_retention=zero_retention)
    if allowed:
        privacy.check("chat", model)
    else:
        with pytest.raises(PrivacyError, match=r"privacy\.mode"):
            privacy.check("chat", model)


def test_config_shape_from_the_issue_loads(tmp_path, monkeypatch):
    cfg = write_config(tmp_path, monkeypatch, """
[privacy]
mode = "zero-retention"

[models.chat]
provider = "openai"
base_url = "http://127.0.0.1:8080/v1"
model = "smollm2"
api_key_env = "OPENAI_API_KEY"
zero_retention = true
""")
    assert cfg.privacy.mode == "zero-retention"
    assert cfg.models.chat.provider == "openai" and cfg.models.chat.zero_retention is True
    assert cfg.models.completion.provider == "llama_cpp"  # roles are independent
    assert cfg.models.embedding.provider == "sentence_transformers"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[privacy]\nmode = "paranoid"', r"'privacy\.mode' = 'paranoid' is not allowed"),
        ('[models.chat]\nprovider = "gemini"', r"'models\.chat\.provider' = 'gemini' is not allowed"),
        ("[models.chat]\nzero_retension = true", r"did you mean 'zero_retention'"),
        ('[models.completion]\nmax_tokens = "many"', r"'models\.completion\.max_tokens' must be int"),
    ],
)
def test_bad_privacy_and_model_settings_name_file_and_key(tmp_path, monkeypatch, text, message):
    with pytest.raises(ConfigError, match=message):
        write_config(tmp_path, monkeypatch, text)


def test_bad_privacy_mode_names_the_file(tmp_path, monkeypatch):
    with pytest.raises(ConfigError) as info:
        write_config(tmp_path, monkeypatch, '[privacy]\nmode = "paranoid"')
    assert str(info.value).startswith(f"{tmp_path / 'config.toml'}: ")
