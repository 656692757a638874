"""Which language a file is written in, and what the chunker must know about each grammar.

Everything here is data: the chunker in ``parsing.py`` runs one algorithm for every language and
reads these tables only where grammars differ. Definitions and references are expressed as
tree-sitter query patterns in the ``tags.scm`` convention (``@definition.<kind>``,
``@reference.<kind>``, ``@name``), so the matching runs in C instead of a Python tree walk.
A language without a hand-written entry gets patterns derived from its node-type names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath

TEXT = "text"
MARKDOWN = "markdown"
# Formats chunked by lines with their sections (TOML/INI tables, YAML top-level keys) as boundaries.
CONFIG_LANGUAGES = frozenset({"toml", "yaml", "json", "ini", "properties"})
# Languages handled without a grammar, so a file in them never reports a parser failure.
LINE_LANGUAGES = CONFIG_LANGUAGES | {TEXT, MARKDOWN, "csv", "tsv", "psv", "requirements", "gitignore"}

EXTENSIONS: dict[str, str] = {
    # the twenty languages with hand-written tables
    ".py": "python", ".pyi": "python", ".pyw": "python",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx",
    ".go": "go", ".rs": "rust", ".java": "java",
    ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".c++": "cpp", ".hh": "cpp", ".hpp": "cpp",
    ".hxx": "cpp", ".h++": "cpp", ".ipp": "cpp", ".tpp": "cpp", ".inl": "cpp",
    ".cs": "csharp", ".csx": "csharp",
    ".rb": "ruby", ".rake": "ruby", ".gemspec": "ruby", ".ru": "ruby",
    ".php": "php", ".phtml": "php",
    ".kt": "kotlin", ".kts": "kotlin", ".swift": "swift",
    ".scala": "scala", ".sc": "scala", ".sbt": "scala",
    ".lua": "lua", ".sh": "bash", ".bash": "bash", ".zsh": "bash", ".ksh": "bash",
    ".ex": "elixir", ".exs": "elixir", ".hs": "haskell", ".zig": "zig", ".zon": "zig",
    # documents, text and configuration
    ".md": MARKDOWN, ".markdown": MARKDOWN, ".mdx": MARKDOWN, ".mkd": MARKDOWN,
    ".rst": TEXT, ".txt": TEXT, ".text": TEXT, ".adoc": TEXT,
    ".toml": "toml", ".yaml": "yaml", ".yml": "yaml", ".json": "json", ".jsonc": "json",
    ".json5": "json", ".geojson": "json", ".webmanifest": "json",
    ".ini": "ini", ".cfg": "ini", ".conf": "ini", ".properties": "properties",
    ".csv": "csv", ".tsv": "tsv", ".psv": "psv",
    # the rest of the language pack: chunked on top-level syntax, symbols derived from node types
    ".as": "actionscript", ".adb": "ada", ".ads": "ada", ".agda": "agda", ".ino": "arduino",
    ".asm": "asm", ".s": "asm", ".astro": "astro", ".beancount": "beancount", ".bib": "bibtex",
    ".bicep": "bicep", ".bb": "bitbake", ".bbappend": "bitbake", ".bbclass": "bitbake",
    ".cairo": "cairo", ".capnp": "capnp", ".clar": "clarity", ".clj": "clojure",
    ".cljs": "clojure", ".cljc": "clojure", ".edn": "clojure", ".cmake": "cmake",
    ".lisp": "commonlisp", ".lsp": "commonlisp", ".cl": "commonlisp", ".css": "css",
    ".cu": "cuda", ".cuh": "cuda", ".d": "d", ".dart": "dart", ".dockerfile": "dockerfile",
    ".dtd": "dtd", ".el": "elisp", ".elm": "elm", ".erl": "erlang", ".hrl": "erlang",
    ".fnl": "fennel", ".fish": "fish", ".f": "fortran", ".for": "fortran", ".f90": "fortran",
    ".f95": "fortran", ".f03": "fortran", ".f08": "fortran", ".fs": "fsharp", ".fsx": "fsharp",
    ".fsi": "fsharp_signature", ".gd": "gdscript", ".gleam": "gleam", ".glsl": "glsl",
    ".vert": "glsl", ".frag": "glsl", ".gn": "gn", ".gni": "gn", ".graphql": "graphql",
    ".gql": "graphql", ".groovy": "groovy", ".gradle": "groovy", ".gvy": "groovy",
    ".hack": "hack", ".ha": "hare", ".hx": "haxe", ".hcl": "hcl", ".heex": "heex",
    ".hlsl": "hlsl", ".html": "html", ".htm": "html", ".xhtml": "html", ".janet": "janet",
    ".jsonnet": "jsonnet", ".libsonnet": "jsonnet", ".jl": "julia", ".kdl": "kdl",
    ".tex": "latex", ".sty": "latex", ".cls": "latex", ".ld": "linkerscript",
    ".ll": "llvm", ".luau": "luau", ".mk": "make", ".mak": "make", ".m": "objc", ".mm": "objc",
    ".mmd": "mermaid", ".mermaid": "mermaid", ".nim": "nim", ".nims": "nim", ".nimble": "nim",
    ".ninja": "ninja", ".nix": "nix", ".ml": "ocaml", ".mli": "ocaml_interface",
    ".odin": "odin", ".org": "org", ".pas": "pascal", ".dpr": "pascal", ".pl": "perl",
    ".pm": "perl", ".po": "po", ".pot": "po", ".pony": "pony", ".ps1": "powershell",
    ".psm1": "powershell", ".psd1": "powershell", ".prisma": "prisma", ".proto": "proto",
    ".pp": "puppet", ".purs": "purescript", ".qml": "qmljs", ".r": "r", ".rkt": "racket",
    ".re": "re2c", ".ron": "ron", ".scm": "scheme", ".ss": "scheme", ".scss": "scss",
    ".smali": "smali", ".smithy": "smithy", ".sol": "solidity", ".rq": "sparql",
    ".sparql": "sparql", ".sql": "sql", ".nut": "squirrel", ".bzl": "starlark",
    ".star": "starlark", ".svelte": "svelte", ".td": "tablegen", ".tcl": "tcl",
    ".tf": "terraform", ".tfvars": "terraform", ".thrift": "thrift", ".twig": "twig",
    ".typ": "typst", ".ungram": "ungrammar", ".tal": "uxntal", ".v": "verilog",
    ".sv": "verilog", ".svh": "verilog", ".vh": "verilog", ".vhd": "vhdl", ".vhdl": "vhdl",
    ".vim": "vim", ".vue": "vue", ".wast": "wast", ".wat": "wat", ".wgsl": "wgsl",
    ".xml": "xml", ".xsd": "xml", ".xsl": "xml", ".xslt": "xml", ".svg": "xml",
    ".plist": "xml", ".csproj": "xml", ".props": "xml", ".targets": "xml", ".yuck": "yuck",
    ".erb": "embeddedtemplate", ".ejs": "embeddedtemplate", ".magik": "magik",
}  # fmt: skip

FILENAMES: dict[str, str] = {
    "makefile": "make", "gnumakefile": "make", "dockerfile": "dockerfile",
    "containerfile": "dockerfile", "cmakelists.txt": "cmake", "rakefile": "ruby",
    "gemfile": "ruby", "guardfile": "ruby", "vagrantfile": "ruby", "podfile": "ruby",
    "brewfile": "ruby", "jenkinsfile": "groovy", "build": "starlark", "build.bazel": "starlark",
    "workspace": "starlark", "tiltfile": "starlark", "sconstruct": "python",
    "sconscript": "python", "go.mod": "gomod", "go.sum": "gosum", "meson.build": "meson",
    "kconfig": "kconfig", "pipfile": "toml", "cargo.lock": "toml", "poetry.lock": "toml",
    ".bashrc": "bash", ".bash_profile": "bash", ".profile": "bash", ".zshrc": "bash",
    ".vimrc": "vim", "_vimrc": "vim", ".gitattributes": "gitattributes",
    ".gitignore": "gitignore", ".dockerignore": "gitignore", ".gitconfig": "ini",
    ".editorconfig": "ini", ".flake8": "ini", ".pylintrc": "ini", ".babelrc": "json",
    ".eslintrc": "json", "manifest.in": "pymanifest", "qmldir": "qmldir", ".inputrc": "readline",
    "commit_editmsg": "gitcommit", "license": TEXT, "copying": TEXT, "authors": TEXT,
}  # fmt: skip

_CPP_HEADER = re.compile(
    r"^\s*(?:class\s+\w+\s*[:{]|namespace\b|template\s*<|(?:public|private|protected)\s*:)|::|"
    r"#include\s*<(?:string|vector|memory|map|iostream|cstdint|cstddef)>",
    re.MULTILINE,
)
_OBJC = re.compile(r"^\s*(?:@interface|@implementation|@protocol|#import)\b", re.MULTILINE)
# Content sniffing only looks this far: enough for the includes and first declarations.
_SNIFF_CHARS = 65536


def language_for(path: str, text: str = "") -> str | None:
    """The language of ``path`` (a tree-sitter grammar name, "markdown", "text" or a config format).

    ``text`` lets ambiguous extensions (.h: C or C++; .m: Objective-C or MATLAB) be decided by
    content. Returns None for files whose type is unknown; the caller may still index them as text.
    """
    name = PurePosixPath(path.replace("\\", "/")).name
    lowered = name.lower()
    if lowered in FILENAMES:
        return FILENAMES[lowered]
    if lowered.startswith(("dockerfile.", "containerfile.")):
        return "dockerfile"
    if lowered.startswith("requirements") and lowered.endswith((".txt", ".in")):
        return "requirements"
    suffix = PurePosixPath(lowered).suffix
    language = EXTENSIONS.get(suffix)
    sample = text[:_SNIFF_CHARS]
    if suffix == ".h" and _CPP_HEADER.search(sample):
        return "cpp"
    if suffix == ".m" and sample and not _OBJC.search(sample):
        return "matlab"
    return language


# -- the grammar tables ----------------------------------------------------------------------------

# Kinds whose body holds other definitions and is chunked member by member when too long.
CONTAINER_KINDS = frozenset({
    "class", "struct", "interface", "trait", "impl", "enum", "object", "protocol", "extension",
    "record", "actor", "union", "module", "namespace",
})  # fmt: skip
# A function defined directly inside one of these is a method.
CLASS_KINDS = CONTAINER_KINDS - {"module", "namespace"}
# Kinds that open a naming scope: definitions nested in them are qualified with their name.
SCOPE_KINDS = CONTAINER_KINDS | {"function", "method"}
# A keyword token that refines a "class" definition (Swift `struct`, Kotlin `interface`, ...).
KEYWORD_KINDS = frozenset({
    "struct", "interface", "enum", "protocol", "extension", "trait", "object", "actor", "record",
    "union",
})  # fmt: skip
# Siblings that belong to the definition that follows them (besides every kind of comment).
LEADING_TYPES = frozenset({
    "attribute_item", "attribute_list", "decorator", "annotation", "marker_annotation",
})  # fmt: skip


@dataclass(frozen=True)
class LanguageSpec:
    """What the generic chunker needs to know about one grammar.

    ``defs`` maps a node type to a kind, its name taken from the ``name`` field; ``calls`` maps a
    call node type to the field holding the callee (None: its first named child); ``types`` lists
    node types whose text names a type; ``queries`` adds tags-style patterns for whatever the
    tables cannot say; ``wrappers`` are parents (decorators, ``export``) that belong to the
    definition they wrap; ``leading`` are extra sibling types attached to the next definition;
    ``merge_clauses`` coalesces consecutive same-named definitions (Haskell/Elixir clauses).
    """

    defs: Mapping[str, str] = field(default_factory=dict)
    calls: Mapping[str, str | None] = field(default_factory=dict)
    types: tuple[str, ...] = ()
    queries: str = ""
    wrappers: frozenset[str] = frozenset()
    leading: frozenset[str] = frozenset()
    merge_clauses: bool = False

    def patterns(self) -> list[str]:
        """All query patterns, hand-written ones first: on a tie they decide a node's kind."""
        hand_written = [p for p in re.split(r"\n(?=\()", self.queries.strip()) if p]
        return hand_written + definition_patterns(self.defs) + reference_patterns(self.calls, self.types)


