"""The training-curve picture: series extraction, smoothing, and clear errors on what is not a run."""

import json

import numpy as np
import pytest

from dreamtext.curves import plot_run, series, smooth
from dreamtext.errors import DatasetError


def test_series_keeps_finite_values_in_step_order():
    recs = [{"step": 20, "a": 2.0}, {"step": 10, "a": 1.0}, {"step": 30, "a": float("nan")}, {"step": 40, "b": 5.0}]
    steps, values = series(recs, "a")
    assert steps.tolist() == [10, 20] and values.tolist() == [1.0, 2.0]
    assert len(series(recs, "missing")[0]) == 0


def test_smooth_is_a_bias_corrected_moving_average():
    # s_0 = v_0; s_1 = (0.5·0.5·1 + 0.5·3) / (0.5·0.5 + 0.5) = (0.25 + 1.5) / 0.75
    assert smooth(np.array([1.0, 3.0]), weight=0.5).tolist() == pytest.approx([1.0, 1.75 / 0.75])
    assert smooth(np.full(5, 4.0)).tolist() == pytest.approx([4.0] * 5)  # a constant stays constant


def test_not_a_run_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="no metrics.jsonl"):
        plot_run(tmp_path, tmp_path / "c.png")
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 1, "probe/recon_seq_acc": 0.5}) + "\n")
    with pytest.raises(DatasetError, match="no logged training step"):
        plot_run(tmp_path, tmp_path / "c.png")
    (tmp_path / "metrics.jsonl").write_text("{not json\n")
    with pytest.raises(DatasetError, match="not JSON lines"):
        plot_run(tmp_path, tmp_path / "c.png")
    assert not (tmp_path / "c.png").exists()
