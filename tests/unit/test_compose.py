"""Self-hosting files: the compose file is valid, and the image installs like the README.

No Docker here: the compose file is checked against the Compose Specification schema, its
variables against .env.example, its settings against `Settings`, its commands against the real
CLI, and the README's steps against the compose file.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import typer.main
import yaml

from cli.main import app
from pipeline.capabilities import STAGES
from pipeline.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
DOCKERFILE = (ROOT / "server" / "Dockerfile").read_text()
README = (ROOT / "README.md").read_text()
SECTION = "## Self-hosting with docker compose"
SECRETS = ("REDIS_PASSWORD", "TURN_SECRET", "JWT_SECRET")
# What an operator puts in .env for the required names (the secrets as `openssl rand -hex 32`).
FILLED_IN = {
    "REDIS_PASSWORD": "9f2c" * 16,
    "TURN_SECRET": "4be1" * 16,
    "JWT_SECRET": "7d03" * 16,
    "TURN_HOST": "turn.example.org",
    "PUBLIC_URL": "https://calls.example.org",
}
README_STEPS = [
    "cp .env.example .env",
    "docker compose up -d --build",
    "docker compose logs -f gateway",
    "docker compose up -d --scale worker=3",
    "docker compose --profile gpu up -d --build",
    "docker compose run --rm translate /data/talk.wav --to pt,es --out /data/out",
    "docker compose down",
]

# Compose interpolation: $$ (a literal $), $NAME, ${NAME}, ${NAME:-default}, ${NAME-default},
# ${NAME:?message}, ${NAME?message}, ${NAME:+replacement}, ${NAME+replacement}.
_VARIABLE = re.compile(
    r"\$\$|\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


def variables(text: str) -> Iterator[tuple[str, str, str]]:
    """(name, operator, argument) of each variable reference in one compose string."""
    for match in _VARIABLE.finditer(text):
        if match.group(0) == "$$":
            continue
        name = match.group("braced") or match.group("bare")
        yield name, match.group("op") or "", match.group("arg") or ""


def interpolate(text: str, env: dict[str, str]) -> str:
    """The string as `docker compose` sees it with these variables (KeyError: required, unset)."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("braced") or match.group("bare")
        op, arg = match.group("op") or "", match.group("arg") or ""
        value = env.get(name)
        unset = value is None or (op.startswith(":") and value == "")
        if op.endswith("-"):
            return arg if unset else str(value)
        if op.endswith("?"):
            if unset:
                raise KeyError(f"{name}: {arg}")
            return str(value)
        if op.endswith("+"):
            return "" if unset else arg
        return value or ""

    return _VARIABLE.sub(substitute, text)


