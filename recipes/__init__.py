"""Recipes and context assembly (explain, unit-test, docstring, smell, ask, complete)."""
