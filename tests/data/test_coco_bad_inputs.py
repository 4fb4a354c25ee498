"""COCO JSON values as data: bombs, wrong shapes and wrong types give one DataError line, never a traceback,
a crash or an allocation the file asked for (every case runs in a child under an address-space limit)."""

from __future__ import annotations

import importlib.util
import json
import re

import numpy as np
import pytest

from fcnseg.cli.main import main
from tests.badinput import AS_LIMIT, no_traceback, run_limited

from .fixtures_tools import make_coco

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("pycocotools") is None, reason="needs the coco extra: pip install 'fcnseg[coco]'"
)

IMAGES = ("images",)
ANN0 = ("annotations", 0)  # a polygon annotation of image 1 (20×30)
RLE = ("annotations", 2, "segmentation")  # a compressed RLE of image 2
CROWD = ("annotations", 3, "segmentation")  # an uncompressed RLE (a crowd) of image 2


def _zigzag(n: int) -> list[float]:
    return [float(v) for i in range(n) for v in ((0, 0) if i % 2 else (29, 19))]


def _rle_string(runs: list[int]) -> str:
    """COCO's compressed RLE string of ``runs`` (maskApi.c's rleToString), for runs that do not fit the image."""
    return _rle_values([run - (runs[i - 2] if i > 2 else 0) for i, run in enumerate(runs)])


def _rle_values(values: list[int]) -> str:
    """The string of the stored numbers themselves (from the fourth on: differences to the run two before)."""
    out = []
    for x in values:
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (c & 0x10 and x != -1) or (not c & 0x10 and x != 0)
            out.append(chr(c + 48 + (0x20 if more else 0)))
    return "".join(out)


