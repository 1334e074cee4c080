"""Two eval runs compared record by record (dreamtext.compare, `dreamtext compare`)."""

import csv

import pytest

from dreamtext.cli import main
from dreamtext.errors import DatasetError
from dreamtext.evaluation.compare import compare_runs, load_rows, sign_test


def write_run(folder, right, neds, targets=None, columns=("index", "key", "target", "seq_acc_ci", "ned")):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "samples.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        for i, (r, n) in enumerate(zip(right, neds)):
            w.writerow({"index": i, "key": f"bench-{i}", "target": (targets or [f"w{i}"] * len(right))[i],
                        "seq_acc_ci": int(r), "ned": n})
    return folder


def test_sign_test_golden_values():
    assert sign_test(3, 1) == 0.625  # 2 · (1 + 4) / 16
    assert sign_test(5, 0) == 0.0625 and sign_test(0, 5) == 0.0625
    assert sign_test(0, 0) == 1.0
    assert sign_test(14, 7) == pytest.approx(0.18924713, abs=1e-8)  # the edit-pairs CPU fine-tune (BENCHMARKS.md)


def test_compare_runs_pairs_the_records(tmp_path):
    a = write_run(tmp_path / "a", [1, 1, 1, 0, 0, 0], [0.0, 0.0, 0.0, 0.5, 0.5, 1.0])
    b = write_run(tmp_path / "b", [0, 1, 1, 1, 1, 1, 1], [0.25, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])  # one extra record
    c = compare_runs(a, b, boot=2000)
    assert c["n"] == 6 and c["only_a"] == 1 and c["only_b"] == 3 and c["sign_p"] == 0.625
    assert c["seq_acc_a"] == pytest.approx(0.5) and c["seq_acc_b"] == pytest.approx(5 / 6)
    assert c["ned_a"] == pytest.approx(2 / 6) and c["ned_b"] == pytest.approx(0.25 / 6)
    assert c["ned_diff"] == pytest.approx((0.25 - 2.0) / 6)
    lo, hi = c["ned_diff_ci"]
    assert lo < c["ned_diff"] < hi and lo < -0.5 and hi < 0.05  # six records: a wide interval
    assert compare_runs(a, b, boot=2000) == c  # seeded bootstrap
    assert compare_runs(a, a)["ned_diff_ci"] == (0.0, 0.0)


def test_compare_refuses_runs_of_different_tasks_or_files(tmp_path):
    a = write_run(tmp_path / "a", [1, 0], [0.0, 1.0], targets=["OPEN", "shop"])
    b = write_run(tmp_path / "b", [1, 0], [0.0, 1.0], targets=["OPEN", "shut"])
    with pytest.raises(DatasetError, match="record 1 asks for 'shop'.*'shut'"):
        compare_runs(a, b)
    bad = write_run(tmp_path / "bad", [1], [0.0], columns=("index", "target", "ned"))
    with pytest.raises(DatasetError, match="lacks the column.*seq_acc_ci"):
        load_rows(bad)
    with pytest.raises(DatasetError, match="does not exist"):
        load_rows(tmp_path / "nowhere")
    other = write_run(tmp_path / "other", [1], [0.0])
    (other / "samples.csv").write_text("index,target,seq_acc_ci,ned\n7,OPEN,yes,0.1\n")
    with pytest.raises(DatasetError, match="line 2"):
        load_rows(other)


def test_cli_compare(tmp_path, capsys):
    a = write_run(tmp_path / "a", [1, 0, 0], [0.0, 0.5, 0.5])
    b = write_run(tmp_path / "b", [1, 1, 1], [0.0, 0.0, 0.0])
    assert main(["compare", str(a), str(b), str(b), str(a / "samples.csv")]) == 0
    out = capsys.readouterr().out
    assert "SeqAcc A 33.3 % → B 100.0 % (right only in A 0, only in B 2; sign test p = 0.5)" in out
    assert "SeqAcc A 100.0 % → B 33.3 %" in out
    assert main(["compare", str(a)]) == 2
    assert "in pairs" in capsys.readouterr().err
