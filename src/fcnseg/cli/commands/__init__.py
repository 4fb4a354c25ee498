"""The commands: one thin module each (``register(sub)`` builds its parser, ``run(args)`` calls the library).

:data:`COMMANDS` is the one table of them. ``fcnseg --help`` reads it without importing any command module, and a
command's module is imported only when that command runs (or prints its help); no module imports torch before its
``run``, so ``--help`` and argument errors answer at once.
"""

from __future__ import annotations

__all__ = ["COMMANDS"]

#: command → (module in this package that registers it, one line of help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": (
        "demo_cmd",
        "the paper in five CPU minutes: a pretrained classifier fine-tuned as FCN-32s → 16s → 8s, evaluated",
    ),
    "train": ("train_cmd", "train from a YAML config (works under torchrun for DDP)"),
    "eval": ("eval_cmd", "the four metrics of a checkpoint on a dataset"),
    "predict": ("predict_cmd", "segment images (files, folders, globs); resumable, torchrun- and Ray-ready"),
    "tune": (
        "tune_cmd",
        "measure every inference engine for a checkpoint and image sizes now, so that later "
        "commands start on the fastest",
    ),
    "export": (
        "export_cmd",
        "export to ONNX (dynamic batch, height, width), checked with onnxruntime; or a Hugging Face Hub folder",
    ),
    "convert": ("convert_cmd", "convert weights of other FCN implementations to an fcnseg checkpoint"),
    "data": ("data_cmd", "check a dataset on disk, import annotation-tool exports, write the synthetic set"),
    "weights": (
        "weights_cmd",
        "the pretrained weights fcnseg fetches on first use (the reference FCNs, ImageNet trunks) and which are cached",
    ),
    "list": ("models_cmd", "list the registered models, with what each is"),
    "info": ("models_cmd", "parameters, strides, crop offsets and kernels of a model or a checkpoint"),
    "serve": ("serve_cmd", "a web page to try a model, and an HTTP API (POST /api/segment)"),
    "bench": ("bench_cmd", "inference speed against this machine's GEMM floor per precision (docs/PERFORMANCE.md)"),
    "experiment": ("experiment_cmd", "reproduce the paper's findings (Table 2 and the rest of the paper)"),
}
