"""labelme JSON values as data: non-finite or far points, wrong types and deep JSON give one DataError line (in a
child under an address-space limit); a mask shape at a negative offset is cut, not dropped; any image format in
``imageData`` and EXIF-turned photos import with their shapes aligned."""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pytest
from PIL import Image

from fcnseg.cli.main import main
from fcnseg.data import get_dataset
from fcnseg.data.labelme import import_labelme
from tests.badinput import AS_LIMIT, jpeg, no_traceback, run_limited

from .fixtures_tools import LABELME_LABELS, labelme_file, labelme_shape, make_labelme, png_bytes, rgb

SHAPE = ("shapes", 1)  # a.json's dog polygon [[6, 4], [20, 4], [20, 12], [6, 12]] in a 48×40 image

#: (case, edits to a.json as (path, value) pairs — or the whole text —, words of the error); "@raw:TEXT" is TEXT,
#: "@delete" removes the key
CASES = [
    ("point NaN", [((*SHAPE, "points", 0, 0), "@raw:NaN")], "NaN is not a JSON number"),
    ("point Infinity", [((*SHAPE, "points", 0, 1), "@raw:Infinity")], "Infinity is not a JSON number"),
    ("point 'nan'", [((*SHAPE, "points", 0, 0), "nan")], "points must be [x, y] pairs of numbers"),
    ("point 'inf'", [((*SHAPE, "points", 0, 0), "inf")], "points must be [x, y] pairs of numbers"),
    ("point 1e300", [((*SHAPE, "points", 0, 0), 1e300)], "a point far outside the 48×40 image"),
    ("point -1e9", [((*SHAPE, "points", 2, 1), -1e9)], "a point far outside the 48×40 image"),
    ("circle radius 1e7", [(("shapes", 2, "points", 1, 0), 1e7)], "a point far outside the 48×40 image"),
    ("point 1e400", [((*SHAPE, "points", 0, 0), "@raw:1e400")], "number 1e400 is too large"),
    ("point true", [((*SHAPE, "points", 0, 0), True)], "points must be [x, y] pairs of numbers"),
    ("label [1]", [((*SHAPE, "label"), [1])], "shape 1 has label [1], which is not in the labels file"),
    ("label {}", [((*SHAPE, "label"), {"a": 1})], "which is not in the labels file"),
    ("shape_type [1]", [((*SHAPE, "shape_type"), [1])], "shape_type must be a word, got [1]"),
    ("shape_type {}", [((*SHAPE, "shape_type"), {"a": 1})], "shape_type must be a word"),
    ("shape 7", [(SHAPE, 7)], "shape 1 must be an object, got 7"),
    ("JSON 100000 deep", "[" * 100000 + "]" * 100000, "nested 100000 levels deep"),
    ("shape 100 deep", [((*SHAPE, "flags"), json.loads("[" * 100 + "]" * 100))], "nested 103 levels deep"),
    ("imagePath 5", [(("imagePath",), 5)], "neither imageData nor imagePath"),
    ("imageWidth missing", [(("imageWidth",), "@delete"), (("imageHeight",), 41)], "say 41×None, the image is 40×48"),
]


def _text(data: dict) -> str:
    return re.sub(r'"@raw:([^"]*)"', r"\1", json.dumps(data))


