"""The README's settings tables are the ones `tools/readme_settings.py` renders from the declared settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "readme_settings.py"
FIX = "python tools/readme_settings.py"


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], check=False, capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def test_readme_tables_are_those_the_declarations_give() -> None:
    result = run_script("--check")
    assert result.returncode == 0, f"README.md settings tables are stale; run {FIX}\n{result.stderr}"


def test_a_drifted_default_is_reported_with_the_command_that_fixes_it(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    current = (ROOT / "README.md").read_text(encoding="utf-8")
    row = "| `prospector.scanner.check_interval` | duration > 0 | `10s` |"
    assert row in current
    readme.write_text(current.replace(row, row.replace("`10s`", "`30s`")), encoding="utf-8")

    check = run_script("--check", "--readme", str(readme))
    assert check.returncode == 1
    assert check.stderr.strip() == (f"{readme}: the filestream settings table differs from the declarations in "
                                    f"forwarder.inputs.filestream_config; run {FIX}")

    assert run_script("--readme", str(readme)).returncode == 0
    assert readme.read_text(encoding="utf-8") == current
    assert run_script("--check", "--readme", str(readme)).returncode == 0


def test_text_outside_the_markers_is_kept(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    current = (ROOT / "README.md").read_text(encoding="utf-8")
    begin = "<!-- settings:output.console:begin -->\n"
    readme.write_text(current.replace(begin, begin + "| stale | row |\n") + "\nA closing line of our own.\n",
                      encoding="utf-8")
    assert run_script("--readme", str(readme)).returncode == 0
    assert readme.read_text(encoding="utf-8") == current + "\nA closing line of our own.\n"


def test_missing_markers_are_reported(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    current = (ROOT / "README.md").read_text(encoding="utf-8")
    readme.write_text(current.replace("<!-- settings:output.file:end -->", ""), encoding="utf-8")
    check = run_script("--check", "--readme", str(readme))
    assert check.returncode == 1
    assert "no <!-- settings:output.file:begin --> … <!-- settings:output.file:end --> markers" in check.stderr