#: (case, edits to the fixture's JSON as (path, value) pairs — or the whole file's text —, words of the error);
#: a value ``"@raw:TEXT"`` is written as TEXT itself (NaN, 1e400: what Python's json writes and reads)
CASES = [
    # resource bombs: each asked pycocotools or NumPy for gigabytes (or wrote past a buffer)
    ("NaN vertex", [((*ANN0, "segmentation", 0, 2), "@raw:NaN")], "NaN is not a JSON number"),
    ("null vertex", [((*ANN0, "segmentation", 0, 2), None)], "polygon 0 is not a flat list of x, y numbers"),
    ("vertex 1e9", [((*ANN0, "segmentation", 0, 2), 1e9)], "far outside the 30×20 image"),
    ("vertex 1e300", [((*ANN0, "segmentation", 0, 3), -1e300)], "far outside the 30×20 image"),
    ("vertex 1e400", [((*ANN0, "segmentation", 0, 2), "@raw:1e400")], "number 1e400 is too large"),
    ("vertex Infinity", [((*ANN0, "segmentation", 0, 2), "@raw:-Infinity")], "-Infinity is not a JSON number"),
    ("outline 40000 px", [((*ANN0, "segmentation", 0), _zigzag(2000))], "polygons with an outline of"),
    ("image 200000×200000", [((*IMAGES, 0, "height"), 200000), ((*IMAGES, 0, "width"), 200000)], "exceeds the limit"),
    ("image height 1e30", [((*IMAGES, 0, "height"), 10**30)], "exceeds the limit of"),
    ("RLE counts 1e12", [((*CROWD, "counts"), [10**12])], "RLE runs add up to 1000000000000 pixels"),
    ("RLE string of 6000 px", [((*RLE, "counts"), _rle_string([6000]))], "RLE runs add up to 6000 pixels"),
    ("RLE string negative run", [((*RLE, "counts"), _rle_values([10, 50, 5, -60]))], "negative run length"),
    ("RLE string cut", [((*RLE, "counts"), "0P")], "ends inside a number"),
    ("RLE string alphabet", [((*RLE, "counts"), "zzzz")], "outside COCO's alphabet"),
    ("RLE counts -5", [((*CROWD, "counts", 0), -5)], "RLE counts must be non-negative integers"),
    ("RLE counts 1.5", [((*CROWD, "counts", 0), 1.5)], "RLE counts must be non-negative integers"),
    ("JSON 100000 deep", "[" * 100000 + "]" * 100000, "nested 100000 levels deep"),
    ("annotation 200 deep", [((*ANN0, "extra"), json.loads("[" * 200 + "]" * 200))], "nested 203 levels deep"),
    # wrong shapes and types: each was a traceback
    ("images [1]", [(IMAGES, [1])], "images[0] must be an object, got 1"),
    ("images ['x']", [((*IMAGES, 0), "x")], "images[0] must be an object, got 'x'"),
    ("annotations 5", [(("annotations",), 5)], "'annotations' must be a list, got int"),
    ("annotations true", [(("annotations",), True)], "'annotations' must be a list, got bool"),
    ("image id [1]", [((*IMAGES, 0, "id"), [1])], "id must be a number or a string, got [1]"),
    ("image id {}", [((*IMAGES, 0, "id"), {"a": 1})], "id must be a number or a string"),
    ("image height true", [((*IMAGES, 0, "height"), True)], "height and width must be positive integers"),
    ("image width false", [((*IMAGES, 0, "width"), False)], "height and width must be positive integers"),
    ("file_name 7", [((*IMAGES, 0, "file_name"), 7)], "file_name must be a file name, got 7"),
    ("image_id [1]", [((*ANN0, "image_id"), [1])], "annotation 101 has image_id [1]"),
    ("image_id {}", [((*ANN0, "image_id"), {"a": 1})], "annotation 101 has image_id"),
    ("category_id [1]", [((*ANN0, "category_id"), [1])], "has category [1], which is not in 'categories'"),
    ("category_id {}", [((*ANN0, "category_id"), {"a": 1})], "which is not in 'categories'"),
    ("category_id true", [((*ANN0, "category_id"), True)], "has category True, which is not in"),
    ("category id true", [(("categories", 0, "id"), True)], "every category needs an integer 'id'"),
    ("iscrowd 'x'", [((*ANN0, "iscrowd"), "x")], "annotation 101 has iscrowd x"),
    ("RLE size 5", [((*RLE, "size"), 5)], "RLE size must be [height, width], got 5"),
    ("RLE size ['a', 'b']", [((*RLE, "size"), ["a", "b"])], "RLE size must be [height, width]"),
    ("RLE counts 5", [((*RLE, "counts"), 5)], "RLE counts must be a list of run lengths or a string, got 5"),
    ("RLE counts {}", [((*RLE, "counts"), {"a": 1})], "RLE counts must be a list of run lengths or a string"),
    ("RLE counts null", [((*RLE, "counts"), None)], "RLE counts must be a list of run lengths or a string"),
    ("vertex 'x'", [((*ANN0, "segmentation", 0, 0), "x")], "polygon 0 is not a flat list of x, y numbers"),
    ("vertex [1]", [((*ANN0, "segmentation", 0, 0), [1])], "polygon 0 is not a flat list of x, y numbers"),
    ("vertex true", [((*ANN0, "segmentation", 0, 0), True)], "polygon 0 is not a flat list of x, y numbers"),
]


def _text(data: dict) -> str:
    return re.sub(r'"@raw:([^"]*)"', r"\1", json.dumps(data))


def _edit(data: dict, path: tuple, value: object) -> None:
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


