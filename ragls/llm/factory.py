"""Build the provider a role's configuration names, after the privacy policy allowed it."""

from __future__ import annotations

from ragls.config import Config, ModelConfig
from ragls.llm.base import Provider
from ragls.privacy import Privacy

ROLES = ("chat", "completion")


def create(role: str, config: Config, privacy: Privacy | None = None) -> Provider:
    """The provider for ``role`` ("chat" or "completion"). Remote providers check the privacy
    policy in their constructor, so nothing remote exists unless the policy allows it."""
    if role not in ROLES:
        raise ValueError(f"unknown model role {role!r}; roles: {', '.join(ROLES)}")
    model: ModelConfig = getattr(config.models, role)
    privacy = privacy or Privacy(config.privacy)
    if model.provider == "llama_cpp":
        from ragls.llm.llama_cpp import LlamaCppProvider

        return LlamaCppProvider(model)
    if model.provider == "ctransformers":
        from ragls.llm.ctransformers import CTransformersProvider

        return CTransformersProvider(model)
    if model.provider == "openai":
        from ragls.llm.openai import OpenAIProvider

        return OpenAIProvider(model, privacy, role)
    if model.provider == "anthropic":
        from ragls.llm.anthropic import AnthropicProvider

        return AnthropicProvider(model, privacy, role)
    raise ValueError(f"models.{role}.provider: unknown provider {model.provider!r}")
