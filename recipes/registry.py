"""The recipe registry: built-in recipes shipped as TOML files, plus the user's own.

A recipe is data, not code: what context it needs, a prompt template, what kind of output it
produces and which model role answers it. Built-ins live in ``recipes/builtin/*.toml`` (the same
format users write), so reading one is the documentation of how to write one. Users add recipes
in ``<user config dir>/recipes/*.toml`` and ``<root>/.ragls/recipes/*.toml`` (later wins, by
name). A broken file is reported with its path and line and skipped; the others still load.

A recipe file (the name defaults to the file's stem)::

    title = "Translate to Rust"                  # required
    description = "..."                          # optional, shown by editors
    context = ["selection", "definitions"]       # what to gather, in priority order (CONTEXT_KINDS)
    output = "edit"                              # "text" | "edit" (replaces the selection) | "file"
    role = "chat"                                # the model role: "chat" | "completion"
    system = "You are ..."                       # optional system message
    max_tokens = 512                             # optional; 0 = [recipes] answer_tokens
    template = '''{context}
    Translate {path} lines {lines} to Rust:
    {selection}'''                               # required unless runner = "complete"

Placeholders are those in PLACEHOLDERS; write ``{{`` and ``}}`` for literal braces.
"""

from __future__ import annotations

import re
import string
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ragls import config

# What a recipe may ask to have gathered for it (see recipes/gather.py).
CONTEXT_KINDS = ("selection", "symbol", "definitions", "tests", "retrieved", "readme")
# What a template may say; everything else in braces is an error (write {{ and }} for braces).
PLACEHOLDERS = (
    "selection", "numbered_selection", "context", "question", "language", "path", "symbol", "lines"
)
OUTPUTS = ("text", "edit", "file")  # a text answer, a replacement for the selection, a new file
ROLES = ("chat", "completion")
# How a recipe runs: a prompt over gathered context, repository Q&A, or inline completion.
RUNNERS = ("prompt", "ask", "complete")
KEYS = {"name", "title", "description", "context", "template", "system", "output", "role", "runner",
        "max_tokens"}
REQUIRED = ("title", "template")  # inline completion ("complete" runner) builds its own prompt
NAME = re.compile(r"[a-z][a-z0-9_-]*")


@dataclass(frozen=True)
class Recipe:
    name: str
    title: str
    template: str = ""
    context: tuple[str, ...] = ("selection",)
    system: str = ""
    output: str = "text"
    role: str = "chat"
    runner: str = "prompt"
    description: str = ""
    max_tokens: int = 0  # 0 = [recipes] answer_tokens
    origin: str = "built-in"  # "built-in" or the file it came from

    def needs(self, kind: str) -> bool:
        return kind in self.context

    def render(self, **values: str) -> str:
        """The template with its placeholders filled (only known ones can occur: checked at load)."""
        return self.template.format_map({key: values.get(key, "") for key in PLACEHOLDERS})


@dataclass(frozen=True)
class Problem:
    """A recipe file that did not load, and where it went wrong."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class RecipeError(ValueError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


@dataclass
class Registry:
    recipes: dict[str, Recipe] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    overridden: dict[str, list[str]] = field(default_factory=dict)  # name -> origins it replaced

    def get(self, name: str) -> Recipe:
        try:
            return self.recipes[name]
        except KeyError:
            known = ", ".join(sorted(self.recipes))
            raise KeyError(f"no recipe named {name!r}; known recipes: {known}") from None

    def as_json(self) -> dict:
        """What ``ragls recipes --json`` prints and the server's ``ragls/recipes`` returns."""
        return {
            "recipes": [
                {"name": r.name, "title": r.title, "description": r.description, "output": r.output,
                 "role": r.role, "runner": r.runner, "context": list(r.context), "origin": r.origin,
                 "overrides": self.overridden.get(r.name, [])}
                for r in self.recipes.values()
            ],
            "problems": [{"path": p.path, "line": p.line, "message": p.message} for p in self.problems],
        }

    def add(self, recipe: Recipe) -> None:
        if recipe.name in self.recipes:
            self.overridden.setdefault(recipe.name, []).append(self.recipes[recipe.name].origin)
        self.recipes[recipe.name] = recipe


def user_recipes_dir() -> Path:
    """Beside the user config file (so ``$RAGLS_CONFIG`` moves both)."""
    return config.user_config_path().parent / "recipes"


