"""Random and mutated bytes through the readers of untrusted files: only one-line FCNErrors."""

from __future__ import annotations

import numpy as np
import pytest

import fcnseg
from fcnseg.io import read_image
from tests.badinput import IMAGE_CASES, fuzz_bytes


def test_fuzz_image_reader_checkpoint_reader_and_config_loader(tmp_path, checkpoint) -> None:
    """Random and mutated bytes: every failure is an FCNError (one line), never another exception."""
    import json

    from fcnseg.config import load_config
    from fcnseg.runtime.checkpoint import load_checkpoint

    rng = np.random.default_rng(2026)
    images = [content for content, _ in IMAGE_CASES.values() if content][:8]
    ckpt_bytes = checkpoint.read_bytes()
    header_len = int.from_bytes(ckpt_bytes[:8], "little")
    configs = [
        b"train:\n  lr: 1e-4\n  max_iter: 5\n",
        b"model: {name: fcn8s_vgg16, width: 0.5}\ndata: {options: {n: 3}}\n",
    ]
    failures = []
    for i in range(150):
        target = tmp_path / f"f{i}"
        kind = i % 3
        if kind == 0:
            target = target.with_suffix(".png")
            target.write_bytes(fuzz_bytes(rng, images))
            call = lambda p=target: read_image(p)  # noqa: E731
        elif kind == 1:
            target = target.with_suffix(".safetensors")
            meta = json.loads(json.loads(ckpt_bytes[8 : 8 + header_len])["__metadata__"]["fcnseg"])
            key = list(meta)[int(rng.integers(len(meta)))]
            meta[key] = [None, -1, "x", 1e308, [1] * 3, {"a": 1}, True][int(rng.integers(7))]
            header = json.loads(ckpt_bytes[8 : 8 + header_len])
            header["__metadata__"]["fcnseg"] = json.dumps(meta)
            blob = json.dumps(header).encode()
            data = len(blob).to_bytes(8, "little") + blob + ckpt_bytes[8 + header_len :]
            target.write_bytes(fuzz_bytes(rng, [data]) if rng.random() < 0.3 else data)
            call = lambda p=target: load_checkpoint(p)  # noqa: E731
        else:
            target = target.with_suffix(".yaml")
            target.write_bytes(fuzz_bytes(rng, configs))
            call = lambda p=target: load_config(p)  # noqa: E731
        try:
            call()
        except fcnseg.errors.FCNError:
            pass
        except Exception as e:
            failures.append(f"{target.name}: {type(e).__name__}: {e}")
    assert not failures, failures[:5]


# ---- third pass: COCO and labelme JSON, config values (each in a child under an address-space limit) ----------

