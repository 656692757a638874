"""How a model server fills in the middle, from what it says it serves (asked once per provider).

Three ways, best first:

- ``ollama``: Ollama's ``/api/generate`` with ``suffix``. Ollama applies the model's own FIM
  template; ``/api/show`` says a model can (its ``capabilities`` include ``insert``, or, before
  Ollama listed capabilities, its template uses ``.Suffix``).
- ``infill``: llama.cpp server's ``/infill`` (``input_prefix`` / ``input_suffix``), which wraps
  them in the FIM tokens the GGUF declares. A model without them is refused there with an error
  (HTTP 501 in current versions), so a one-token request tells.
- ``completions``: the OpenAI-compatible ``/completions`` with a prompt ragls renders in the
  family's FIM template (``recipes.fim``), or plain prefix completion when the family is unknown.
  What every OpenAI-compatible server (vLLM, LM Studio, llama-cpp-python's server) offers.

Only the ``completion`` role of a configured server is probed (never the public APIs' defaults).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Literal

import httpx

Route = Literal["ollama", "infill", "completions"]
SERVER_FIM: tuple[Route, ...] = ("ollama", "infill")  # the server applies the FIM template itself
OLLAMA_SHOW, INFILL = "/api/show", "/infill"
PROBE_TIMEOUT = httpx.Timeout(10.0, connect=2.0)  # /infill's one token may wait for a model to load


def root(base_url: str) -> str:
    """The server's root: the OpenAI-compatible API usually lives under ``/v1``; Ollama's and
    llama.cpp's own endpoints do not."""
    return base_url.rstrip("/").removesuffix("/v1")


Post = Callable[[str, bytes], httpx.Response]  # (path under the server's root, JSON body)


def probe(post: Post, model: str) -> Route:
    """Ask the server which way it fills in the middle for ``model``, through ``post`` (the
    provider's: its headers, its audit; no user data is in any probe). Raises
    ``httpx.TransportError`` when the server cannot be reached (nothing learnt)."""
    show = _post(post, OLLAMA_SHOW, {"model": model})
    if isinstance(show, dict) and ("capabilities" in show or "template" in show):
        capabilities = show.get("capabilities")
        if isinstance(capabilities, list):
            return "ollama" if "insert" in capabilities else "completions"
        return "ollama" if ".Suffix" in str(show.get("template") or "") else "completions"
    infill = _post(post, INFILL, {"input_prefix": "", "input_suffix": "", "n_predict": 1})
    return "infill" if isinstance(infill, dict) and "content" in infill else "completions"


def _post(post: Post, path: str, payload: dict) -> object:
    """The JSON a POST answered with, or None for an error status or a body that is not JSON."""
    response = post(path, json.dumps(payload).encode("utf-8"))
    if response.status_code != 200:
        return None
    try:
        return response.json()
    except ValueError:
        return None