def definition_patterns(defs: Mapping[str, str]) -> list[str]:
    return [f"({node} name: (_) @name) @definition.{kind}" for node, kind in defs.items()]


def reference_patterns(calls: Mapping[str, str | None], types: Iterable[str] = ()) -> list[str]:
    """Patterns capturing the callee of each call node and each type name."""
    callees = [f"({node} {f'{fld}: ' if fld else '. '}(_) @name)" for node, fld in calls.items()]
    return [f"{p} @reference.call" for p in callees] + [f"({node}) @reference.type" for node in types]


_JS_DEFS = {
    "function_declaration": "function", "generator_function_declaration": "function",
    "class_declaration": "class", "method_definition": "method",
}  # fmt: skip
# {field} and {heritage}: JavaScript and TypeScript name these nodes differently.
_JS_QUERIES = """
(variable_declarator name: (identifier) @name
  value: [(arrow_function) (function_expression) (generator_function)]) @definition.function
(variable_declarator name: (identifier) @name value: (class)) @definition.class
(assignment_expression left: (member_expression property: (property_identifier) @name)
  right: [(arrow_function) (function_expression)]) @definition.function
({field} (property_identifier) @name
  value: [(arrow_function) (function_expression)]) @definition.method
({heritage} [(identifier) (member_expression)] @name) @reference.type
"""
# Components used as JSX elements are calls; lower-case names are HTML tags.
_JSX_QUERIES = """
([(jsx_opening_element name: (_) @name) (jsx_self_closing_element name: (_) @name)]
  (#match? @name "^[A-Z]")) @reference.call
"""
_JS_CALLS = {"call_expression": "function", "new_expression": "constructor"}
_JS_WRAPPERS = frozenset({"export_statement", "lexical_declaration", "variable_declaration",
                          "expression_statement"})  # fmt: skip
