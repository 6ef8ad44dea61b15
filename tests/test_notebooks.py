"""The notebooks in notebooks/ run top to bottom (nbclient) on a small store the tests build.

They read the store path from PROBE_DB, as a user would set it; a notebook that no longer runs
against the current library fails here rather than in someone's hands.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from test_report import build_study  # noqa: E402  (a sibling test module, after the skips)

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_study(tmp_path_factory.mktemp("nb") / "study.db", samples=3)


@pytest.fixture
def env(store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The kernel inherits this environment: the store, and an output folder for reports."""
    monkeypatch.setenv("PROBE_DB", str(store))
    monkeypatch.setenv("PROBE_REPORT_OUT", str(tmp_path / "report"))
    monkeypatch.delenv("PROBE_DB_B", raising=False)
    monkeypatch.delenv("PROBE_MODEL_A", raising=False)
    monkeypatch.delenv("PROBE_MODEL_B", raising=False)
    yield tmp_path


def run_notebook(path: Path, cwd: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute()
    return nb


def _text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            parts.append(str(output.get("text", "")))
            parts.extend(str(v) for v in output.get("data", {}).values())
    return "\n".join(parts)


def test_there_are_at_least_two_notebooks() -> None:
    assert {p.name for p in NOTEBOOKS.glob("*.ipynb")} >= {
        "explore_study.ipynb",
        "compare_releases.ipynb",
    }


def test_explore_study_runs(env: Path) -> None:
    nb = run_notebook(NOTEBOOKS / "explore_study.ipynb", env)
    text = _text(nb)
    assert "60 replies from 2 model(s)" in text  # 2 models x 10 jobs x 3 samples
    assert 'class="heatmap"' in text
    assert (env / "report" / "report.html").exists()


def test_compare_releases_runs(env: Path) -> None:
    nb = run_notebook(NOTEBOOKS / "compare_releases.ipynb", env)
    text = _text(nb)
    assert "A = fake-model, B = fake-model-v2" in text
    assert "refusal → answer" in text


def test_notebooks_are_stored_without_outputs() -> None:
    """Outputs belong to a run, not to the repository (and would leak a local store's data)."""
    for path in NOTEBOOKS.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code"), path
