"""The code index: discovery, tree-sitter chunks and symbols, keyword and dense search.

Knows nothing of LSP or language models; the server, the recipes and the CLI call into it.
"""
