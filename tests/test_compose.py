"""Self-hosting files: the compose file is valid, and the image installs like the README."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_compose_file_validates_against_the_compose_spec(fixtures_dir: Path) -> None:
    schema = json.loads((fixtures_dir.parent / "schemas" / "compose-spec.json").read_text())
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    jsonschema.Draft7Validator(schema).validate(compose)
    assert compose["services"]["translate"]["build"]["dockerfile"] == "server/Dockerfile"


def test_image_uses_the_readme_set_up() -> None:
    dockerfile = (ROOT / "server" / "Dockerfile").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "RUN make setup" in dockerfile
    assert "make run" in readme and "make test" in readme
    first_commands = [line for line in readme.splitlines() if line.startswith("make ")][:2]
    assert first_commands == ["make run", "make test"]