def strings(node: Any) -> Iterator[str]:
    """Every string value in a parsed YAML tree (YAML comments are not part of it)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def references() -> list[tuple[str, str, str]]:
    return [ref for text in strings(COMPOSE) for ref in variables(text)]


def env_example() -> tuple[dict[str, str], dict[str, str]]:
    """.env.example: (names set on a line of their own, names shown commented out as `# NAME=`)."""
    required: dict[str, str] = {}
    optional: dict[str, str] = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if match := re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line):
            required[match[1]] = match[2]
        elif match := re.fullmatch(r"# ([A-Z][A-Z0-9_]*)=(.*)", line):
            optional[match[1]] = match[2]
    return required, optional


def filled_in_env() -> dict[str, str]:
    """The .env of an operator who filled in the required lines and kept every default."""
    required, _ = env_example()
    return {**required, **FILLED_IN}


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def dragoman_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in SERVICES.items() if s.get("image", "").startswith("dragoman:")}


def argv(service: dict[str, Any]) -> list[str]:
    """The process a service runs: its entrypoint (or the image's) and its command."""
    image_entrypoint = re.search(r"^ENTRYPOINT (\[.*\])$", DOCKERFILE, re.MULTILINE)
    assert image_entrypoint is not None
    entrypoint = service.get("entrypoint", json.loads(image_entrypoint[1]))
    command = service.get("command", [])
    if isinstance(command, str):
        command = shlex.split(command)
    return [*entrypoint, *command]


def readme_section() -> str:
    start = README.index(SECTION + "\n")
    end = README.index("\n## ", start + len(SECTION))
    return README[start:end]


def readme_steps() -> list[str]:
    blocks = re.findall(r"^```bash\n(.*?)^```$", readme_section(), re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1, "one fenced bash block with the steps"
    return [line for line in blocks[0].splitlines() if line and not line.startswith("#")]


def check_dragoman_args(args: list[str]) -> dict[str, Any]:
    """A real subcommand with real options, which click parses (types and choices included)."""
    group = typer.main.get_command(app)  # a group of typer's own (vendored) click
    assert isinstance(getattr(group, "commands", None), dict)
    assert args[0] == "dragoman", args
    command = group.commands.get(args[1])
    assert command is not None, f"dragoman has no command {args[1]!r}"
    known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    for token in args[2:]:
        if token.startswith("--"):
            assert token.split("=", 1)[0] in known, f"dragoman {args[1]} has no option {token}"
    return dict(command.make_context(args[1], args[2:]).params)


def test_compose_file_validates_against_the_compose_spec(fixtures_dir: Path) -> None:
    schema = json.loads((fixtures_dir.parent / "schemas" / "compose-spec.json").read_text())
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    jsonschema.Draft7Validator(schema).validate(compose)
    for name in ("redis", "gateway", "worker", "worker-gpu", "coturn", "translate"):
        assert name in compose["services"], name
    for service in dragoman_services().values():
        assert service["build"]["dockerfile"] == "server/Dockerfile"
        assert service["build"]["context"] == "."
    assert compose["services"]["translate"]["build"]["dockerfile"] == "server/Dockerfile"
    assert compose["services"]["translate"]["profiles"] == ["tools"]


def test_image_uses_the_readme_set_up() -> None:
    dockerfile = (ROOT / "server" / "Dockerfile").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "RUN make setup" in dockerfile
    assert "make run" in readme and "make test" in readme
    first_commands = [line for line in readme.splitlines() if line.startswith("make ")][:2]
    assert first_commands == ["make run", "make test"]


def test_image_bakes_every_model_in_at_build_time() -> None:
    """Project packages come only from `make setup`; the GPU path adds exact-pinned NVIDIA wheels;
    a hub ASR model is a build argument, downloaded by a RUN step; run time is offline."""
    installs = re.findall(r"pip install ([^;\n]*)", DOCKERFILE)
    assert installs, "the GPU path installs its CUDA libraries"
    for install in installs:
        packages = [word for word in install.split() if not word.startswith("-")]
        assert packages and all(re.fullmatch(r"nvidia-[a-z0-9-]+==[0-9.]+", p) for p in packages)
    assert re.search(r"^ARG GPU=0$", DOCKERFILE, re.MULTILINE)
    assert re.search(r'^ARG ASR_MODEL=""$', DOCKERFILE, re.MULTILINE)
    assert "download_model(" in DOCKERFILE
    assert "DRAGOMAN_ASR_MODEL=${ASR_MODEL:+/opt/dragoman/asr/}${ASR_MODEL:-base}" in DOCKERFILE
    assert "HF_HUB_OFFLINE=1" in DOCKERFILE
    assert "DRAGOMAN_CACHE_DIR=/var/cache/dragoman" in DOCKERFILE
    assert "RUN dragoman models --json" in DOCKERFILE
    arguments = set(re.findall(r"^ARG ([A-Z_]+)", DOCKERFILE, re.MULTILINE))
    for name, service in dragoman_services().items():
        unknown = set(service["build"].get("args", {})) - arguments
        assert not unknown, f"{name}: build args the Dockerfile does not declare: {unknown}"


def test_secrets_are_required_and_every_variable_is_in_env_example() -> None:
    refs = references()
    for secret in SECRETS:
        uses = [(op, arg) for name, op, arg in refs if name == secret]
        assert uses, f"{secret} is not used"
        for op, arg in uses:
            assert op == ":?" and arg.strip(), f"{secret} must be ${{{secret}:?message}}"
    required, optional = env_example()
    for name, op, _ in refs:
        if op == ":?":
            assert required.get(name) == "", f".env.example must list {name}= (empty, required)"
        else:
            assert name in optional, f".env.example must show `# {name}=` (optional)"
    # An optional line shows the compose file's default, and nothing is listed that is not used.
    defaults: dict[str, set[str]] = {}
    for name, op, arg in refs:
        if op == ":-":
            defaults.setdefault(name, set()).add(arg)
    for name, value in optional.items():
        assert defaults.get(name) == {value}, f"{name}: {defaults.get(name)} vs .env.example"
    assert set(required) | set(optional) == {name for name, _, _ in refs}
    for secret in SECRETS:
        assert required[secret] == "", "no secret ships with a value"


def settings_of(service: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings a service's process gets from the filled-in .env (and nothing else)."""
    for key in list(os.environ):
        if key.startswith("DRAGOMAN_"):
            monkeypatch.delenv(key)
    env = filled_in_env()
    for key, value in environment(service).items():
        monkeypatch.setenv(key, interpolate(value, env))
    return Settings()


def test_compose_sets_only_real_dragoman_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    fields = {f"DRAGOMAN_{name.upper()}" for name in Settings.model_fields}
    configured = [name for name, s in SERVICES.items() if any(environment(s))]
    assert {"gateway", "worker", "worker-gpu", "translate"} <= set(configured)
    for name in configured:
        for key in environment(SERVICES[name]):
            assert not key.startswith("DRAGOMAN_") or key in fields, f"{name}: unknown {key}"
        settings_of(SERVICES[name], monkeypatch)  # valid values, JSON lists included
    gateway = settings_of(SERVICES["gateway"], monkeypatch)
    assert gateway.redis_url is not None and gateway.turn_secret is not None
    assert gateway.public_url == FILLED_IN["PUBLIC_URL"]
    assert gateway.turn_urls == [
        "turn:turn.example.org:3478?transport=udp",
        "turn:turn.example.org:3478?transport=tcp",
    ]
    assert [server.urls for server in gateway.ice_servers] == [["stun:turn.example.org:3478"]]
    assert settings_of(SERVICES["worker-gpu"], monkeypatch).asr_compute_type == "float16"


def test_every_dragoman_command_is_a_real_cli_command() -> None:
    env = filled_in_env()
    for name in ("gateway", "worker", "worker-gpu"):
        args = [interpolate(arg, env) for arg in argv(SERVICES[name])]
        params = check_dragoman_args(args)
        if name.startswith("worker"):  # the values `dragoman worker` checks when it starts
            assert params["device"] in ("cpu", "cuda"), name
            assert set(params["stages"].split(",")) <= set(STAGES), name
    assert argv(SERVICES["gateway"])[1] == "serve"
    assert argv(SERVICES["worker"])[1:2] == argv(SERVICES["worker-gpu"])[1:2] == ["worker"]
    # `translate` gets its arguments from `docker compose run`: the README's are valid.
    translate = argv(SERVICES["translate"])
    runs = [shlex.split(step) for step in readme_steps() if " run " in step]
    assert runs
    for words in runs:
        assert words[words.index("translate") - 1] == "--rm"
        check_dragoman_args([*translate, *words[words.index("translate") + 1 :]])


def test_gpu_worker_is_opt_in_and_reserves_an_nvidia_gpu() -> None:
    gpu = SERVICES["worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert [name for name, s in SERVICES.items() if "gpu" in s.get("profiles", [])] == [
        "worker-gpu"
    ]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert any(d.get("driver") == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    for name, service in SERVICES.items():
        if name != "worker-gpu":
            assert "deploy" not in service and "gpus" not in service, name
    assert gpu["build"]["args"]["GPU"] == "1"
    assert interpolate(gpu["build"]["args"]["ASR_MODEL"], filled_in_env())
    assert gpu["image"] != SERVICES["worker"]["image"]
    command = argv(gpu)
    assert command[command.index("--device") + 1] == "cuda"
    assert environment(gpu)["DRAGOMAN_ASR_COMPUTE_TYPE"] == "float16"


def test_redis_is_protected_healthchecked_and_awaited() -> None:
    redis = SERVICES["redis"]
    command = redis["command"]
    assert command[command.index("--requirepass") + 1].startswith("${REDIS_PASSWORD:?")
    assert redis["healthcheck"]["test"]
    env = filled_in_env()
    assert [interpolate(port, env) for port in redis["ports"]] == ["127.0.0.1:6379:6379"]
    users = [
        name for name, service in SERVICES.items() if "DRAGOMAN_REDIS_URL" in environment(service)
    ]
    assert {"gateway", "worker", "worker-gpu"} <= set(users)
    for name in users:
        url = interpolate(environment(SERVICES[name])["DRAGOMAN_REDIS_URL"], env)
        assert url.startswith(f"redis://:{FILLED_IN['REDIS_PASSWORD']}@"), name
        assert SERVICES[name]["depends_on"]["redis"]["condition"] == "service_healthy", name


def test_gateway_and_turn_share_the_secret_on_the_host_network() -> None:
    gateway, coturn = SERVICES["gateway"], SERVICES["coturn"]
    assert gateway["network_mode"] == coturn["network_mode"] == "host"
    assert environment(gateway)["DRAGOMAN_TURN_SECRET"] == environment(coturn)["TURN_SECRET"]
    turnserver = interpolate(" ".join(coturn["command"]), filled_in_env())
    assert "--use-auth-secret" in turnserver
    assert "static-auth-secret=" in turnserver
    assert FILLED_IN["TURN_SECRET"] not in turnserver, "the secret stays off the command line"


def test_readme_compose_steps_are_exact_and_name_real_services() -> None:
    section = readme_section()
    assert README.index(SECTION) < README.index("\n## Settings\n")
    assert README[README.index(SECTION) :].split("\n## ")[1].startswith("Settings\n")
    assert readme_steps() == README_STEPS
    profiles = {p for s in SERVICES.values() for p in s.get("profiles", [])}
    for step in readme_steps():
        words = shlex.split(step)
        if words[:2] != ["docker", "compose"]:
            continue
        words = words[2:]
        while words[0] == "--profile":
            assert words[1] in profiles, step
            words = words[2:]
        subcommand, rest = words[0], words[1:]
        assert subcommand in {"up", "down", "logs", "run"}, step
        named: list[str] = []
        while rest:
            word = rest.pop(0)
            if word == "--scale":
                named.append(rest.pop(0).split("=")[0])
            elif not word.startswith("-"):
                named.append(word)
                if subcommand == "run":
                    break  # the rest is the service's command
        for service in named:
            assert service in SERVICES, f"{step}: no service {service!r}"
    for service in SERVICES:
        assert f"`{service}`" in section, f"the README section does not mention {service}"
