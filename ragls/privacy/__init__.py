"""The privacy policy every outbound model request goes through.

``Privacy`` decides whether a model may be used at all under ``privacy.mode``, and gives remote
providers the redactor and the audit log. Only HTTP providers ever consult it for a request: in
``local`` mode they cannot be constructed unless their endpoint is on this machine (loopback or a
unix socket, see ``endpoint``), so no code path opens a socket to another machine.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from ragls.config import ModelConfig, PrivacyConfig
from ragls.privacy import endpoint
from ragls.privacy.audit import AuditLog, default_path
from ragls.privacy.redact import Redactor

REMOTE_PROVIDERS = {"openai", "anthropic"}


class PrivacyError(PermissionError):
    """A model is not allowed under the configured privacy mode."""


def sends_code_out(model: ModelConfig) -> bool:
    """Whether requests to this model leave the machine: an HTTP provider whose endpoint is not
    loopback or a unix socket (an empty base_url means the provider's public API)."""
    if model.provider not in REMOTE_PROVIDERS:
        return False
    return not (model.base_url and endpoint.parse(model.base_url).local)


class Privacy:
    def __init__(self, config: PrivacyConfig):
        self.config = config
        self.mode = config.mode

    def check(self, role: str, model: ModelConfig) -> None:
        """Refuse a model the privacy mode forbids, naming the settings that decide it."""
        if not sends_code_out(model):
            return
        if self.mode == "local":
            raise PrivacyError(
                f"models.{role}: provider '{model.provider}' sends code over the network, but "
                "privacy.mode is 'local' (nothing leaves this machine). Set privacy.mode = "
                f"\"zero-retention\" (with models.{role}.zero_retention = true) or \"standard\" to allow it, "
                "or use a local provider (a server on 127.0.0.1, localhost, ::1 or a unix socket counts)."
            )
        if self.mode == "zero-retention" and not model.zero_retention:
            raise PrivacyError(
                f"models.{role}: privacy.mode is 'zero-retention' but this endpoint is not marked "
                f"zero_retention = true. Set models.{role}.zero_retention = true only if the provider "
                "contractually keeps nothing, or set privacy.mode = \"standard\"."
            )

    @cached_property
    def redactor(self) -> Redactor:
        return Redactor(self.config.redact_patterns)

    @cached_property
    def audit(self) -> AuditLog:
        return AuditLog(Path(self.config.audit_log).expanduser() if self.config.audit_log else default_path())
