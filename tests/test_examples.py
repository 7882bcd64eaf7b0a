"""The example notebook and the README's Python snippet, executed as a user runs them, so neither can rot."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "betavae_cats.ipynb"


def test_the_example_notebook_runs_end_to_end(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("GENLAB_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("GENLAB_NOTEBOOK_OUT", str(tmp_path / "runs"))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
                            ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    shown = [o for o in outputs if o.output_type in ("display_data", "execute_result")]
    assert sum("image/png" in o.data for o in shown) >= 6  # curves, samples, held-out, reconstructions, 2 traversals
    assert any("text/html" in o.data and "nb_cats_b100" in o.data["text/html"] for o in shown)  # the comparison
    for beta in (10, 100):
        assert (tmp_path / "runs" / f"nb_cats_b{beta}" / "metrics.json").is_file()


def test_the_readme_python_snippet_runs(tmp_path):
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    snippet = next(b for b in blocks if "genlab.train(" in b)
    code = snippet + "\nassert fig.path.is_file() and fig.path.name == 'traversal.png'\n"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "runs" / "quickstart" / "figures" / "traversal.png").is_file()
