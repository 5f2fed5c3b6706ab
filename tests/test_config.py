import dataclasses

import pytest
import yaml

from realtime.config import DEFAULT_CONFIG_PATH, Config, load_config
from realtime.errors import ConfigError


def test_default_yaml_matches_dataclass_defaults():
    data = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    assert data == dataclasses.asdict(Config())


def test_user_file_overrides_defaults_and_flags_override_file(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("engine:\n  backend: tflite\n  threads: 1\nstyles:\n  strength: 0.5\n")
    cfg = load_config(f, {"engine.threads": 2})
    assert cfg.engine.backend == "tflite"
    assert cfg.engine.threads == 2
    assert cfg.styles.strength == 0.5
    assert cfg.live.size == 384  # untouched default


@pytest.mark.parametrize(
    "text, key",
    [
        ("engine:\n  backnd: tf\n", "engine.backnd"),
        ("enginee:\n  backend: tf\n", "enginee"),
        ("engine:\n  threads: two\n", "engine.threads"),
        ("engine:\n  backend: jax\n", "engine.backend"),
        ("live:\n  overlay: 3\n", "live.overlay"),
        ("models:\n  base_url: 5\n", "models.base_url"),  # once accepted, then failed per file at download
    ],
)
def test_bad_keys_are_rejected_naming_the_key(tmp_path, text, key):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(f)


def test_config_is_frozen():
    cfg = load_config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.engine.backend = "hub"  # type: ignore[misc]


def test_invalid_yaml_and_missing_file(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("engine: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(f)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize("text, overrides, key", [
    ("live: [1, 2]\n", {"live.source": "synthetic"}, "live"),
    ("live:\n  size: big\n", {"live.size": 384}, "live.size"),
    ("engine:\n  threads: -3\n", {"engine.threads": 2}, "engine.threads"),
])
def test_the_file_is_checked_whole_before_overrides(tmp_path, text, overrides, key):
    """Issue 27: an override of a key (or of a key in a section) that is broken in the file hid the
    breakage; the file alone is validated first."""
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(f, overrides)
