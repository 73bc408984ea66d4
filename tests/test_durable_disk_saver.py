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

    from scripts.persistence.durable_disk_saver import csv_text, write_text_durably

    report = tmp_path / "metrics.csv"
    write_text_durably(csv_text([{"case": "a", "dice": 0.9}], ["case", "dice"]), report)
    assert report.read_bytes() == b"case,dice\r\na,0.9\r\n"

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError):
        write_text_durably("case,dice\r\nb,0.1\r\n", report)
    assert report.read_bytes() == b"case,dice\r\na,0.9\r\n" and [p.name for p in tmp_path.iterdir()] == ["metrics.csv"]
