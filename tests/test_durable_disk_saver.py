import os

import pytest
import torch

from scripts.persistence.durable_disk_saver import DurableDiskSaver


def test_fsyncs_file_and_directory_before_the_name_counts(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real_fsync(fd)))
    DurableDiskSaver(tmp_path)({"w": torch.ones(3)}, "last.pth")
    assert any(p.endswith(".part") for p in synced)  # the data, before the rename
    assert str(tmp_path) in synced  # the directory entry, after it
    assert torch.equal(torch.load(tmp_path / "last.pth", weights_only=True)["w"], torch.ones(3))


def test_the_durable_write_fsyncs_the_file_then_renames_then_fsyncs_the_folder(tmp_path, monkeypatch):
    """The order is what makes it durable: the folder's fsync before the rename would flush a directory entry that
    does not exist yet, and a power cut after the rename could leave ``last.pth`` naming nothing. Every earlier test
    passed with that order swapped; this one records it."""
    from scripts.common import durable_write

    calls = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        target = os.readlink(f"/proc/self/fd/{fd}")
        calls.append(("fsync folder" if os.path.isdir(target) else "fsync file", os.path.basename(target)))
        real_fsync(fd)

    def replace(source, destination):
        calls.append(("rename", os.path.basename(destination)))
        real_replace(source, destination)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    durable_write.write_text_durably("a,b\r\n", tmp_path / "metrics.csv")
    DurableDiskSaver(tmp_path)({"w": torch.ones(3)}, "last.pth")
    assert [what for what, _ in calls] == ["fsync file", "rename", "fsync folder"] * 2
    assert calls[0][1].startswith(".tmp-") and calls[0][1].endswith(".part") and calls[1][1] == "metrics.csv"
    assert calls[2][1] == tmp_path.name and calls[4][1] == "last.pth"


def test_a_full_disk_is_one_write_error_naming_the_file_and_its_folder(tmp_path, monkeypatch):
    """torch's zip writer turns the file's ENOSPC into ``RuntimeError: [enforce fail at inline_container.cc] ...
    unexpected pos``; the write still reports it as the OSError it is, naming the file and its folder."""
    import builtins
    import errno

    from scripts.common.durable_write import WriteError
    from tests.full_disk import FullDiskFile  # the disk takes the file's first 64 bytes, then is full

    saver = DurableDiskSaver(tmp_path)
    saver({"w": torch.zeros(2)}, "best.pth")
    real_open = builtins.open

    def full_open(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        return FullDiskFile(handle) if "w" in mode else handle

    monkeypatch.setattr(builtins, "open", full_open)
    with pytest.raises(WriteError) as refused:
        saver({"w": torch.ones(2)}, "best.pth")
    monkeypatch.undo()
    assert isinstance(refused.value.__cause__, RuntimeError) and "unexpected pos" in str(refused.value.__cause__)
    assert str(refused.value) == f"cannot write best.pth in {tmp_path}: No space left on device"
    assert refused.value.errno == errno.ENOSPC
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pth"]
    assert torch.equal(torch.load(tmp_path / "best.pth", weights_only=True)["w"], torch.zeros(2))


def test_failed_write_keeps_the_previous_file_and_leaves_no_partial(tmp_path, monkeypatch):
    saver = DurableDiskSaver(tmp_path)
    saver({"w": torch.zeros(2)}, "last.pth")

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError):
        saver({"w": torch.ones(2)}, "last.pth")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pth"]
    assert torch.equal(torch.load(tmp_path / "last.pth", weights_only=True)["w"], torch.zeros(2))


def test_retired_file_is_deleted_only_after_its_successor_is_written(tmp_path):
    saver = DurableDiskSaver(tmp_path)
    saver({"e": 1}, "periodic_0001.pth")
    saver.remove("periodic_0001.pth")
    assert (tmp_path / "periodic_0001.pth").exists()
    saver({"e": 2}, "periodic_0002.pth")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["periodic_0002.pth"]
    # a fixed name retired and rewritten stays in place
    saver.remove("periodic_0002.pth")
    saver({"e": 3}, "periodic_0002.pth")
    assert torch.load(tmp_path / "periodic_0002.pth", weights_only=True) == {"e": 3}


def test_a_report_whose_write_fails_leaves_the_former_one_whole(tmp_path, monkeypatch):
    import os

    from scripts.common.durable_write import csv_text, write_text_durably

    report = tmp_path / "metrics.csv"
    write_text_durably(csv_text([{"case": "a", "dice": 0.9}], ["case", "dice"]), report)
    assert report.read_bytes() == b"case,dice\r\na,0.9\r\n"

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError):
        write_text_durably("case,dice\r\nb,0.1\r\n", report)
    assert report.read_bytes() == b"case,dice\r\na,0.9\r\n" and [p.name for p in tmp_path.iterdir()] == ["metrics.csv"]