CHILD = """
import json, sys
from fcnseg.data.labelme import import_labelme
from fcnseg.errors import FCNError
results = {}
for label, src, labels, out in json.loads(open(sys.argv[1]).read()):
    try:
        import_labelme(src, labels, out)
        results[label] = "accepted"
    except FCNError as e:
        results[label] = "FCNError: " + str(e)
    except Exception as e:
        results[label] = f"BUG {type(e).__name__}: {e}"
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, str]:
    """Every case through ``import_labelme`` in one child process under an address-space limit."""
    base = tmp_path_factory.mktemp("labelme")
    make_labelme(base)
    original = json.loads((base / "json" / "a.json").read_text())
    runs = []
    for n, (label, edits, _) in enumerate(CASES):
        if isinstance(edits, str):
            text = edits
        else:
            data = json.loads(json.dumps(original))
            for path, value in edits:
                target = data
                for key in path[:-1]:
                    target = target[key]
                if value == "@delete":
                    del target[path[-1]]
                else:
                    target[path[-1]] = value
            text = _text(data)
        src = base / "json" / f"case{n}.json"
        src.write_text(text)
        runs.append((label, str(src), str(base / "labels.txt"), str(base / f"out{n}")))
    listing = base / "cases.json"
    listing.write_text(json.dumps(runs))
    proc = run_limited(CHILD, str(listing))
    assert proc.returncode == 0, (
        f"the child died (rc {proc.returncode}) under RLIMIT_AS={AS_LIMIT}: {proc.stderr[-2000:]}"
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("label, edits, words", CASES, ids=[c[0] for c in CASES])
def test_bad_labelme_json_is_one_data_error(outcomes, label, edits, words) -> None:
    outcome = outcomes[label]
    assert outcome.startswith("FCNError: ") and words in outcome, outcome
    assert "\n" not in outcome


def _mask_shape(part: np.ndarray, x: float, y: float, label: str = "dog") -> dict:
    h, w = part.shape
    shape = labelme_shape(label, [[x, y], [x + w - 1, y + h - 1]], "mask")
    return {**shape, "mask": base64.b64encode(png_bytes(part)).decode()}


def test_mask_shape_at_a_negative_offset_is_cut_not_dropped(tmp_path) -> None:
    img = tmp_path / "img" / "x.png"
    rgb(img, 12, 12, seed=0, fmt="PNG")
    (tmp_path / "labels.txt").write_text(LABELME_LABELS)
    part = np.zeros((4, 5), np.uint8)
    part[1:, 2:] = 1  # 3×3 set, of which 2×2 lie inside once the corner is at (-3, -2)
    labelme_file(tmp_path / "src" / "x.json", img, [_mask_shape(part, -3, -2)], 12, 12, embed=True)
    import_labelme(tmp_path / "src", tmp_path / "labels.txt", tmp_path / "out")
    m = np.asarray(Image.open(tmp_path / "out" / "masks" / "x.png"))
    assert np.argwhere(m == 2).tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]


@pytest.mark.parametrize(
    "part, x, y, words",
    [
        (np.ones((3, 3), np.uint8), -10, 2, "the 3×3 mask at (-10, 2) lies outside the 12×12 image"),
        (np.ones((3, 3), np.uint8), 12, 0, "the 3×3 mask at (12, 0) lies outside the 12×12 image"),
        (np.ones((13, 12), np.uint8), 0, 0, "is not usable"),  # more pixels than the image
    ],
)
def test_mask_shape_outside_the_image_is_refused(tmp_path, part, x, y, words) -> None:
    img = tmp_path / "img" / "x.png"
    rgb(img, 12, 12, seed=0, fmt="PNG")
    (tmp_path / "labels.txt").write_text(LABELME_LABELS)
    labelme_file(tmp_path / "src" / "x.json", img, [_mask_shape(part, x, y)], 12, 12, embed=True)
    with pytest.raises(Exception, match=re.escape(words)) as info:
        import_labelme(tmp_path / "src", tmp_path / "labels.txt", tmp_path / "out")
    assert type(info.value).__name__ == "DataError"


@pytest.mark.parametrize("fmt", ["GIF", "PPM"])
def test_image_data_of_any_readable_format_imports_as_png(tmp_path, capsys, fmt) -> None:
    """GIF and PPM are formats fcnseg reads: imported as PNG (was: an error naming '<_io.BytesIO object …>')."""
    pixels = np.random.default_rng(0).integers(0, 256, (10, 14, 3), dtype=np.uint8)
    img = tmp_path / "img" / f"x.{fmt.lower()}"
    img.parent.mkdir()
    Image.fromarray(pixels).convert("P" if fmt == "GIF" else "RGB").save(img, format=fmt)
    (tmp_path / "labels.txt").write_text(LABELME_LABELS)
    labelme_file(tmp_path / "src" / "x.json", img, [labelme_shape("cat", [[1, 1], [5, 5]], "rectangle")], 10, 14, True)
    argv = ["data", "import", "labelme", str(tmp_path / "src"), "--labels", str(tmp_path / "labels.txt")]
    code = main([*argv, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    no_traceback(err, code)
    assert code == 0 and "BytesIO" not in err, err
    written = Image.open(tmp_path / "out" / "images" / "x.png")
    assert written.format == "PNG" and written.size == (14, 10)
    assert (np.asarray(Image.open(tmp_path / "out" / "masks" / "x.png"))[1:6, 1:6] == 1).all()


def test_an_exif_turned_photo_imports_upright_with_its_shapes(tmp_path) -> None:
    """labelme draws on the upright photo; the import writes the upright pixels, so the pair stays aligned."""
    raw = jpeg(rgb=(200, 200, 200), size=(16, 16), exif_orientation=6)  # square: sizes cannot tell the turn
    img = tmp_path / "img" / "x.jpg"
    img.parent.mkdir()
    img.write_bytes(raw)
    (tmp_path / "labels.txt").write_text(LABELME_LABELS)
    labelme_file(tmp_path / "src" / "x.json", img, [labelme_shape("cat", [[0, 0], [3, 15]], "rectangle")], 16, 16)
    import_labelme(tmp_path / "src", tmp_path / "labels.txt", tmp_path / "out")
    written = Image.open(tmp_path / "out" / "images" / "x.png")
    assert "exif" not in written.info or written.getexif().get(0x0112, 1) == 1
    ds = get_dataset("folder", tmp_path / "out")
    mask = ds[0][1].numpy()
    assert (mask[:, :4] == 1).all() and (mask[:, 4:] == 0).all()  # the rectangle where it was drawn


def test_a_non_square_exif_turned_photo_imports_upright(tmp_path) -> None:
    raw = jpeg(size=(20, 12), exif_orientation=6)  # stored 20 wide, 12 tall; upright 12 wide, 20 tall
    img = tmp_path / "img" / "x.jpg"
    img.parent.mkdir()
    img.write_bytes(raw)
    (tmp_path / "labels.txt").write_text(LABELME_LABELS)
    labelme_file(tmp_path / "src" / "x.json", img, [labelme_shape("dog", [[0, 0], [11, 2]], "rectangle")], 20, 12)
    import_labelme(tmp_path / "src", tmp_path / "labels.txt", tmp_path / "out")
    image, mask = get_dataset("folder", tmp_path / "out")[0]
    assert tuple(image.shape[-2:]) == tuple(mask.shape) == (20, 12)
    assert (mask[:3].numpy() == 2).all() and (mask[3:].numpy() == 0).all()
    assert np.asarray(Image.open(io.BytesIO((tmp_path / "out" / "images" / "x.png").read_bytes()))).shape == (20, 12, 3)
