"""The language server: a thin pygls adapter over the indexer and the recipes."""