CHILD = """
import json, sys
from fcnseg.data import get_dataset
from fcnseg.errors import FCNError
results = {}
for label, root in json.loads(open(sys.argv[1]).read()):
    try:
        ds = get_dataset("coco", root, "val2017")
        for i in range(len(ds)):
            ds[i]
        results[label] = "accepted"
    except FCNError as e:
        results[label] = "FCNError: " + str(e)
    except Exception as e:
        results[label] = f"BUG {type(e).__name__}: {e}"
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, str]:
    """Every case through the COCO dataset in one child process under an address-space limit."""
    base = tmp_path_factory.mktemp("coco")
    make_coco(base / "clean")
    original = json.loads((base / "clean" / "annotations" / "instances_val2017.json").read_text())
    assert len({c[0] for c in CASES}) == len(CASES)
    roots = []
    for n, (label, edits, _) in enumerate(CASES):
        root = base / f"case{n}"
        make_coco(root)
        if isinstance(edits, str):
            text = edits
        else:
            data = json.loads(json.dumps(original))
            for path, value in edits:
                _edit(data, path, value)
            text = _text(data)
        (root / "annotations" / "instances_val2017.json").write_text(text)
        roots.append((label, str(root)))
    listing = base / "cases.json"
    listing.write_text(json.dumps(roots))
    proc = run_limited(CHILD, str(listing))
    assert proc.returncode == 0, (
        f"the child died (rc {proc.returncode}) under RLIMIT_AS={AS_LIMIT}: {proc.stderr[-2000:]}"
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("label, edits, words", CASES, ids=[c[0] for c in CASES])
def test_bad_coco_json_is_one_data_error(outcomes, label, edits, words) -> None:
    outcome = outcomes[label]
    assert outcome.startswith("FCNError: ") and words in outcome, outcome
    assert "\n" not in outcome


def test_a_polygon_bomb_through_the_cli_is_one_line(tmp_path) -> None:
    """A far vertex (once: gigabytes in pycocotools) through ``data check``: that sample's problem, listed."""
    make_coco(tmp_path)
    path = tmp_path / "annotations" / "instances_val2017.json"
    data = json.loads(path.read_text())
    data["annotations"][0]["segmentation"] = [[2.0, 2.0, 1e9, 2.0, 12.0, 10.0]]
    path.write_text(json.dumps(data))
    code = "import sys\nfrom fcnseg.cli.main import main\nsys.exit(main(sys.argv[1:]))"
    argv = ["data", "check", str(tmp_path), "--dataset", "coco", "--split", "val2017"]
    proc = run_limited(code, *argv)
    assert proc.returncode == 1, proc.stderr[-2000:]  # data check lists the sample's problem
    assert "far outside the 30×20 image" in proc.stdout and "Traceback" not in proc.stdout + proc.stderr


def test_valid_rle_strings_and_polygons_still_decode(tmp_path) -> None:
    """The checks accept what pycocotools itself writes (compressed RLE of every run pattern) unchanged."""
    import pycocotools.mask as m

    from fcnseg.data._coco_checks import rle_string_counts

    rng = np.random.default_rng(0)
    for t in range(60):
        h, w = (int(v) for v in rng.integers(1, 200, 2))
        mask = (rng.random((h, w)) < rng.random()).astype(np.uint8)
        counts = m.encode(np.asfortranarray(mask))["counts"].decode("ascii")
        flat = mask.flatten(order="F")
        edges = np.flatnonzero(np.diff(flat)) + 1
        runs = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
        expected = ([0] if flat[0] else []) + runs
        assert rle_string_counts(counts, "t") == expected, t


def test_bad_coco_json_through_data_check_is_one_line(tmp_path, capsys) -> None:
    make_coco(tmp_path)
    path = tmp_path / "annotations" / "instances_val2017.json"
    data = json.loads(path.read_text())
    data["images"][0]["id"] = [1]
    path.write_text(json.dumps(data))
    code = main(["data", "check", str(tmp_path), "--dataset", "coco", "--split", "val2017"])
    err = capsys.readouterr().err
    no_traceback(err, code)
    assert code == 2 and "id must be a number or a string" in err, err


def test_size_limit_follows_fcnseg_max_pixels(tmp_path, monkeypatch) -> None:
    from fcnseg.data import get_dataset
    from fcnseg.errors import DataError

    make_coco(tmp_path)
    monkeypatch.setenv("FCNSEG_MAX_PIXELS", "500")  # the fixture's images are 30×20 = 600 px
    with pytest.raises(DataError, match=r"images\[0\] \(000000000139.jpg\): 30×20 exceeds the limit of 500 pixels"):
        get_dataset("coco", tmp_path, "val2017")
