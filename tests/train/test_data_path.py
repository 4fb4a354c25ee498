"""The GPU-fed data path, checked on the CPU: uint8 batches normalised on the device equal the worker-side
normalisation exactly; worker counts from the cores; batched evaluation equals one image at a time; the
confusion matrix without host syncs."""

from __future__ import annotations

import csv

import torch
from torchvision import tv_tensors

import fcnseg
from fcnseg.data.transforms import eval_transforms, pad_collate
from fcnseg.metrics import confusion_matrix
from fcnseg.preprocessing import CAFFE_VOC, IMAGENET
from fcnseg.runtime.evaluation import UnpredictableLabels, evaluate, to_device
from fcnseg.train.data_path import auto_workers, uint8_collate
from fcnseg.train.trainer import fit
from tests.helpers import tiny


def _sample(h: int, w: int, seed: int) -> tuple:
    g = torch.Generator().manual_seed(seed)
    image = tv_tensors.Image(torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8))
    mask = tv_tensors.Mask(torch.randint(0, 5, (h, w), generator=g))
    mask[0, 0] = 255
    return image, mask


def test_uint8_batches_normalised_on_the_device_equal_normalised_batches_exactly() -> None:
    samples = [_sample(20, 31, 0), _sample(27, 18, 1), _sample(27, 31, 2)]  # padding at the bottom and right
    for pre in (CAFFE_VOC, IMAGENET):
        normalise = eval_transforms(pre)
        x_ref, y_ref = pad_collate([normalise(s) for s in samples])
        x8, y8, sizes = uint8_collate(samples)
        assert x8.dtype == torch.uint8 and y8.dtype == torch.uint8  # 1/4 and 1/8 of the bytes to pin and copy
        x, y = to_device(x8, y8, torch.device("cpu"), pre, sizes)
        assert torch.equal(x, x_ref) and torch.equal(y, y_ref) and y.dtype == torch.int64


def test_labels_beyond_uint8_stay_int64() -> None:
    image, mask = _sample(8, 8, 3)
    mask[1, 1] = 300
    _, y, _ = uint8_collate([(image, mask)])
    assert y.dtype == torch.int64 and int(y[0, 1, 1]) == 300


def test_normalising_on_the_device_trains_to_the_same_losses(tmp_path) -> None:
    def losses(run):
        with (run / "log.csv").open() as f:
            return [float(r["loss"]) for r in csv.DictReader(f) if r["loss"]]

    a = fit(tiny("train.max_iter=3", "data.normalize_on_device=false"), tmp_path / "a", progress=False)[""]
    b = fit(tiny("train.max_iter=3", "data.normalize_on_device=true"), tmp_path / "b", progress=False)[""]
    assert losses(tmp_path / "a") == losses(tmp_path / "b") and a["confusion"] == b["confusion"]


def test_worker_count_comes_from_the_cores() -> None:
    cuda = torch.device("cuda", 0)
    assert auto_workers(cuda, 1, cores=16) == 8  # at most 8
    assert auto_workers(cuda, 4, cores=16) == 3  # a rank's share, less the training thread
    assert auto_workers(cuda, 8, cores=8) == 0
    assert auto_workers(torch.device("cpu"), 1, cores=16) == 0  # the CPU step uses every core itself
    assert tiny().data.workers == "auto"


class _Mixed(torch.utils.data.Dataset):
    """Images of three sizes, in runs, so that batching meets size changes."""

    sizes = [(32, 32)] * 3 + [(40, 24)] * 2 + [(32, 32)] + [(24, 40)] * 3

    def __len__(self) -> int:
        return len(self.sizes)

    def __getitem__(self, i: int):
        image, mask = _sample(*self.sizes[i], seed=10 + i)
        return eval_transforms(IMAGENET)(image, mask)


def test_batched_evaluation_equals_one_image_at_a_time() -> None:
    model = fcnseg.get_model("fcn8s_resnet18", num_classes=5, width=1 / 16)
    with torch.no_grad():
        for name in model.score_layer_names():
            getattr(model, name).weight.normal_()
    ds = _Mixed()
    one = evaluate(model, ds, 5, batch_size=1)[""]
    many = evaluate(model, ds, 5, batch_size=4)[""]
    assert many["confusion"] == one["confusion"] and sum(map(sum, one["confusion"])) > 0
    bf16 = evaluate(model, ds, 5, batch_size=4, dtype=torch.bfloat16)[""]  # autocast when asked
    assert sum(map(sum, bf16["confusion"])) == sum(map(sum, one["confusion"]))


def test_confusion_counts_without_boolean_indexing_match_a_direct_count() -> None:
    g = torch.Generator().manual_seed(0)
    pred = torch.randint(0, 4, (2, 9, 7), generator=g)
    target = torch.randint(0, 6, (2, 9, 7), generator=g)
    target[0, :2] = 255
    direct = torch.zeros(4, 4, dtype=torch.int64)
    for t, p in zip(target.flatten().tolist(), pred.flatten().tolist(), strict=True):
        if t < 4:
            direct[t, p] += 1
    assert torch.equal(confusion_matrix(pred, target, 4), direct)
    bins = UnpredictableLabels(4)
    bins.update(target)
    assert bins.summary() == {"pixels": int(((target >= 4) & (target != 255)).sum()), "values": [4, 5]}
