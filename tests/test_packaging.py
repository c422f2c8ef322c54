"""The wheel carries the schema, and an installed dsc finds it without the source tree."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import ROOT


def test_wheel_ships_the_schema(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--wheel-dir", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("dsc-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert "compiler/cli.py" in names
        for schema in ("pipeline.schema.json", "config.schema.json"):
            shipped = archive.read(f"compiler/schemas/{schema}")
            assert shipped == (ROOT / "schemas" / schema).read_bytes()
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    with zipfile.ZipFile(wheel) as archive:
        assert "dsc = compiler.cli:main" in archive.read(entry_points).decode()