def workspace_recipes_dir(root: Path) -> Path:
    return root / ".ragls" / "recipes"


def load(root: Path | None = None) -> Registry:
    """Built-ins, then the user's recipes, then the workspace's; a later recipe of the same name wins."""
    registry = Registry()
    builtin = resources.files("ragls.recipes") / "builtin"
    for entry in sorted(builtin.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            text = entry.read_text(encoding="utf-8")
            _load_one(registry, entry.name.removesuffix(".toml"), text, "built-in")
    folders = [user_recipes_dir()] + ([workspace_recipes_dir(root)] if root is not None else [])
    for folder in folders:
        for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
            try:
                text = path.read_bytes().decode("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                registry.problems.append(Problem(str(path), 1, f"cannot read: {exc}"))
                continue
            _load_one(registry, path.stem, text, str(path))
    return registry


def _load_one(registry: Registry, stem: str, text: str, origin: str) -> None:
    try:
        registry.add(parse(stem, text, origin))
    except RecipeError as exc:
        registry.problems.append(Problem(origin, exc.line, str(exc)))


def parse(stem: str, text: str, origin: str) -> Recipe:
    """One recipe from TOML text; raises RecipeError with the offending line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        raise RecipeError(int(found.group(1)) if found else 1, f"not valid TOML: {exc}") from None
    unknown = sorted(set(data) - KEYS)
    if unknown:
        known = ", ".join(sorted(KEYS))
        raise RecipeError(_line_of(text, unknown[0]), f"unknown key {unknown[0]!r} (known: {known})")
    for key in REQUIRED:
        if key not in data and not (key == "template" and data.get("runner") == "complete"):
            raise RecipeError(1, f"missing required key {key!r}")
    values: dict[str, Any] = {"name": stem, "origin": origin}
    for key, value in data.items():
        values[key] = _check(key, value, text)
    values["context"] = tuple(values.get("context", ("selection",)))
    _check_template(values.get("template", ""), text, "template")
    if values.get("system"):
        _check_template(values["system"], text, "system")
    return Recipe(**values)


def _check(key: str, value: Any, text: str) -> Any:
    line = _line_of(text, key)
    if key == "max_tokens":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise RecipeError(line, f"'max_tokens' must be a non-negative integer, got {value!r}")
        return value
    if key == "context":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise RecipeError(line, f"'context' must be a list of strings, got {value!r}")
        bad = [v for v in value if v not in CONTEXT_KINDS]
        if bad:
            known = ", ".join(CONTEXT_KINDS)
            raise RecipeError(line, f"'context' has unknown kind {bad[0]!r} (known: {known})")
        return value
    if not isinstance(value, str):
        raise RecipeError(line, f"{key!r} must be a string, got {type(value).__name__}")
    choices = {"output": OUTPUTS, "role": ROLES, "runner": RUNNERS}.get(key)
    if choices and value not in choices:
        raise RecipeError(line, f"{key!r} = {value!r} is not allowed; choose one of {', '.join(choices)}")
    if key == "name" and not NAME.fullmatch(value):
        raise RecipeError(line, f"'name' must be lower-case letters, digits, '-' or '_', got {value!r}")
    if key in ("title", "template") and not value.strip():
        raise RecipeError(line, f"{key!r} must not be empty")
    return value


def _check_template(template: str, text: str, key: str) -> None:
    """Every ``{placeholder}`` must be a known one, without format specs or attribute access."""
    try:
        parsed = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise RecipeError(_line_of(text, key), f"{key!r} has unbalanced braces ({exc}); write {{{{ and }}}}"
                          " for literal braces") from None
    for name, spec, conv in parsed:
        if name not in PLACEHOLDERS or spec or conv:
            shown = "{" + name + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"
            line = _line_of_text(text, shown) or _line_of(text, key)
            raise RecipeError(
                line, f"unknown placeholder {shown} in {key!r} (known: "
                + ", ".join("{" + p + "}" for p in PLACEHOLDERS) + "; write {{ and }} for literal braces)"
            )


def _line_of(text: str, key: str) -> int:
    """The line where ``key = ...`` is written (1 if it cannot be found)."""
    found = re.search(rf"^[ \t]*{re.escape(key)}[ \t]*=", text, re.MULTILINE)
    return text.count("\n", 0, found.start()) + 1 if found else 1


def _line_of_text(text: str, needle: str) -> int | None:
    at = text.find(needle)
    return text.count("\n", 0, at) + 1 if at >= 0 else None
