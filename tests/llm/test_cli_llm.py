"""``ragls models``, ``ragls doctor`` and ``ragls privacy audit`` through the real entry point."""

from __future__ import annotations

import json

from llm_support import write_config

from ragls.cli import main
from ragls.privacy.audit import AuditLog


def test_models_lists_roles_with_file_facts(capsys, gguf_path):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "privacy.mode = local" in out
    for expected in ("chat", "completion", "embedding", "llama_cpp", "apache-2.0", "8192", str(gguf_path)):
        assert expected in out


def test_models_shows_remote_roles_refused_by_the_privacy_mode(tmp_path, monkeypatch, capsys):
    write_config(tmp_path, monkeypatch, """
[models.chat]
provider = "anthropic"
model = "claude-x"
""")
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "claude-x" in out and "https://api.anthropic.com/v1" in out
    assert "no (privacy.mode = local)" in out


def test_models_reports_a_missing_file_and_fails(tmp_path, monkeypatch, capsys):
    write_config(tmp_path, monkeypatch, f'[models.completion]\npath = "{tmp_path / "gone.gguf"}"\n')
    assert main(["models"]) == 1
    assert "gone.gguf does not exist" in capsys.readouterr().out


def test_doctor_loads_the_models_and_reports_no_network(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "models.chat (llama_cpp)" in out and "loads" in out and "tokenizer ok" in out
    assert "none (every configured model is local)" in out
    assert "GPU" in out and "llama-cpp-python" in out


def test_doctor_fails_on_a_corrupt_model_and_names_it(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"garbage")
    write_config(tmp_path, monkeypatch, f'[models.chat]\npath = "{bad}"\n')
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "fail" in out and "not a GGUF file" in out


def test_doctor_reports_a_config_error_instead_of_crashing(tmp_path, monkeypatch, capsys):
    (tmp_path / "config.toml").write_text('[privacy]\nmode = "nope"\n')
    monkeypatch.setenv("RAGLS_CONFIG", str(tmp_path / "config.toml"))
    assert main(["doctor"]) == 1
    assert "is not allowed" in capsys.readouterr().out


def test_doctor_names_expected_network_use(tmp_path, monkeypatch, capsys):
    write_config(tmp_path, monkeypatch, """
[privacy]
mode = "zero-retention"
[models.chat]
provider = "openai"
base_url = "http://192.0.2.9:9/v1"
zero_retention = true
""")
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "expected: chat -> http://192.0.2.9:9/v1" in out
    assert "not contacted by doctor" in out


def test_privacy_audit_prints_the_log(tmp_path, monkeypatch, capsys):
    log_path = tmp_path / "audit.jsonl"
    write_config(tmp_path, monkeypatch, f'[privacy]\naudit_log = "{log_path}"\n')
    assert main(["privacy", "audit"]) == 0
    assert "no outbound requests recorded" in capsys.readouterr().out
    log = AuditLog(log_path)
    first = log.record(provider="openai", model="gpt-x", endpoint="https://e/v1/chat/completions",
                       payload=b"x" * 1234, redactions=3)
    log.record(provider="anthropic", model="claude-y", endpoint="https://a/v1/messages", payload=b"{}",
               redactions=0)
    assert main(["privacy", "audit"]) == 0
    out = capsys.readouterr().out
    for expected in ("gpt-x", "claude-y", "1234", first.sha256[:16], "https://a/v1/messages"):
        assert expected in out
    assert main(["privacy", "audit", "--json", "--limit", "1"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["model"] for r in rows] == ["claude-y"]


def test_privacy_audit_reports_a_damaged_log(tmp_path, monkeypatch, capsys):
    log_path = tmp_path / "audit.jsonl"
    log_path.write_text("{broken\n")
    write_config(tmp_path, monkeypatch, f'[privacy]\naudit_log = "{log_path}"\n')
    assert main(["privacy", "audit"]) == 1
    assert "audit.jsonl:1" in capsys.readouterr().err
