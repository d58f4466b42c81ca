"""The SSH integration's bundle and install step: standard library only, exact files, modes."""

from __future__ import annotations

import ast
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from integrations.ssh import install as installer

PACKAGE_DIR = Path(installer.__file__).parent


def test_every_module_imports_only_the_standard_library_or_its_own_package() -> None:
    """The code runs in the server's Python without pushgate's venv: no third-party imports."""
    allowed = set(sys.stdlib_module_names) | {"__future__"}
    for source in PACKAGE_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{source.name} imports {name}"


def test_bundle_runs_in_an_isolated_interpreter_without_site_packages(tmp_path: Path) -> None:
    """The zipapp starts with ``python -I -S`` (no site-packages at all) and loads every module."""
    bundle = installer.bundle(tmp_path / "pushgate-ssh.pyz")
    names = sorted(p.stem for p in PACKAGE_DIR.glob("*.py") if p.stem != "__main__")
    imports = "; ".join(f"import pushgate_ssh.{name}" for name in names if name != "__init__")
    probe = f"import sys; sys.path.insert(0, {str(bundle)!r}); {imports}; print('ok')"
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
    usage = subprocess.run(
        [sys.executable, "-I", "-S", str(bundle), "--help"], capture_output=True, text=True
    )
    assert usage.returncode == 0 and "install" in usage.stdout, usage.stderr


def test_install_puts_exactly_the_package_entry_launcher_and_a_private_config(
    tmp_path: Path,
) -> None:
    """Install writes the package, the PAM entry file, the launcher and a 0600 config template;
    a second install keeps the operator's config."""
    layout = installer.Layout(tmp_path / "usr", tmp_path / "etc" / "ssh.conf", "/usr/bin/python3")
    installer.install(layout, sudoers=None)
    installed = {p.name for p in (layout.lib / installer.PACKAGE).iterdir()}
    assert installed == {p.name for p in PACKAGE_DIR.glob("*.py")}
    assert stat.S_IMODE(layout.config.stat().st_mode) == 0o600
    assert stat.S_IMODE(layout.launcher.stat().st_mode) == 0o755
    assert layout.launcher.read_text().startswith("#!/usr/bin/python3 -I\n")
    entry = layout.pam_entry.read_text()
    assert str(layout.lib) in entry and str(layout.config) in entry
    layout.config.write_text("[pushgate]\n")
    lines = installer.install(layout, sudoers=None)
    assert layout.config.read_text() == "[pushgate]\n"
    assert f"kept {layout.config}" in lines


def test_sudoers_rule_pins_the_check_and_passes_visudo(tmp_path: Path) -> None:
    """The ForceCommand's rule allows only ``verify --config FILE`` and is valid sudoers."""
    layout = installer.Layout(tmp_path / "usr", tmp_path / "ssh.conf", "/usr/bin/python3")
    text = installer.sudoers_text(layout)
    assert f"NOPASSWD: {layout.launcher} verify --config {layout.config}\n" in text
    visudo = shutil.which("visudo", path="/usr/sbin:/sbin:/usr/bin")
    if visudo is None:
        pytest.skip("visudo (Debian's sudo) is not installed")
    rule = tmp_path / "rule"
    rule.write_text(text)
    checked = subprocess.run([visudo, "-cqf", str(rule)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
