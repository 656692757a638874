"""LLM layer benchmark: ``python -m benchmarks.bench_llm``.

For the bundled SmolLM2-135M model, in-process (llama_cpp provider) and through the
OpenAI-compatible llama.cpp server on loopback (openai provider): time to first token and
generated tokens/s for a cold ~1,000-token prompt and for the same prompt extended by 20 tokens
(a prefix-cache hit), reported with the ratio cached/cold measured in the same run. Then the
cost of secret redaction per 100 KB of outbound payload. Target: the appended prompt's first
token costs under 15% of the cold prompt's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from ragls.config import ModelConfig, PrivacyConfig
from ragls.llm import Provider
from ragls.llm.gguf import bundled_model_path
from ragls.llm.llama_cpp import LlamaCppProvider
from ragls.llm.openai import OpenAIProvider
from ragls.privacy import Privacy
from ragls.privacy.redact import Redactor

PROMPT_TOKENS = 1000
EXTRA_TOKENS = 20
GENERATED = 48
TARGET = 0.15


@dataclass
class Timing:
    ttft: float
    tokens_per_s: float


def code_text() -> str:
    """Real third-party Python source (httpx, a dependency), as completion context would be."""
    root = Path(httpx.__file__).parent
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(root.rglob("*.py")))


def prompts(local: LlamaCppProvider) -> tuple[str, str]:
    """A prompt of PROMPT_TOKENS tokens and the same prompt with EXTRA_TOKENS more (the user typed on)."""
    tokens = local.llama.tokenize(code_text().encode("utf-8"), add_bos=False)
    def text(part: list[int]) -> str:
        return local.llama.detokenize(part).decode("utf-8", errors="ignore")

    return text(tokens[:PROMPT_TOKENS]), text(tokens[: PROMPT_TOKENS + EXTRA_TOKENS])


def timed(provider: Provider, prompt: str, count: Callable[[str], int]) -> Timing:
    start = time.perf_counter()
    first = None
    text = ""
    for delta in provider.complete(prompt, max_tokens=GENERATED, temperature=0):
        if first is None:
            first = time.perf_counter()
        text += delta
    end = time.perf_counter()
    assert first is not None, "the model produced nothing"
    generated = max(1, count(text))
    return Timing(first - start, (generated - 1) / max(end - first, 1e-9))


def measure(
    provider: Provider, base: str, extended: str, runs: int, count: Callable[[str], int]
) -> tuple[Timing, Timing]:
    """Median cold and cached timings; the cache is evicted before each cold run."""
    cold, cached = [], []
    for _ in range(runs):
        provider.complete("Unrelated text to evict the cached prefix.", max_tokens=1).text()
        cold.append(timed(provider, base, count))
        cached.append(timed(provider, extended, count))
    return _median(cold), _median(cached)


def _median(timings: list[Timing]) -> Timing:
    return Timing(
        statistics.median(t.ttft for t in timings), statistics.median(t.tokens_per_s for t in timings)
    )


def start_server(model: Path, port: int) -> subprocess.Popen:
    """The server with the thread setting ragls uses in process (half the cores, both phases):
    its own default mixes counts, which made 20-token prompt extensions cost ~1 s here."""
    threads = str(max(1, (os.cpu_count() or 2) // 2))
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1", "--port",
         str(port), "--n_ctx", "2048", "--model_alias", "smollm2", "--verbose", "False",
         "--n_threads", threads, "--n_threads_batch", threads],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("llama_cpp.server did not start")


def redaction_ms_per_100kb(runs: int) -> tuple[float, int]:
    text = code_text()
    payload = (text * (100_000 // len(text) + 1))[:100_000]
    planted = payload[:50_000] + '\nAWS_SECRET = "AKIAIOSFODNN7EXAMPLE"\n' + payload[50_000:]
    redactor = Redactor()
    times, count = [], 0
    for _ in range(runs):
        session = redactor.session()
        start = time.perf_counter()
        session.redact(planted)
        times.append(time.perf_counter() - start)
        count = session.count
    return statistics.median(times) * 1000, count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="repetitions per measurement (median reported)")
    args = parser.parse_args()
    model = bundled_model_path()
    rows: list[tuple[str, Timing, Timing]] = []

    local = LlamaCppProvider(ModelConfig(context_length=2048))
    base, extended = prompts(local)
    n_base, n_ext = local.count_tokens(base), local.count_tokens(extended)
    rows.append(("llama_cpp (in process)", *measure(local, base, extended, args.runs, local.count_tokens)))

    port = _free_port()
    server = start_server(model, port)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            privacy = Privacy(PrivacyConfig(mode="standard", audit_log=str(Path(tmp) / "audit.jsonl")))
            remote = OpenAIProvider(
                ModelConfig(provider="openai", base_url=f"http://127.0.0.1:{port}/v1", model="smollm2"),
                privacy, "completion",
            )
            timings = measure(remote, base, extended, args.runs, local.count_tokens)
            rows.append(("openai -> llama.cpp server (loopback)", *timings))
            remote.close()
    finally:
        server.terminate()
        server.wait(10)
        local.close()

    redact_ms, redactions = redaction_ms_per_100kb(max(args.runs, 5))
    _print(rows, n_base, n_ext, redact_ms, redactions)
    return 0 if all(c.ttft / k.ttft < TARGET for _, k, c in rows) else 1


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _print(
    rows: list[tuple[str, Timing, Timing]], n_base: int, n_ext: int, redact_ms: float, redactions: int
) -> None:
    table = Table(title=f"LLM layer: bundled SmolLM2-135M Q4_1, {os.cpu_count()} CPU cores, "
                        f"{GENERATED} generated tokens, median of runs")
    for column in ("path", "prompt", "first token (s)", "tokens/s", "cached/cold first token"):
        table.add_column(column, justify="left" if column in {"path", "prompt"} else "right")
    for name, cold, cached in rows:
        ratio = cached.ttft / cold.ttft
        verdict = "[green]meets[/]" if ratio < TARGET else "[red]misses[/]"
        table.add_row(name, f"cold, {n_base} tokens", f"{cold.ttft:.3f}", f"{cold.tokens_per_s:.1f}", "")
        table.add_row("", f"+{n_ext - n_base} tokens (prefix cached)", f"{cached.ttft:.3f}",
                      f"{cached.tokens_per_s:.1f}", f"{ratio:.1%} ({verdict} < {TARGET:.0%})")
    console = Console(width=160)
    console.print(table)
    console.print(f"redaction (detect-secrets plugins + regexes + entropy): {redact_ms:.0f} ms per 100 KB of "
                  f"Python source (1 secret planted, {redactions} found)")


if __name__ == "__main__":
    sys.exit(main())
