"""Qualified names in each language's own notation find the nested definition they name.

A small repository per language, written the way those projects write it, with a decoy: the same
method name on another class (or module), so only a search that matches the qualifiers by suffix
against the symbol path and the file path puts the right definition first. Real parsing, a real
index (keyword and symbol layers; no embeddings, so the test stays fast and offline).
"""

from __future__ import annotations

import dataclasses

import pytest

from ragls import config
from ragls.indexer.engine import Index
from ragls.indexer.parsing import parse
from ragls.indexer.search import is_name_query, named_symbols

FILES = {
    # Ruby: modules and classes nest; `#` marks an instance method, `.` a class method.
    "lib/thor/parser/options.rb": """\
class Thor
  class Options < Arguments
    # Parses the given options, returning the hash of switches.
    def parse(args)
      @pile = args.dup
      check_requirement!
      assign_result!
    end
  end
end
""",
    "lib/thor/parser/arguments.rb": """\
class Thor
  class Arguments
    def parse(args)
      @pile = args.dup
      @assigns
    end
  end
end
""",
    "lib/thor/util.rb": """\
class Thor
  module Util
    class << self
      def snake_case(str)
        return str.downcase if str =~ /^[A-Z_]+$/
        str.gsub(/\\B[A-Z]/, '_\\&').squeeze("_").downcase
      end
    end
  end
end
""",
    "lib/faraday/connection.rb": """\
module Faraday
  class Connection
    def run_request(method, url, body, headers)
      request = build_request(method)
      builder.build_response(self, request)
    end
  end
end
""",
    "lib/faraday/adapter.rb": """\
module Faraday
  class Adapter
    def run_request(env)
      env
    end
  end
end
""",
    "lib/rack/request.rb": """\
module Rack
  class Request
    # Checks the HTTP request method (or verb) to see if it was of type XMLHttpRequest.
    def xhr?
      get_header("HTTP_X_REQUESTED_WITH") == "XMLHttpRequest"
    end
  end
end
""",
    "lib/rack/mock_request.rb": """\
module Rack
  class MockRequest
    def xhr?
      false
    end
  end
end
""",
    # Elixir: modules are dotted, functions are named with their arity.
    "lib/phoenix/router.ex": """\
defmodule Phoenix.Router do
  defmacro scope(path, options, do: context) do
    add_scope(path, options, context)
  end
end
""",
    "lib/phoenix/router/scope.ex": """\
defmodule Phoenix.Router.Scope do
  def scope(module, path) do
    {module, path}
  end
end
""",
    # Go: methods attach to their receiver's type; the package is the folder.
    "entry.go": """\
package logrus

type Entry struct {
	Data Fields
}

func (entry *Entry) WithFields(fields Fields) *Entry {
	data := make(Fields, len(entry.Data)+len(fields))
	return &Entry{Data: data}
}
""",
    "logger.go": """\
package logrus

type Logger struct {
	Level Level
}

func (logger *Logger) WithFields(fields Fields) *Entry {
	entry := logger.newEntry()
	return entry.WithFields(fields)
}
""",
    # Java: the package is the folder, classes nest.
    "src/main/java/org/jpype/proxy/JPypeProxy.java": """\
package org.jpype.proxy;

public class JPypeProxy implements InvocationHandler
{
  public Object invoke(Object proxy, Method method, Object[] args) throws Throwable
  {
    return hostInvoke(method.getName(), args);
  }
}
""",
    "src/main/java/org/jpype/ref/JPypeReference.java": """\
package org.jpype.ref;

public class JPypeReference
{
  public Object invoke(Object target)
  {
    return target;
  }
}
""",
    # PHP: namespaces with backslashes, `::` for members.
    "Application.php": """\
<?php
namespace Symfony\\Component\\Console;

class Application
{
    public function find(string $name)
    {
        return $this->get($name);
    }
}
""",
    "Helper/HelperSet.php": """\
<?php
namespace Symfony\\Component\\Console\\Helper;

class HelperSet
{
    public function find(string $name)
    {
        return $this->helpers[$name];
    }
}
""",
    # Rust: crate::Trait::method and crate::module::Type.
    "src/lib.rs": """\
pub trait Itertools: Iterator {
    fn group_by<K, F>(self, key: F) -> GroupBy<K, Self, F>
    where
        F: FnMut(&Self::Item) -> K,
    {
        groupbylazy::new(self, key)
    }
}
""",
    "src/grouping_map.rs": """\
pub struct GroupingMap<I> {
    iter: I,
}

impl<I> GroupingMap<I> {
    pub fn group_by(self) -> Self {
        self
    }
}
""",
    "src/either_or_both.rs": """\
/// Value that either holds a single A or B, or both.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum EitherOrBoth<A, B> {
    /// Both values are present.
    Both(A, B),
    /// Only the left value of type `A` is present.
    Left(A),
    /// Only the right value of type `B` is present.
    Right(B),
}

impl<A, B> EitherOrBoth<A, B> {
    /// If `Left` or `Both`, return true, otherwise false (see `EitherOrBoth::has_left`).
    pub fn has_left(&self) -> bool {
        self.as_ref().left().is_some()
    }

    /// If `Left` or `Both`, return true, otherwise false (see `EitherOrBoth::has_right`).
    pub fn has_right(&self) -> bool {
        self.as_ref().right().is_some()
    }

    /// If `Left` or `Both`, return true, otherwise false (see `EitherOrBoth::is_left`).
    pub fn is_left(&self) -> bool {
        matches!(*self, EitherOrBoth::Left(_))
    }

    /// If `Left` or `Both`, return true, otherwise false (see `EitherOrBoth::is_right`).
    pub fn is_right(&self) -> bool {
        matches!(*self, EitherOrBoth::Right(_))
    }

    /// If `Left` or `Both`, return true, otherwise false (see `EitherOrBoth::is_both`).
    pub fn is_both(&self) -> bool {
        matches!(*self, EitherOrBoth::Both(_, _))
    }

    /// Converts from `&EitherOrBoth<A, B>` to `EitherOrBoth<&A, &B>`.
    pub fn as_ref(&self) -> EitherOrBoth<&A, &B> {
        match *self {
            EitherOrBoth::Left(ref left) => EitherOrBoth::Left(left),
            EitherOrBoth::Right(ref right) => EitherOrBoth::Right(right),
            EitherOrBoth::Both(ref left, ref right) => EitherOrBoth::Both(left, right),
        }
    }

    /// Converts from `&mut EitherOrBoth<A, B>` to `EitherOrBoth<&mut A, &mut B>`.
    pub fn as_mut(&mut self) -> EitherOrBoth<&mut A, &mut B> {
        match *self {
            EitherOrBoth::Left(ref mut left) => EitherOrBoth::Left(left),
            EitherOrBoth::Right(ref mut right) => EitherOrBoth::Right(right),
            EitherOrBoth::Both(ref mut left, ref mut right) => EitherOrBoth::Both(left, right),
        }
    }

    /// Convert `EitherOrBoth<A, B>` to `EitherOrBoth<B, A>`.
    pub fn flip(self) -> EitherOrBoth<B, A> {
        match self {
            EitherOrBoth::Left(a) => EitherOrBoth::Right(a),
            EitherOrBoth::Right(b) => EitherOrBoth::Left(b),
            EitherOrBoth::Both(a, b) => EitherOrBoth::Both(b, a),
        }
    }
}

impl<T> EitherOrBoth<T, T> {
    /// Return either value of left, right, or the product of `f` applied where `Both` are present.
    pub fn reduce<F>(self, f: F) -> T
    where
        F: FnOnce(T, T) -> T,
    {
        match self {
            EitherOrBoth::Left(a) => a,
            EitherOrBoth::Right(b) => b,
            EitherOrBoth::Both(a, b) => f(a, b),
        }
    }
}
""",
    # C++: namespaces and a member function defined out of its class.
    "include/spdlog/details/file_helper-inl.h": """\
namespace spdlog {
namespace details {

SPDLOG_INLINE void file_helper::open(const filename_t &fname, bool truncate)
{
    close();
    filename_ = fname;
}

} // namespace details
} // namespace spdlog
""",
    "include/spdlog/sinks/basic_file_sink-inl.h": """\
namespace spdlog {
namespace sinks {

template<typename Mutex>
SPDLOG_INLINE void basic_file_sink<Mutex>::open(const filename_t &filename)
{
    file_helper_.open(filename);
}

} // namespace sinks
} // namespace spdlog
""",
    # Python: package.module.Class.method.
    "src/jinja2/loaders.py": """\
class FileSystemLoader(BaseLoader):
    def get_source(self, environment, template):
        pieces = split_template_path(template)
        return pieces


class PackageLoader(BaseLoader):
    def get_source(self, environment, template):
        return template
""",
    # Lua: module.Class:method.
    "lua/pl/List.lua": """\
local List = {}

function List:partition (fun,...)
    local res = {}
    return res
end

return List
""",
    "lua/pl/tablex.lua": """\
local tablex = {}

function tablex.partition (t, fun)
    return t
end

return tablex
""",
}

