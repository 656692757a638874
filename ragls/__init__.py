"""ragls: a private, model-agnostic, retrieval-augmented code assistant behind LSP."""

__version__ = "0.1.0"
