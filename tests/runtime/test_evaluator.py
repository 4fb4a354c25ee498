"""evaluate(band=...): boundary mean IU over the pixels near an edge, in the same pass as the four metrics."""

from __future__ import annotations

import torch

import fcnseg
from fcnseg.data import SyntheticShapes
from fcnseg.data.transforms import eval_transforms
from fcnseg.metrics import boundary_band, confusion_matrix, scores
from fcnseg.preprocessing import IMAGENET
from fcnseg.runtime.evaluation import evaluate, predict_batch


def test_boundary_scores_equal_the_band_counted_directly() -> None:
    torch.manual_seed(0)
    model = fcnseg.get_model("fcn8s_resnet18", num_classes=9, width=1 / 16).eval()
    with torch.no_grad():
        for name in model.score_layer_names():
            getattr(model, name).weight.normal_()
    ds = SyntheticShapes(5, 48, "test", transforms=eval_transforms(IMAGENET))
    hist = torch.zeros(9, 9, dtype=torch.int64)
    for i in range(len(ds)):
        x, y = ds[i]
        pred = predict_batch(model, x[None].float())[0]
        near = boundary_band(y, 2)
        hist += confusion_matrix(pred[near], y[near], 9)
    got = evaluate(model, ds, 9, band=2, batch_size=2)[""]
    assert got["boundary_mean_iu"] == scores(hist)["mean_iu"] and 0 < got["boundary_mean_iu"] < got["pixel_accuracy"]
    assert "boundary_mean_iu" not in evaluate(model, ds, 9)[""]
