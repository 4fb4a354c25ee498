"""Random and mutated bytes through the readers of untrusted files: only one-line FCNErrors."""

from __future__ import annotations

import numpy as np

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
