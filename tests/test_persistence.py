"""Atomic saves: a save killed midway leaves the previous index loadable."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from gentool_router import ToolIndex


@pytest.mark.slow
def test_save_killed_midway_keeps_the_previous_index(tmp_path, embedder, small_tools):
    folder = tmp_path / "idx"
    ToolIndex.build(small_tools[:3], embedder).save(folder)
    script = textwrap.dedent(f"""
        import time
        import gentool_router.index as index_module
        from gentool_router import ToolIndex
        real = index_module.sha256_file
        def slow(path):
            print("writing", flush=True)
            time.sleep(30)
            return real(path)
        index_module.sha256_file = slow
        index = ToolIndex.load({str(folder)!r})
        index.add([{{"name": "extra", "description": "An extra tool"}}])
        index.save({str(folder)!r})
    """)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "writing"  # the new files are half written now
    process.kill()
    process.wait()
    loaded = ToolIndex.load(folder, embedder)
    assert loaded.catalog.names() == [t.name for t in small_tools[:3]]
    # the next save cleans up the stale staging folder
    loaded.save(folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]


def test_interrupted_swap_is_recovered(tmp_path):
    from gentool_router.persistence import atomic_folder, recover_interrupted_save

    target = tmp_path / "data"
    atomic_folder(target, lambda f: (f / "a.txt").write_text("old"))
    target.rename(tmp_path / ".data.old-123")  # killed between the two renames of a later save
    assert recover_interrupted_save(target)
    assert (target / "a.txt").read_text() == "old"


def test_failed_write_leaves_target_untouched(tmp_path):
    from gentool_router.persistence import atomic_folder

    target = tmp_path / "data"
    atomic_folder(target, lambda f: (f / "a.txt").write_text("old"))

    def broken(folder):
        (folder / "a.txt").write_text("new")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_folder(target, broken, owned_files=lambda f: {"a.txt"})
    assert (target / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


# ------------------------------------------------------------------ never replace what is not ours
def test_a_folder_with_a_users_file_is_never_replaced(tmp_path):
    from gentool_router.errors import OverwriteRefusedError
    from gentool_router.persistence import atomic_folder

    target = tmp_path / "project"
    target.mkdir()
    (target / "notes.md").write_text("mine")
    with pytest.raises(OverwriteRefusedError, match="notes.md"):
        atomic_folder(target, lambda f: (f / "a.txt").write_text("new"), owned_files=lambda f: None)
    assert sorted(p.name for p in target.iterdir()) == ["notes.md"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]  # no staging folder left behind


def test_an_earlier_artefact_is_replaced_but_not_one_holding_extra_files(tmp_path):
    from gentool_router.errors import OverwriteRefusedError
    from gentool_router.persistence import atomic_folder

    target = tmp_path / "data"
    owned = lambda folder: {"a.txt"} if (folder / "a.txt").exists() else None  # noqa: E731
    atomic_folder(target, lambda f: (f / "a.txt").write_text("old"), owned_files=owned)
    atomic_folder(target, lambda f: (f / "a.txt").write_text("new"), owned_files=owned)
    assert (target / "a.txt").read_text() == "new"
    (target / "results.csv").write_text("the user's")
    with pytest.raises(OverwriteRefusedError, match="results.csv"):
        atomic_folder(target, lambda f: (f / "a.txt").write_text("newer"), owned_files=owned)
    assert (target / "a.txt").read_text() == "new" and (target / "results.csv").exists()


def test_an_empty_folder_is_used(tmp_path):
    from gentool_router.persistence import atomic_folder

    target = tmp_path / "empty"
    target.mkdir()
    atomic_folder(target, lambda f: (f / "a.txt").write_text("x"))
    assert (target / "a.txt").read_text() == "x"


def test_index_cli_refuses_a_project_folder_and_says_why(tmp_path, monkeypatch):
    """The acceptance case: `gentool-router index TOOLS --out .` inside a project keeps the project."""
    from click.testing import CliRunner

    from gentool_router.cli import main

    project = tmp_path / "project"
    project.mkdir()
    (project / "app.py").write_text("print('hello')\n")
    tools = project / "tools.jsonl"
    tools.write_text('{"name": "get_weather", "description": "Weather forecast for a city"}\n')
    monkeypatch.chdir(project)
    result = CliRunner().invoke(main, ["index", "tools.jsonl", "--out", ".", "--quiet"])
    assert result.exit_code == 1
    assert "refusing to replace" in result.output and "app.py" in result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in project.iterdir()) == ["app.py", "tools.jsonl"]
    assert (project / "app.py").read_text() == "print('hello')\n"


def test_generate_data_refuses_a_folder_with_other_files_before_any_work(tmp_path):
    from gentool_router.errors import OverwriteRefusedError
    from gentool_router_train.simulate import generate_dataset

    out = tmp_path / "data"
    out.mkdir()
    (out / "my-labels.jsonl").write_text("{}\n")

    def never(texts):  # the check comes before the simulation embeds anything
        raise AssertionError("embedded before checking the output folder")

    with pytest.raises(OverwriteRefusedError, match="my-labels.jsonl"):
        generate_dataset(out, embed=never)
    assert [p.name for p in out.iterdir()] == ["my-labels.jsonl"]


@pytest.mark.slow
@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_parent_gives_a_clear_error_and_changes_nothing(tmp_path, embedder, small_tools):
    from gentool_router.errors import IndexFormatError

    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        with pytest.raises(IndexFormatError, match="cannot save the index"):
            ToolIndex.build(small_tools[:2], embedder).save(parent / "idx")
        assert list(parent.iterdir()) == []
    finally:
        parent.chmod(0o755)


def test_a_failing_staging_folder_gives_a_clear_error_and_changes_nothing(tmp_path, monkeypatch):
    """Where the tests run as root (read-only folders do not stop root), the same path through a failing mkdtemp."""
    import tempfile

    from gentool_router.persistence import atomic_folder

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path))

    target = tmp_path / "data"
    atomic_folder(target, lambda f: (f / "a.txt").write_text("old"), owned_files=lambda f: {"a.txt"})
    monkeypatch.setattr(tempfile, "mkdtemp", denied)
    with pytest.raises(PermissionError):
        atomic_folder(target, lambda f: (f / "a.txt").write_text("new"), owned_files=lambda f: {"a.txt"})
    assert (target / "a.txt").read_text() == "old"
