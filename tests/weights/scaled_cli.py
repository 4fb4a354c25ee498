"""``python -m tests.weights.scaled_cli ARGS``: the fcnseg command line with the registry's Caffe and torchfcn entries
scaled down (``files.scale_registry``), for tests that need a second process. ``SCALED_CHECKSUMS`` (JSON, file name →
checksum) gives scaled files a published checksum."""

from __future__ import annotations

import json
import os
import sys

from fcnseg.cli.main import main
from tests.weights.files import scale_registry

if __name__ == "__main__":
    scale_registry(checksums=json.loads(os.environ.get("SCALED_CHECKSUMS", "{}")))
    raise SystemExit(main(sys.argv[1:]))