_TS = LanguageSpec(
    defs=_JS_DEFS | {
        "abstract_class_declaration": "class", "interface_declaration": "interface",
        "type_alias_declaration": "type", "enum_declaration": "enum", "internal_module": "namespace",
        "module": "module", "function_signature": "function", "method_signature": "method",
        "abstract_method_signature": "method",
    },
    calls=_JS_CALLS,
    types=("type_identifier",),
    queries=_JS_QUERIES.format(field="public_field_definition name:", heritage="extends_clause value:"),
    wrappers=_JS_WRAPPERS | {"ambient_declaration"},
)  # fmt: skip

_C_QUERIES = """
(function_definition declarator: (_) @name) @definition.function
(declaration declarator: [(function_declarator) (pointer_declarator (function_declarator))] @name)
  @definition.function
(struct_specifier name: (_) @name body: (_)) @definition.struct
(union_specifier name: (_) @name body: (_)) @definition.union
(enum_specifier name: (_) @name body: (_)) @definition.enum
(type_definition declarator: (_) @name) @definition.type
(preproc_function_def name: (identifier) @name) @definition.macro
"""
_C_CALLS: dict[str, str | None] = {"call_expression": "function"}

_ELIXIR_DEF_KEYWORDS = "def|defp|defmacro|defmacrop|defguard|defguardp|defdelegate|defn|defnp"
_ELIXIR_MODULE_KEYWORDS = "defmodule|defprotocol|defimpl"
# Calls that declare rather than call: skipped as references.
_ELIXIR_DECLARATIONS = (
    f"{_ELIXIR_DEF_KEYWORDS}|{_ELIXIR_MODULE_KEYWORDS}|defstruct|defexception|alias|import|require|use"
    "|moduledoc|doc|spec|type|typep|opaque|impl|callback|behaviour"
)

