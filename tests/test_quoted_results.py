"""Quick runs for students, full runs for the book: the switch and the quoted numbers."""

from __future__ import annotations

import json

import pytest

from optbook.book import pages


def test_full_run_follows_the_environment(monkeypatch):
    monkeypatch.delenv(pages.FULL_RUN_ENV, raising=False)
    assert pages.full_run() is False
    monkeypatch.setenv(pages.FULL_RUN_ENV, "1")
    assert pages.full_run() is True


def test_the_book_build_sets_the_full_run():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "_ext" / "full_run.py"
    spec = importlib.util.spec_from_file_location("full_run_ext", path)
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(pages.FULL_RUN_ENV, raising=False)
        ext.setup(app=None)
        assert pages.full_run()
    assert "full_run: _ext" in (path.parents[1] / "_config.yml").read_text()


def test_quick_run_quotes_the_stored_full_run(tmp_path, monkeypatch):
    (tmp_path / "p.json").write_text(json.dumps({"auc": "0.912"}))
    quick = pages.QuotedResults("p", full=False, directory=tmp_path)
    assert quick("auc") == "0.912"
    with pytest.raises(KeyError, match="no full-run value for 'loss'"):
        quick("loss")


def test_full_run_checks_its_numbers_against_the_stored_ones(tmp_path, monkeypatch):
    monkeypatch.delenv(pages.WRITE_RESULTS_ENV, raising=False)
    monkeypatch.setenv(pages.CHECK_RESULTS_ENV, "1")
    (tmp_path / "p.json").write_text(json.dumps({"auc": "0.912"}))
    full = pages.QuotedResults("p", full=True, directory=tmp_path)
    assert full("auc", "0.912") == "0.912"
    with pytest.raises(ValueError, match="gives auc = '0.913', but the prose quotes '0.912'"):
        full("auc", "0.913")
    with pytest.raises(TypeError, match="as the text the prose shows"):
        full("auc", 0.912)


def test_full_run_writes_the_file_when_asked(tmp_path, monkeypatch):
    monkeypatch.setenv(pages.WRITE_RESULTS_ENV, "1")
    full = pages.QuotedResults("p", full=True, directory=tmp_path)
    full("b", "2")
    full("a", "1")
    assert json.loads((tmp_path / "p.json").read_text()) == {"a": "1", "b": "2"}
    assert pages.QuotedResults("p", full=False, directory=tmp_path)("a") == "1"


def test_full_run_elsewhere_quotes_its_own_numbers(tmp_path, monkeypatch):
    """A reader's build on other hardware: the prose matches that build's figures."""
    monkeypatch.delenv(pages.WRITE_RESULTS_ENV, raising=False)
    monkeypatch.delenv(pages.CHECK_RESULTS_ENV, raising=False)
    (tmp_path / "p.json").write_text(json.dumps({"auc": "0.912"}))
    assert pages.QuotedResults("p", full=True, directory=tmp_path)("auc", "0.913") == "0.913"


def test_the_suites_book_build_checks_the_quoted_numbers():
    from pathlib import Path

    conftest = (Path(__file__).parent / "conftest.py").read_text()
    assert f'"{pages.CHECK_RESULTS_ENV}": "1"' in conftest


def test_the_results_folder_is_the_chapters():
    from pathlib import Path

    assert pages.RESULTS_DIR == Path(__file__).resolve().parents[1] / "chapters" / "_results"
    assert sorted(p.stem for p in pages.RESULTS_DIR.glob("*.json"))
