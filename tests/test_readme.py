"""The README's quick start has exactly two commands, and CI runs the test one."""

import re

from conftest import ROOT


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [l for l in block.splitlines() if l.strip() and not l.startswith("#")]


def test_two_commands_and_ci_runs_the_test_one():
    cmds = quick_start_commands()
    assert len(cmds) == 2
    assert cmds[0].endswith("stylize live")
    assert "pytest" in cmds[1]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert cmds[1] in ci


# Where the README and the configs name a style: a value of --style or --blend, the names after
# `styles fetch`, a JSON "style", a playlist string ("name 60s 1.2; name; ..."), "style `name`".
_STYLE_FLAG = re.compile(r"--style[= ]([^\s`)|\"']+)")
_BLEND = re.compile(r"--blend((?:\s+[^\s`:]+:[\d.]+)+)")
_FETCH = re.compile(r"styles fetch((?:\s+[a-z][a-z0-9_]*)+)")
_JSON_STYLE = re.compile(r'"style":\s*"([^"]+)"')
_PLAYLIST = re.compile(r'"([^"\n]*\d+s[^"\n]*;[^"\n]*)"')
_PROSE = re.compile(r"\bstyle `([a-z][a-z0-9_]*)`")
_PLACEHOLDER = re.compile(r"^[A-Z_:.]+$|\.\.\.|^NAME$")


def style_names(text: str) -> list[tuple[str, str]]:
    """(name, where it was found) for every style the text names."""
    from realtime.schedule import parse_playlist

    found = [(m.group(1), m.group(0)) for m in _STYLE_FLAG.finditer(text)]
    found += [(item.split(":")[0], m.group(0)) for m in _BLEND.finditer(text) for item in m.group(1).split()]
    found += [(name, m.group(0)) for m in _FETCH.finditer(text) for name in m.group(1).split()]
    found += [(m.group(1), m.group(0)) for m in _JSON_STYLE.finditer(text)]
    found += [(e.style, m.group(0)) for m in _PLAYLIST.finditer(text) for e in parse_playlist(m.group(1))]
    found += [(m.group(1), m.group(0)) for m in _PROSE.finditer(text)]
    return [(name, where) for name, where in found if not _PLACEHOLDER.search(name)]


def test_every_style_the_readme_and_the_configs_name_exists():
    """Issue 27: the README and configs/default.yaml named `great_wave` and `scream`, which exist
    neither in styles/ nor in the catalogue.  A name must be a shipped style or a catalogue entry
    (fetchable by that name); a path must exist in the checkout."""
    import yaml

    from realtime.model.style_catalog import load_catalog
    from realtime.model.styles import list_styles
    from realtime.schedule import parse_playlist

    shipped = {s.name for s in list_styles(ROOT / "styles")}
    known = shipped | {e.name for e in load_catalog(ROOT / "styles" / "catalog.yaml")}
    assert {"mosaic", "waves"} <= shipped
    named = [(n, w, "README.md") for n, w in style_names((ROOT / "README.md").read_text())]
    for config in sorted((ROOT / "configs").glob("*.yaml")):
        text = config.read_text()
        named += [(n, w, config.name) for n, w in style_names(text)]  # comments included
        data = yaml.safe_load(text) or {}
        values = [data.get("styles", {}).get("default")] + [e.style for e in parse_playlist(data.get("show", {}).get("playlist") or "")]
        named += [(v, "value", config.name) for v in values if v]
    assert len(named) > 10  # the patterns still find the README's examples
    wrong = [(name, where, f) for name, where, f in named
             if not (name in known or ("/" in name and (ROOT / name).exists()))]
    assert not wrong, f"styles named that do not exist (shipped: {sorted(shipped)}; catalogue: {sorted(known - shipped)}): {wrong}"


def test_the_style_name_check_sees_the_names_it_must():
    found = {n for n, _ in style_names('stylize video a --style great_wave --blend ink:0.5 dots:0.2\n'
                                       'stylize styles fetch wave the_scream   # then\n'
                                       'playlist: "scream 60s 1.2; mosaic"\n{"style": "x"} style `y` --style STYLE --style upload-...')}
    assert found == {"great_wave", "ink", "dots", "wave", "the_scream", "scream", "mosaic", "x", "y"}