# fmt: off
SPECS: dict[str, LanguageSpec] = {
    "python": LanguageSpec(
        defs={"function_definition": "function", "class_definition": "class"},
        calls={"call": "function"},
        queries="""
(type [(identifier) @name (generic_type (identifier) @name)]) @reference.type
(class_definition superclasses: (argument_list (identifier) @name)) @reference.type
""",
        wrappers=frozenset({"decorated_definition"}),
    ),
    "javascript": LanguageSpec(
        defs=_JS_DEFS,
        calls=_JS_CALLS,
        queries=_JS_QUERIES.format(field="field_definition property:", heritage="class_heritage")
        + _JSX_QUERIES,
        wrappers=_JS_WRAPPERS,
    ),
    "typescript": _TS,
    "tsx": replace(_TS, queries=_TS.queries + _JSX_QUERIES),
    "go": LanguageSpec(
        defs={"function_declaration": "function", "method_elem": "method"},
        calls={"call_expression": "function"},
        types=("type_identifier",),
        queries="""
(method_declaration
  receiver: (parameter_list (parameter_declaration type: [
    (type_identifier) @scope (pointer_type (type_identifier) @scope)
    (generic_type type: (type_identifier) @scope)
    (pointer_type (generic_type type: (type_identifier) @scope))]))
  name: (field_identifier) @name) @definition.method
(type_spec name: (type_identifier) @name type: (struct_type)) @definition.struct
(type_spec name: (type_identifier) @name type: (interface_type)) @definition.interface
(type_spec name: (type_identifier) @name) @definition.type
(type_alias name: (type_identifier) @name) @definition.type
""",
        wrappers=frozenset({"type_declaration"}),
    ),
    "rust": LanguageSpec(
        defs={
            "function_item": "function", "function_signature_item": "function",
            "struct_item": "struct", "enum_item": "enum", "union_item": "union",
            "trait_item": "trait", "mod_item": "module", "type_item": "type",
            "const_item": "constant", "static_item": "constant", "macro_definition": "macro",
        },
        calls={"call_expression": "function", "macro_invocation": "macro"},
        types=("type_identifier",),
        queries="(impl_item type: (_) @name) @definition.impl",
    ),
    "java": LanguageSpec(
        defs={
            "class_declaration": "class", "interface_declaration": "interface",
            "enum_declaration": "enum", "record_declaration": "record",
            "annotation_type_declaration": "interface", "method_declaration": "method",
            "constructor_declaration": "method",
        },
        calls={"method_invocation": "name", "object_creation_expression": "type"},
        types=("type_identifier",),
    ),
    "c": LanguageSpec(calls=_C_CALLS, types=("type_identifier",), queries=_C_QUERIES),
    "cpp": LanguageSpec(
        calls=_C_CALLS | {"new_expression": "type"},
        types=("type_identifier",),
        queries=_C_QUERIES + """
(class_specifier name: (_) @name body: (_)) @definition.class
(namespace_definition name: (_) @name) @definition.namespace
(field_declaration declarator: (function_declarator) @name) @definition.method
(alias_declaration name: (type_identifier) @name) @definition.type
""",
        wrappers=frozenset({"template_declaration"}),
    ),
    "csharp": LanguageSpec(
        defs={
            "class_declaration": "class", "struct_declaration": "struct",
            "interface_declaration": "interface", "enum_declaration": "enum",
            "record_declaration": "record", "namespace_declaration": "namespace",
            "file_scoped_namespace_declaration": "namespace", "method_declaration": "method",
            "constructor_declaration": "method", "destructor_declaration": "method",
            "property_declaration": "property", "delegate_declaration": "type",
            "local_function_statement": "function",
        },
        calls={"invocation_expression": "function", "object_creation_expression": "type"},
        queries="""
(base_list (identifier) @name) @reference.type
(variable_declaration type: (identifier) @name) @reference.type
(parameter type: (identifier) @name) @reference.type
(property_declaration type: (identifier) @name) @reference.type
(method_declaration returns: (identifier) @name) @reference.type
""",
    ),
    "ruby": LanguageSpec(
        defs={"class": "class", "module": "module", "method": "function", "singleton_method": "function"},
        calls={"call": "method"},
        queries="""
(call receiver: (constant) @name) @reference.type
(superclass (constant) @name) @reference.type
(scope_resolution name: (constant) @name) @reference.type
""",
    ),
    "php": LanguageSpec(
        defs={
            "class_declaration": "class", "interface_declaration": "interface",
            "trait_declaration": "trait", "enum_declaration": "enum",
            "function_definition": "function", "method_declaration": "method",
            "namespace_definition": "namespace",
        },
        calls={
            "function_call_expression": "function", "member_call_expression": "name",
            "nullsafe_member_call_expression": "name", "scoped_call_expression": "name",
            "object_creation_expression": None,
        },
        queries="""
(named_type (name) @name) @reference.type
(base_clause (name) @name) @reference.type
(class_interface_clause (name) @name) @reference.type
""",
    ),
    "kotlin": LanguageSpec(
        calls={"call_expression": None},
        queries="""
(class_declaration (type_identifier) @name) @definition.class
(object_declaration (type_identifier) @name) @definition.object
(function_declaration (simple_identifier) @name) @definition.function
(type_alias (type_identifier) @name) @definition.type
(user_type (type_identifier) @name) @reference.type
""",
    ),
    "swift": LanguageSpec(
        defs={
            "class_declaration": "class", "protocol_declaration": "protocol",
            "function_declaration": "function", "protocol_function_declaration": "method",
            "typealias_declaration": "type",
        },
        calls={"call_expression": None},
        queries="""
(init_declaration "init" @name) @definition.method
(user_type (type_identifier) @name) @reference.type
""",
    ),
    "scala": LanguageSpec(
        defs={
            "class_definition": "class", "object_definition": "object", "trait_definition": "trait",
            "enum_definition": "enum", "function_definition": "function",
            "function_declaration": "function", "type_definition": "type",
        },
        calls={"call_expression": "function", "instance_expression": None},
        types=("type_identifier",),
    ),
    "lua": LanguageSpec(
        defs={"function_declaration": "function"},
        calls={"function_call": "name"},
        queries="""
(assignment_statement (variable_list name: (_) @name)
  (expression_list value: (function_definition))) @definition.function
""",
        wrappers=frozenset({"variable_declaration"}),
    ),
    "bash": LanguageSpec(defs={"function_definition": "function"}, calls={"command": "name"}),
    "elixir": LanguageSpec(
        queries=f"""
(call target: (identifier) @keyword (#match? @keyword "^({_ELIXIR_MODULE_KEYWORDS})$")
  (arguments . (alias) @name)) @definition.module
(call target: (identifier) @keyword (#match? @keyword "^({_ELIXIR_DEF_KEYWORDS})$")
  (arguments . [(identifier) @name (call target: (identifier) @name)
                (binary_operator left: (call target: (identifier) @name))])) @definition.function
(call target: (identifier) @name (#not-match? @name "^({_ELIXIR_DECLARATIONS})$")) @reference.call
(call target: (dot right: (identifier)) @name (arguments)) @reference.call
(alias) @reference.type
""",
        leading=frozenset({"unary_operator"}),
        merge_clauses=True,
    ),
    "haskell": LanguageSpec(
        defs={
            "function": "function", "signature": "function", "data_type": "type",
            "newtype": "type", "type_synomym": "type", "class": "class",
        },
        queries="""
(declarations (bind name: (variable) @name) @definition.function)
(apply function: [(variable) (constructor)] @name) @reference.call
(name) @reference.type
""",
        leading=frozenset({"haddock"}),
        merge_clauses=True,
    ),
    "zig": LanguageSpec(
        queries="""
(Decl (FnProto function: (IDENTIFIER) @name)) @definition.function
(Decl (VarDecl variable_type_function: (IDENTIFIER) @name
  (ErrorUnionExpr (SuffixExpr (ContainerDecl (ContainerDeclType "enum")))))) @definition.enum
(Decl (VarDecl variable_type_function: (IDENTIFIER) @name
  (ErrorUnionExpr (SuffixExpr (ContainerDecl (ContainerDeclType "union")))))) @definition.union
(Decl (VarDecl variable_type_function: (IDENTIFIER) @name
  (ErrorUnionExpr (SuffixExpr (ContainerDecl))))) @definition.struct
(TestDecl (STRINGLITERALSINGLE) @name) @definition.test
(FieldOrFnCall function_call: (IDENTIFIER) @name) @reference.call
(SuffixExpr variable_type_function: (IDENTIFIER) @name . (FnCallArguments)) @reference.call
""",
    ),
}
# fmt: on

