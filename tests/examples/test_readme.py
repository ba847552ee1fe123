"""README.md: every python block runs (in order, one session), the quick-start commands are exact, the gallery
images exist and are small, and every example script is listed."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", README, flags=re.S | re.M)


def test_python_blocks_run_in_order(tmp_path):
    blocks = python_blocks()
    assert len(blocks) >= 6, f"expected the API tour's code blocks in README.md, found {len(blocks)}"
    script = tmp_path / "readme_blocks.py"
    parts = ["import matplotlib", "matplotlib.use('Agg')"]
    for k, block in enumerate(blocks):  # a marker per block so a failure names its block
        parts += [f"print('--- README block {k} ---', flush=True)", block]
    script.write_text("\n".join(parts))
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"a README block failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert f"--- README block {len(blocks) - 1} ---" in proc.stdout


def test_quick_start_commands_are_exact():
    for command in ('pip install -e ".[dev]" && python examples/tour.py', 'pip install -e ".[dev]" && pytest'):
        assert f"```bash\n{command}\n```" in README, f"README.md lacks the code block {command!r}"


def test_gallery_images_exist_and_are_small():
    images = re.findall(r"\]\((docs/images/[^)]+\.png)\)", README)
    assert images, "README.md shows no docs/images figures"
    total = 0
    for rel in images:
        path = ROOT / rel
        assert path.is_file(), f"README.md shows {rel}, which does not exist (run python docs/make_images.py)"
        size = path.stat().st_size
        assert 1000 < size < 150_000, f"{rel} is {size} bytes; keep gallery images under 150 KB"
        total += size
    assert total < 1_000_000


def test_every_example_is_listed():
    scripts = sorted(p.name for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_"))
    missing = [s for s in scripts if f"examples/{s}" not in README]
    assert not missing, f"README.md does not list {missing}"
