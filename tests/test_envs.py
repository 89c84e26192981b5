"""The conda environment file pins exactly what requirements.txt pins (no conda channel is
reachable here, so this is how the two are kept from drifting apart)."""

import re

import yaml

from conftest import REPO


def pins(lines):
    found = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        match = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)==([^\s]+)", line)
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


def test_conda_env_pins_equal_requirements():
    requirements = pins((REPO / "requirements.txt").read_text().splitlines())
    env = yaml.safe_load((REPO / "envs" / "routing.yaml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pins(pip_section) == requirements
    assert requirements, "requirements.txt pins nothing"


def test_every_rule_uses_the_pinned_env():
    common = (REPO / "rules" / "common.smk").read_text()
    assert re.search(r'^CONDA_ENV = "\.\./envs/routing\.yaml"$', common, flags=re.M)
    assert (REPO / "envs" / "routing.yaml").is_file()
    start = re.compile(r"^\s*(?:rule|checkpoint) (\w+):", flags=re.M)
    checked = 0
    for smk in sorted((REPO / "rules").glob("*.smk")):
        text = smk.read_text()
        heads = list(start.finditer(text))
        for head, after in zip(heads, [*heads[1:], None]):
            block = text[head.end():after.start() if after else len(text)]
            assert re.search(r"^\s*conda:\s*\n\s*CONDA_ENV\s*$", block, flags=re.M), \
                f"{smk.name}: rule {head.group(1)} has no `conda: CONDA_ENV`"
            checked += 1
    assert checked >= 20, f"only {checked} rules found: the pattern no longer matches"
