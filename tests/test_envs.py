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
    for smk in (REPO / "rules").glob("*.smk"):
        text = smk.read_text()
        rules = len(re.findall(r"^(?:rule|checkpoint) \w+:", text, flags=re.M))
        envs = text.count("conda:")
        assert envs >= rules, f"{smk.name}: {rules} rules but {envs} conda: directives"
