"""Tests for mmedu.coco on a tiny fixture in exactly COCO's caption format (tests/fixtures/coco_tiny)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from mmedu.coco import CocoCaptions, load_coco_captions
from mmedu.metrics import recall_at_k

FIXTURE = Path(__file__).parent / "fixtures" / "coco_tiny"


@pytest.fixture
def folder(tmp_path):
    dst = tmp_path / "coco"
    shutil.copytree(FIXTURE, dst)
    return dst


def test_fixture_is_in_coco_format_and_small():
    data = json.loads((FIXTURE / "captions.json").read_text())
    assert set(data) >= {"info", "licenses", "images", "annotations"}
    assert all({"id", "file_name", "height", "width"} <= set(im) for im in data["images"])
    assert all(set(a) == {"image_id", "id", "caption"} for a in data["annotations"])
    assert sum(p.stat().st_size for p in FIXTURE.iterdir()) < 50_000


def test_loads_and_maps_captions_to_feature_rows():
    data = json.loads((FIXTURE / "captions.json").read_text())
    c = load_coco_captions(FIXTURE)
    assert isinstance(c, CocoCaptions) and c.caption_features is None
    img_ids = np.load(FIXTURE / "image_ids.npy")
    assert c.image_ids.tolist() == img_ids.tolist()
    torch.testing.assert_close(c.image_features, torch.from_numpy(np.load(FIXTURE / "image_features.npy")))
    assert c.n_captions == len(data["annotations"]) and c.n_images == len(img_ids)
    names = {im["id"]: im["file_name"] for im in data["images"]}
    assert c.file_names == [names[int(i)] for i in img_ids]
    # independent check: every caption points at the feature row of its own image id
    for j, a in enumerate(data["annotations"]):
        assert c.captions[j] == a["caption"].strip() and int(c.caption_ids[j]) == a["id"]
        assert int(c.image_ids[c.caption_image[j]]) == a["image_id"]
    assert "n_images=5" in repr(c)


def test_caption_features_follow_caption_ids_order():
    data = json.loads((FIXTURE / "captions.json").read_text())
    by_id = {a["id"]: a for a in data["annotations"]}
    c = load_coco_captions(FIXTURE, caption_features="caption_features.npy")
    cap_ids = np.load(FIXTURE / "caption_ids.npy")
    assert c.caption_ids.tolist() == cap_ids.tolist()
    assert c.captions == [by_id[int(i)]["caption"].strip() for i in cap_ids]
    torch.testing.assert_close(c.caption_features, torch.from_numpy(np.load(FIXTURE / "caption_features.npy")))
    assert [int(c.image_ids[r]) for r in c.caption_image] == [by_id[int(i)]["image_id"] for i in cap_ids]


def test_positives_drive_the_metrics():
    c = load_coco_captions(FIXTURE)
    t2i, i2t = c.positives("text_to_image"), c.positives("image_to_text")
    assert t2i.shape == (10, 5) and i2t.shape == (5, 10)
    assert t2i.sum(1).tolist() == [1] * 10 and i2t.sum(1).tolist() == [2] * 5
    # an oracle score (1 on the true image) gives Recall@1 = 1
    assert recall_at_k(t2i.double(), 1, positives=t2i)[1] == 1.0
    with pytest.raises(ValueError, match="direction"):
        c.positives("both")


def test_missing_files_and_folder(folder, tmp_path):
    with pytest.raises(FileNotFoundError, match="folder"):
        load_coco_captions(tmp_path / "nowhere")
    (folder / "image_features.npy").unlink()
    with pytest.raises(FileNotFoundError, match="image_features"):
        load_coco_captions(folder)
    with pytest.raises(FileNotFoundError, match="annotations"):
        load_coco_captions(folder, annotations="captions_val2017.json")
    with pytest.raises(FileNotFoundError, match="caption_features"):
        load_coco_captions(FIXTURE, caption_features="nope.npy")


def test_mismatched_ids(folder):
    np.save(folder / "image_ids.npy", np.array([724, 139, 776, 285, 999999]))
    with pytest.raises(ValueError, match="not images of captions.json.*999999"):
        load_coco_captions(folder)
    np.save(folder / "image_ids.npy", np.array([724, 139, 776, 285, 285]))
    with pytest.raises(ValueError, match="unique ids.*285"):
        load_coco_captions(folder)
    np.save(folder / "image_ids.npy", np.array([724.0, 139, 776, 285, 632]))
    with pytest.raises(ValueError, match="integer ids"):
        load_coco_captions(folder)
    # an image without a feature row: its captions are an error, or dropped on request
    np.save(folder / "image_ids.npy", np.array([724, 139, 776, 285]))
    np.save(folder / "image_features.npy", np.zeros((4, 8), dtype=np.float32))
    with pytest.raises(ValueError, match="2 captions describe images without a feature row"):
        load_coco_captions(folder)
    c = load_coco_captions(folder, drop_missing=True)
    assert c.n_captions == 8 and 632 not in [int(c.image_ids[r]) for r in c.caption_image]
    np.save(folder / "caption_ids.npy", np.array([1000, 424242]))
    with pytest.raises(ValueError, match="not annotations.*424242"):
        load_coco_captions(folder, caption_features="caption_features.npy")


def test_bad_shapes_and_values(folder):
    np.save(folder / "image_features.npy", np.zeros((4, 8), dtype=np.float32))
    with pytest.raises(ValueError, match="expected 5 rows"):
        load_coco_captions(folder)
    np.save(folder / "image_features.npy", np.zeros(5, dtype=np.float32))
    with pytest.raises(ValueError, match="2-D"):
        load_coco_captions(folder)
    x = np.zeros((5, 8), dtype=np.float32)
    x[2, 3] = np.nan
    np.save(folder / "image_features.npy", x)
    with pytest.raises(ValueError, match="finite"):
        load_coco_captions(folder)
    np.save(folder / "image_features.npy", np.zeros((5, 8), dtype=np.int64))
    with pytest.raises(ValueError, match="floating-point"):
        load_coco_captions(folder)
    np.save(folder / "image_features.npy", np.array([object()] * 5, dtype=object))
    with pytest.raises(ValueError, match="plain NumPy array"):
        load_coco_captions(folder)


def test_malformed_json(folder):
    path = folder / "captions.json"
    data = json.loads(path.read_text())
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_coco_captions(folder)
    path.write_text(json.dumps({"images": data["images"]}))
    with pytest.raises(ValueError, match="'images' and 'annotations'"):
        load_coco_captions(folder)
    bad = dict(data, annotations=data["annotations"] + [{"image_id": 5, "id": 1, "caption": "x"}])
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="image id 5, which is not in 'images'"):
        load_coco_captions(folder)
    bad = dict(data, annotations=data["annotations"] + [dict(data["annotations"][0])])
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="annotation id 1000 occurs more than once"):
        load_coco_captions(folder)
    bad = dict(data, annotations=[{"image_id": 139, "caption": "no id"}])
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=r"annotations\[0\]"):
        load_coco_captions(folder)
    bad = dict(data, images=data["images"] + [data["images"][0]])
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="image id 139 occurs more than once"):
        load_coco_captions(folder)


def test_npz_content_under_an_npy_name_is_a_clear_error(folder):
    # np.load returns an NpzFile for .npz content whatever the file is called: it used to fail
    # later with AttributeError ('NpzFile' object has no attribute 'ndim')
    with open(folder / "image_features.npy", "wb") as fh:
        np.savez(fh, features=np.zeros((5, 8), dtype=np.float32))
    with pytest.raises(ValueError, match=r"image_features: expected one NumPy array \(np.save\) in .*"
                                         r"image_features.npy, got a NpzFile archive of arrays \['features'\]"):
        load_coco_captions(folder)
    with open(folder / "image_ids.npy", "wb") as fh:
        np.savez(fh, np.array([724, 139, 776, 285, 632]))
    with pytest.raises(ValueError, match=r"image_ids: expected one NumPy array .* \['arr_0'\]"):
        load_coco_captions(folder)


def test_non_utf8_json_names_the_file(folder):
    path = folder / "captions.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["annotations"][0]["caption"] = "A caf\u00e9 with a table."
    path.write_bytes(json.dumps(data, ensure_ascii=False).encode("latin-1"))  # é is one byte, 0xE9
    with pytest.raises(ValueError, match=r"annotations: .*captions.json is not UTF-8 text"):
        load_coco_captions(folder)


def test_an_image_without_a_caption_fails_early_naming_it(folder):
    # every caption of image 632 removed: it has features but no caption, so image -> text
    # retrieval would have no positive for it (recall_at_k failed much later, without a name)
    path = folder / "captions.json"
    data = json.loads(path.read_text())
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] != 632]
    path.write_text(json.dumps(data))
    name = next(im["file_name"] for im in data["images"] if im["id"] == 632)
    with pytest.raises(ValueError, match=rf"1 images with a feature row in image_ids.npy have no caption "
                                         rf"\(first: image 632, '{name}'\)"):
        load_coco_captions(folder)