# Node-type names that look like definitions in grammars without a hand-written entry.
_GENERIC_DEF = re.compile(
    r"^(?:\w+_)?(function|method|class|struct|interface|trait|enum|module|namespace|impl|macro|type"
    r"|record|object|protocol|union|procedure|subroutine|constructor)"
    r"_(?:definition|declaration|item|def|decl|statement|specifier|signature)(?:_statement)?$"
)
_GENERIC_KIND = {"procedure": "function", "subroutine": "function", "constructor": "method"}
_GENERIC_CALLS = (
    "call", "call_expression", "function_call", "method_call", "method_invocation",
    "invocation_expression", "function_call_expression",
)  # fmt: skip


def generic_candidates(node_types: Iterable[str]) -> list[str]:
    """Candidate patterns for a grammar without a table, guessed from its node-type names.

    Some will not compile (a node without a ``name`` field); the caller keeps those that do.
    """
    present = set(node_types)
    defs = {}
    for node in sorted(present):
        if match := _GENERIC_DEF.match(node):
            defs[node] = _GENERIC_KIND.get(match[1], match[1])
    calls = reference_patterns({node: None for node in _GENERIC_CALLS if node in present})
    types = reference_patterns({}, ["type_identifier"]) if "type_identifier" in present else []
    return definition_patterns(defs) + calls + types
