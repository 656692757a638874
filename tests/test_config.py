from pathlib import Path

import pytest

from ragls import config
from ragls.config import ConfigError


def test_defaults_without_files(tmp_path: Path) -> None:
    cfg = config.load(tmp_path)
    assert cfg.index.max_file_bytes == 1_000_000
    assert cfg.index.location == "cache"
    assert cfg.models.embedding.model == "bundled"
    assert cfg.search.top_k == 10


def test_workspace_overrides_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "user.toml"
    user.write_text("[index]\nmax_file_bytes = 5000\nlines_per_chunk = 40\n[search]\ntop_k = 3\n")
    monkeypatch.setenv("RAGLS_CONFIG", str(user))
    (tmp_path / "ws" / ".ragls").mkdir(parents=True)
    (tmp_path / "ws" / ".ragls" / "config.toml").write_text("[index]\nlines_per_chunk = 20\n")
    cfg = config.load(tmp_path / "ws")
    assert cfg.index.max_file_bytes == 5000  # from the user file
    assert cfg.index.lines_per_chunk == 20  # the workspace wins
    assert cfg.search.top_k == 3


def test_unknown_key_names_file_key_and_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "c.toml"
    user.write_text("[index]\nmax_file_byte = 5\n")
    monkeypatch.setenv("RAGLS_CONFIG", str(user))
    with pytest.raises(ConfigError) as exc:
        config.load(None)
    message = str(exc.value)
    assert str(user) in message and "index.max_file_byte" in message and "max_file_bytes" in message


def test_unknown_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "c.toml"
    user.write_text("[serach]\ntop_k = 5\n")
    monkeypatch.setenv("RAGLS_CONFIG", str(user))
    with pytest.raises(ConfigError, match="unknown key 'serach'.*did you mean 'search'"):
        config.load(None)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ('[index]\nmax_file_bytes = "big"\n', "'index.max_file_bytes' must be int, got str"),
        ("[index]\nmax_file_bytes = true\n", "'index.max_file_bytes' must be int, got bool"),
        ("[index]\nmax_file_bytes = -1\n", "must not be negative"),
        (
            '[index]\nlocation = "home"\n',
            "'index.location' = 'home' is not allowed; choose one of 'cache', 'workspace'",
        ),
        ('[index]\nexclude = "*.log"\n', "'index.exclude' must be a list"),
        ("[index]\nexclude = [1]\n", "'index.exclude' must be str"),
        ('index = "x"\n', "'index' must be a table"),
        ("[index\n", "not valid TOML"),
    ],
)
def test_bad_values_are_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, pattern: str
) -> None:
    (tmp_path / ".ragls").mkdir()
    path = tmp_path / ".ragls" / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=pattern) as exc:
        config.load(tmp_path)
    assert str(path) in str(exc.value)


def test_float_accepts_integer(tmp_path: Path) -> None:
    (tmp_path / ".ragls").mkdir()
    (tmp_path / ".ragls" / "config.toml").write_text("[index]\nwatch_debounce_seconds = 1\n")
    assert config.load(tmp_path).index.watch_debounce_seconds == 1.0


def test_defaults_toml_documents_every_key_and_round_trips(tmp_path: Path) -> None:
    text = config.defaults_toml()
    assert "# files larger than this many bytes are not indexed" in text
    (tmp_path / ".ragls").mkdir()
    (tmp_path / ".ragls" / "config.toml").write_text(text)
    assert config.load(tmp_path) == config.Config()


def test_deep_keys_name_their_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "user.toml"
    user.write_text('[models.chat]\nprovider = "openai"\n')
    monkeypatch.setenv("RAGLS_CONFIG", str(user))
    (tmp_path / ".ragls").mkdir()
    workspace = tmp_path / ".ragls" / "config.toml"
    workspace.write_text("[models.chat]\nzero_retension = true\n")
    with pytest.raises(ConfigError) as exc:
        config.load(tmp_path)
    assert str(exc.value).startswith(f"{workspace}: unknown key 'models.chat.zero_retension'")
    assert "zero_retention" in str(exc.value)


def test_readme_documents_every_default() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert config.defaults_toml() in readme


@pytest.mark.parametrize(
    ("old", "new"), [("concise", "normal"), ("detailed", "detailed"), ("terse", "terse")]
)
def test_an_older_recipes_verbosity_is_read_as_answers_verbosity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, old: str, new: str
) -> None:
    user = tmp_path / "user.toml"
    user.write_text(f'[recipes]\nverbosity = "{old}"\nanswer_tokens = 100\n')
    monkeypatch.setenv("RAGLS_CONFIG", str(user))
    cfg = config.load()
    assert cfg.answers.verbosity == new and cfg.recipes.answer_tokens == 100
    # The new key wins in the same layer, and a later layer's old key still overrides an earlier new one.
    user.write_text('[recipes]\nverbosity = "detailed"\n[answers]\nverbosity = "terse"\n')
    assert config.load().answers.verbosity == "terse"
    assert config.load(overrides=[("editor", {"recipes": {"verbosity": old}})]).answers.verbosity == new


def test_update_user_file_keeps_comments_and_refuses_bad_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = tmp_path / "user.toml"
    user.write_text('# mine\n[search]\ntop_k = 4  # four\n')
    monkeypatch.setenv("RAGLS_CONFIG", str(user))
    config.update_user_file(("answers",), {"verbosity": "terse"})
    assert user.read_text().startswith('# mine\n[search]\ntop_k = 4  # four\n')
    assert config.load().answers.verbosity == "terse"
    with pytest.raises(ConfigError, match="'answers.verbosity' = 'loud' is not allowed"):
        config.update_user_file(("answers",), {"verbosity": "loud"})
    assert config.load().answers.verbosity == "terse"