#: what a mutation puts in place of a value: wrong types, extremes, non-finite numbers, deep nesting
_VALUES = [None, True, False, 0, -1, 1.5, 1e9, -1e300, 10**30, "", "x", "nan", [], [1], [[1, 2]], {}, {"a": 1}]
_VALUES += [
    float("nan"),
    float("inf"),
    [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
]


def _slots(doc) -> list[tuple[object, object]]:
    """Every (container, key) of a JSON document, the root's children first."""
    out, stack = [], [doc]
    while stack:
        node = stack.pop()
        keys = list(node) if isinstance(node, dict) else range(len(node)) if isinstance(node, list) else []
        for k in keys:
            out.append((node, k))
            stack.append(node[k])
    return out


def mutate_json(rng: np.random.Generator, doc: object) -> bytes:
    """``doc`` with 1–3 values replaced, deleted, wrapped or scaled (NaN and Infinity written as Python's json
    writes them), sometimes then bit-flipped or cut."""
    import copy
    import json

    doc = copy.deepcopy(doc)
    for _ in range(int(rng.integers(1, 4))):
        slots = _slots(doc)
        if not slots:
            break
        node, key = slots[int(rng.integers(len(slots)))]
        op = int(rng.integers(4))
        if op == 0:
            node[key] = copy.deepcopy(_VALUES[int(rng.integers(len(_VALUES)))])
        elif op == 1 and isinstance(node, dict):
            del node[key]
        elif op == 2:
            node[key] = [node[key]]
        elif isinstance(node[key], (int, float)) and not isinstance(node[key], bool):
            node[key] = node[key] * [-1, 0, 1e6, 1e300, 3.7][int(rng.integers(5))]
    text = json.dumps(doc).encode()
    return fuzz_bytes(rng, [text]) if rng.random() < 0.2 else text


_CHILD = """
import json, sys, traceback
from fcnseg.errors import FCNError
cases = json.loads(open(sys.argv[1]).read())
problems = []
for case in cases:
    try:
        run(case)
    except FCNError as e:
        if "\\n" in str(e):
            problems.append(f"{case}: a {len(str(e).splitlines())}-line error: {str(e)[:300]}")
    except Exception as e:
        problems.append(f"{case}: {type(e).__name__}: {str(e)[:300]}")
print(json.dumps(problems))
"""


def _fuzz_in_child(setup: str, cases: list, folder) -> list[str]:
    import json

    from tests.badinput import run_limited

    listing = folder / "fuzz-cases.json"
    listing.write_text(json.dumps(cases))
    proc = run_limited(setup + _CHILD, str(listing), timeout=1200)
    assert proc.returncode == 0, f"the child died (rc {proc.returncode}): {proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_fuzz_coco_json(tmp_path) -> None:
    """150 mutated COCO files through the dataset (every sample decoded): only one-line FCNErrors."""
    import json

    pytest.importorskip("pycocotools")
    from tests.data.fixtures_tools import make_coco

    make_coco(tmp_path)
    doc = json.loads((tmp_path / "annotations" / "instances_val2017.json").read_text())
    rng = np.random.default_rng(30)
    (tmp_path / "cases").mkdir()
    for i in range(150):
        (tmp_path / "cases" / f"{i}.json").write_bytes(mutate_json(rng, doc))
    setup = (
        "from fcnseg.data import get_dataset\n"
        f"ROOT = {str(tmp_path)!r}\n"
        "def run(i):\n"
        "    ds = get_dataset('coco', ROOT, 'val2017', annotations=f'cases/{i}.json')\n"
        "    for k in range(len(ds)):\n"
        "        ds[k]\n"
    )
    problems = _fuzz_in_child(setup, list(range(150)), tmp_path)
    assert not problems, problems[:5]


def test_fuzz_labelme_json(tmp_path) -> None:
    """150 mutated labelme files through the importer: only one-line FCNErrors."""
    import json

    from tests.data.fixtures_tools import make_labelme

    make_labelme(tmp_path)
    docs = [json.loads((tmp_path / "json" / f"{n}.json").read_text()) for n in ("a", "b")]
    rng = np.random.default_rng(31)
    for i in range(150):
        (tmp_path / "json" / f"case{i}.json").write_bytes(mutate_json(rng, docs[i % 2]))
    setup = (
        "from fcnseg.data.labelme import import_labelme\n"
        f"ROOT = {str(tmp_path)!r}\n"
        "def run(i):\n"
        "    import_labelme(f'{ROOT}/json/case{i}.json', f'{ROOT}/labels.txt', f'{ROOT}/out{i}')\n"
    )
    problems = _fuzz_in_child(setup, list(range(150)), tmp_path)
    assert not problems, problems[:5]


#: config keys with values to try: each key's boundaries and traps; a config that loads with them is also trained
#: a step, except for keys whose legal extremes only mean "long" or "big" (max_iter, batch_size …: loaded only)
_ANY = ["-1", "x", "null", "[]", "{a: 1}", "true", ".nan", "1e300"]
_KEYS: dict[str, tuple[bool, list[str]]] = {
    "model.name": (True, ["fcn8s_vgg16", "fcn32s_alexnet", "fcn8s_resnet18", "fcn16s_vgg16", "nope"]),
    "model.num_classes": (True, ["1", "2", "8", "9", "100000", "0"]),
    "model.in_channels": (True, ["1", "3", "4", "64", "0"]),
    "model.width": (True, ["0.0625", "1e-9", "16", "17", "0.125"]),
    "model.dropout": (True, ["0", "0.999", "1"]),
    "model.heads": (True, ["{sem: 9}", "{'': 9}", "{a: 0}"]),
    "model.streams": (True, ["{color: 3}", "{a: 3, b: 3}", "{a: 0}"]),
    "model.freeze": (True, ["none", "backbone", "up_to:conv9_9", "up_to:fc7", "all"]),
    "model.output_stride": (True, ["8", "16", "32", "4"]),
    "model.pad100": (True, ["false", "true"]),
    "data.crop_size": (True, ["1", "8", "10000", "10001", "100000", "0"]),
    "data.jitter": (True, ["0", "1", "10000", "10001", "100000"]),
    "data.scale_range": (True, ["[1e-300, 1e-300]", "[0.01, 100]", "[2, 1]", "[0.5, 2]", "[1]", "[1, 1e30]"]),
    "data.mask_cue": (True, ["both", "foreground", "none", "all"]),
    "data.preprocessing": (True, ["imagenet", "nyud", "caffe_voc", "other"]),
    "data.options": (True, ["{n: 0}", "{n: 1, size: 1}", "{n: 2, size: 100000}", "{nn: 1}", "{size: -4}"]),
    "data.normalize_on_device": (True, ["true", "false"]),
    "train.lr": (True, ["0", "1", "1e30", "1e300", "1e-300"]),
    "train.momentum": (True, ["0", "0.99999", "1"]),
    "train.optimizer": (True, ["sgd", "adamw", "adam"]),
    "train.schedule": (True, ["fixed", "poly", "step", "cosine"]),
    "train.step_size": (True, ["0", "1", "1000000000000"]),
    "train.step_gamma": (True, ["0", "1e-300", "1000000"]),
    "train.class_weights": (True, ["[0, 0, 0, 0, 0, 0, 0, 0, 0]", "[1, 1]", "inverse_frequency", "median_frequency"]),
    "train.loss": (True, ["ce", "focal", "dice", "ce_dice", "nope"]),
    "train.focal_gamma": (True, ["0", "100", "101"]),
    "train.loss_sampling": (True, ["1e-300", "1", "0"]),
    "train.amp": (True, ["true", "false", "auto", "maybe"]),
    "train.seed": (True, ["0", "9223372036854775807", "9223372036854775808"]),
    "train.device": (True, ["cpu", "mps", "cuda:99", "meta", "auto"]),
    "train.normalize": (True, ["true", "false"]),
    "train.early_stop": (True, ["{patience: 1}", "{patience: 0}", "{metric: nope}", "null"]),
    "train.max_iter": (False, ["0", "1", "1000000000000", "1000000000001"]),
    "train.iter_size": (False, ["0", "1", "100000", "100001"]),
    "data.batch_size": (False, ["0", "1", "100000", "100001"]),
    "data.workers": (False, ["-1", "0", "auto", "1024", "1025"]),
    "eval.batch_size": (False, ["0", "1", "100001"]),
    "train.eval_every": (False, ["0", "1", "1e12"]),
    "train.dist_timeout_s": (False, ["0", "1", "1e7", "1e8"]),
}
_BASE = [
    "model.name=fcn32s_vgg16",
    "model.width=0.0625",
    "data.options={n: 2, size: 32}",
    "data.val_options={n: 1}",
    "data.workers=0",
    "train.device=cpu",
    "train.max_iter=1",
    "train.eval_every=1000",
    "train.checkpoint_every=1000",
    "eval.grid_images=0",
]


@pytest.mark.slow
def test_fuzz_config_values(tmp_path) -> None:
    """80 configs with 1–2 values mutated: each is refused at load with one line, or loads and trains a step
    (keys of run length and batch size: loaded only) without any other exception."""
    rng = np.random.default_rng(32)
    keys = list(_KEYS)
    cases = []
    for i in range(80):
        chosen = sorted({keys[int(rng.integers(len(keys)))] for _ in range(int(rng.integers(1, 3)))})
        pools = [_KEYS[k][1] + (_ANY if rng.random() < 0.2 else []) for k in chosen]
        sets = [f"{k}={pool[int(rng.integers(len(pool)))]}" for k, pool in zip(chosen, pools, strict=True)]
        cases.append([str(tmp_path / f"run{i}"), all(_KEYS[k][0] for k in chosen), *sets])
    setup = (
        "from fcnseg.config import load_config\n"
        "from fcnseg.train.trainer import fit\n"
        f"BASE = {_BASE!r}\n"
        "def run(case):\n"
        "    out, train, *sets = case\n"
        "    cfg = load_config(None, [*BASE, *sets])\n"
        "    if train:\n"
        "        fit(cfg, out, progress=False)\n"
    )
    problems = _fuzz_in_child(setup, cases, tmp_path)
    assert not problems, problems[:5]
