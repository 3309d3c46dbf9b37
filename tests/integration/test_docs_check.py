"""`make docs-check`: every generated block in README.md and docs/*.md equals what
benchmarks/docs_blocks.py renders from the committed raw results, and a block edited by hand
(or a raw file changed without `make docs`) makes it fail, naming the doc and the block."""
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "docs_blocks.py"


def _run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=120)


def _copy_of_the_docs(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "docs", root / "docs")
    shutil.copytree(ROOT / "benchmarks" / "results", root / "benchmarks" / "results")
    shutil.copy(ROOT / "README.md", root / "README.md")
    return root


def test_the_repository_docs_match_their_raw_results():
    out = _run("check")
    assert out.returncode == 0, out.stderr
    assert "generated blocks match their raw results" in out.stdout


def test_a_hand_edited_block_fails_and_make_docs_repairs_it(tmp_path):
    root = _copy_of_the_docs(tmp_path)
    page = root / "docs" / "performance.md"
    text = page.read_text()
    begin = text.index("<!-- generated: train-cpu ")
    row = text.index("| brainfm |", begin)
    edited = text[:row] + "| brainfm | 9.99 / 9.99 / 9.99 |" + text[row + len("| brainfm |"):]
    page.write_text(edited)

    out = _run("check", "--root", str(root))
    assert out.returncode == 1
    assert "docs/performance.md: generated block 'train-cpu' differs" in out.stderr
    assert "-| brainfm | 9.99 / 9.99 / 9.99 |" in out.stderr      # the diff shows the edit
    assert "generated block 'prep'" not in out.stderr              # and only that block

    assert _run("write", "--root", str(root)).returncode == 0
    assert page.read_text() == text
    assert _run("check", "--root", str(root)).returncode == 0


def test_a_changed_raw_file_or_an_unknown_block_fails(tmp_path):
    root = _copy_of_the_docs(tmp_path)
    raw = root / "benchmarks" / "results" / "prep.json"
    raw.write_text(raw.read_text().replace('"repeats": 3', '"repeats": 4'))
    readme = root / "README.md"
    readme.write_text(readme.read_text() + "\n<!-- generated: nobody-made-me (by hand) -->\n"
                      "a table\n<!-- end generated: nobody-made-me -->\n")

    out = _run("check", "--root", str(root))
    assert out.returncode == 1
    assert "docs/performance.md: generated block 'prep' differs" in out.stderr
    assert "+Medians of 4 fresh processes per cell" in out.stderr
    assert "README.md: block 'nobody-made-me' is not registered" in out.stderr
