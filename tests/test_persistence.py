"""Atomic saves: a save killed midway leaves the previous index loadable."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

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
        atomic_folder(target, broken)
    assert (target / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
