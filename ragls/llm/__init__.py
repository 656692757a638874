"""The model-agnostic LLM layer: one streaming interface over local and remote models."""

from ragls.llm.base import (
    EndpointError,
    FimTemplate,
    LLMError,
    LLMTimeout,
    Message,
    ModelError,
    ModelMetadata,
    Provider,
    Stream,
)
from ragls.llm.factory import ROLES, create

__all__ = [
    "ROLES",
    "EndpointError",
    "FimTemplate",
    "LLMError",
    "LLMTimeout",
    "Message",
    "ModelError",
    "ModelMetadata",
    "Provider",
    "Stream",
    "create",
]