# (query, file of the definition, the line the definition's name is on)
QUALIFIED = [
    ("Thor::Options#parse", "lib/thor/parser/options.rb", 4),
    ("Thor::Util.snake_case", "lib/thor/util.rb", 4),
    ("Faraday::Connection#run_request", "lib/faraday/connection.rb", 3),
    ("Rack::Request#xhr?", "lib/rack/request.rb", 4),
    ("Phoenix.Router.scope/3", "lib/phoenix/router.ex", 2),
    ("logrus.Entry.WithFields", "entry.go", 7),
    ("(*Entry).WithFields", "entry.go", 7),
    ("org.jpype.proxy.JPypeProxy.invoke", "src/main/java/org/jpype/proxy/JPypeProxy.java", 5),
    ("Symfony\\Component\\Console\\Application::find", "Application.php", 6),
    ("itertools::Itertools::group_by", "src/lib.rs", 2),
    ("itertools::EitherOrBoth", "src/either_or_both.rs", 4),  # the enum, not one of its impl blocks
    ("spdlog::details::file_helper::open", "include/spdlog/details/file_helper-inl.h", 4),
    ("jinja2.loaders.FileSystemLoader.get_source", "src/jinja2/loaders.py", 2),
    ("pl.List:partition", "lua/pl/List.lua", 3),
]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Index:
    root = tmp_path_factory.mktemp("polyglot")
    for path, text in FILES.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    cache = tmp_path_factory.mktemp("cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("RAGLS_CACHE_DIR", str(cache))
    mp.setenv("RAGLS_CONFIG", str(cache / "none.toml"))
    cfg = config.load(root)
    idx = Index.open(root, dataclasses.replace(cfg, index=dataclasses.replace(cfg.index, embeddings=False)))
    idx.update()
    yield idx
    idx.close()
    mp.undo()


@pytest.mark.parametrize(("query", "path", "line"), QUALIFIED)
def test_qualified_name_finds_the_nested_definition(index: Index, query: str, path: str, line: int) -> None:
    top = index.search(query, top_k=5)[0]
    assert (top.path, top.start_line <= line <= top.end_line) == (path, True), (top.path, top.start_line)


@pytest.mark.parametrize(
    ("path", "qualified"),
    [
        ("lib/faraday/connection.rb", "connection.Faraday.Connection.run_request"),
        ("lib/thor/util.rb", "util.Thor.Util.snake_case"),
        ("entry.go", "entry.Entry.WithFields"),
        ("src/main/java/org/jpype/proxy/JPypeProxy.java", "JPypeProxy.JPypeProxy.invoke"),
        ("Application.php", "Application.Application.find"),
        ("src/lib.rs", "lib.Itertools.group_by"),
        ("include/spdlog/details/file_helper-inl.h", "file_helper-inl.spdlog.details.file_helper.open"),
        ("lua/pl/List.lua", "List.List.partition"),
    ],
)
def test_symbol_paths_nest_per_language(path: str, qualified: str) -> None:
    """Ruby modules nest, Go receivers attach methods to types, C++ namespaces wrap out-of-class members."""
    symbols = parse(path, FILES[path]).symbols
    assert qualified in [s.qualified for s in symbols if s.role == "definition"]


def test_notations_split_into_name_and_qualifiers() -> None:
    assert named_symbols("Thor::Options#parse") == {"parse": ("parse", ["thor", "options"])}
    assert named_symbols("(*Entry).WithFields") == {"withfields": ("WithFields", ["entry"])}
    assert named_symbols("Ns\\Sub\\Klass::run") == {"run": ("run", ["ns", "sub", "klass"])}
    assert named_symbols("obj->handler") == {"handler": ("handler", ["obj"])}
    assert named_symbols("Phoenix.Router.scope/4") == {"scope": ("scope", ["phoenix", "router"])}
    assert named_symbols("Request#xhr?") == {"xhr?": ("xhr?", ["request"]), "xhr": ("xhr?", ["request"])}
    # prose: only identifier-looking words name symbols
    assert named_symbols("how does the retry middleware back off") == {}
    assert named_symbols("where is parse_args called") == {"parse_args": ("parse_args", [])}


@pytest.mark.parametrize(
    ("query", "lookup"),
    [
        ("Thor::Group", True),
        ("find_command_possibilities", True),
        ("(*Entry).WithFields", True),
        ("logrus.Entry WithFields", True),
        ("response", False),  # one plain word is as likely a topic as a name
        ("where is TokenError raised", False),
        ("how does Environment.get_template find a template", False),
    ],
)
def test_name_queries_are_told_from_questions(query: str, lookup: bool) -> None:
    """Query-type routing: the symbol table leads only when the query is nothing but names."""
    assert is_name_query(query) is lookup


EXPORTED_PROTOTYPES = """\
/**
 * Decompresses the input stream to the output stream.
 * @returns ::BROTLI_DECODER_RESULT_ERROR if input is corrupted
 */
BROTLI_DEC_API BrotliDecoderResult BrotliDecoderDecompressStream(
  BrotliDecoderState* state, size_t* available_in, const uint8_t** next_in);

BROTLI_DEC_API BROTLI_BOOL BrotliDecoderIsFinished(const BrotliDecoderState* state);
"""

INLINE_MEMBER = """\
namespace spdlog {
namespace details {
void SPDLOG_INLINE thread_pool::post_flush(async_logger_ptr &&worker_ptr)
{
    post_async_msg_(async_msg(std::move(worker_ptr), async_msg_type::flush), overflow_policy::block);
}
} // namespace details
} // namespace spdlog
"""


@pytest.mark.parametrize("language", ["c", "cpp"])
def test_an_export_macro_before_the_return_type_does_not_rename_the_function(language: str) -> None:
    """``API Result name(...)``: the C++ grammar reads ``Result name`` as ``Result::name`` with an
    invented ``::``; the definition keeps the function's name, not its return type's."""
    symbols = parse("include/brotli/decode.h", EXPORTED_PROTOTYPES, language=language).symbols
    names = {s.name for s in symbols if s.role == "definition"}
    assert names == {"BrotliDecoderDecompressStream", "BrotliDecoderIsFinished"}


def test_a_macro_before_an_out_of_class_member_does_not_become_its_class() -> None:
    """``void INLINE Class::method(...)`` reads as ``INLINE::method`` the same way."""
    symbols = parse("details/thread_pool-inl.h", INLINE_MEMBER, language="cpp").symbols
    qualified = [s.qualified for s in symbols if s.role == "definition"]
    assert "thread_pool-inl.spdlog.details.thread_pool.post_flush" in qualified
