r"""A loader for a COCO-captions-style corpus kept in a local folder, with precomputed features.

The same retrieval code that runs on MMDigits runs on a real corpus at scale when the corpus
is turned into the same objects: image feature rows, captions, and which image each caption
describes.  :func:`load_coco_captions` reads a folder the user prepared::

    folder/
        captions.json          COCO's caption format (e.g. captions_val2017.json):
                               {"images": [{"id": int, "file_name": str, ...}, ...],
                                "annotations": [{"image_id": int, "id": int, "caption": str}, ...]}
        image_features.npy     (N_img, D_img) float features, one row per image
        image_ids.npy          (N_img,) int: the COCO image id of each feature row
        caption_features.npy   optional (N_cap, D_txt) float features, one row per caption
        caption_ids.npy        optional (N_cap,) int: the annotation id of each caption row

**Nothing is downloaded.**  Get the annotations from https://cocodataset.org (the
``annotations_trainval2017.zip`` archive holds ``captions_train2017.json`` and
``captions_val2017.json``) and compute the features with any encoder you like; arrays are
read with ``numpy.load(allow_pickle=False)``.

Only the images that have a feature row are used, in the order of ``image_ids.npy``; every
one of them must appear in the JSON.  Captions follow the JSON's annotation order (or the
order of ``caption_ids.npy`` when caption features are given); a caption whose image has no
feature row is an error unless ``drop_missing=True``, and so is an image with features but no
caption (it would have no positive for image-to-text retrieval).  Every problem (missing file, malformed
JSON, duplicated or unknown ids, wrong shapes, NaN features) is a ``FileNotFoundError`` or
``ValueError`` that says which file and what was expected.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["CocoCaptions", "load_coco_captions"]


@dataclass
class CocoCaptions:
    """A captioned image corpus with precomputed features.

    Attributes:
        image_ids: ``(N_img,)`` int64 COCO image ids, one per feature row.
        file_names: the ``N_img`` image file names (from the JSON).
        image_features: ``(N_img, D_img)`` float32.
        captions: the ``N_cap`` caption strings.
        caption_ids: ``(N_cap,)`` int64 annotation ids.
        caption_image: ``(N_cap,)`` int64: the row of ``image_features`` each caption describes.
        caption_features: ``(N_cap, D_txt)`` float32, or ``None`` if not provided.
    """

    image_ids: torch.Tensor
    file_names: list[str]
    image_features: torch.Tensor
    captions: list[str]
    caption_ids: torch.Tensor
    caption_image: torch.Tensor
    caption_features: torch.Tensor | None = None

    @property
    def n_images(self) -> int:
        return int(self.image_ids.numel())

    @property
    def n_captions(self) -> int:
        return len(self.captions)

    def __repr__(self) -> str:
        txt = "None" if self.caption_features is None else str(tuple(self.caption_features.shape))
        return (f"CocoCaptions(n_images={self.n_images}, n_captions={self.n_captions}, "
                f"image_features={tuple(self.image_features.shape)}, caption_features={txt})")

    def positives(self, direction: str = "text_to_image") -> torch.Tensor:
        """Boolean relevance matrix for :func:`mmedu.metrics.recall_at_k`'s ``positives``.

        ``"text_to_image"``: ``(N_cap, N_img)``, caption ``i``'s one positive is its image;
        ``"image_to_text"``: ``(N_img, N_cap)``, an image's positives are all its captions.
        (For the full COCO val set this is 25k x 5k booleans, about 125 MB.)
        """
        if direction not in ("text_to_image", "image_to_text"):
            raise ValueError(f"direction: expected 'text_to_image' or 'image_to_text', got {direction!r}")
        p = torch.zeros(self.n_captions, self.n_images, dtype=torch.bool)
        p[torch.arange(self.n_captions), self.caption_image] = True
        return p if direction == "text_to_image" else p.T.contiguous()


def _file(folder: Path, name: str | None, what: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise FileNotFoundError(f"{what}: expected the file {path}, which does not exist "
                                f"(see mmedu.coco's docstring for the folder layout)")
    return path


def _array(path: Path, what: str) -> np.ndarray:
    try:
        x = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise ValueError(f"{what}: {path} could not be read as a plain NumPy array ({exc})") from None
    if not isinstance(x, np.ndarray):  # an .npz archive (np.savez) saved under a .npy name
        names = list(getattr(x, "files", []))
        if hasattr(x, "close"):
            x.close()
        raise ValueError(f"{what}: expected one NumPy array (np.save) in {path}, got a {type(x).__name__} "
                         f"archive of arrays {names} (np.savez); save the array itself with np.save")
    return x


def _id_array(path: Path, what: str) -> np.ndarray:
    ids = _array(path, what)
    if ids.ndim != 1:
        raise ValueError(f"{what}: expected a 1-D array of integer ids in {path.name}, got shape {ids.shape}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{what}: expected integer ids in {path.name}, got dtype {ids.dtype}")
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"{what}: expected unique ids in {path.name}, id {int(uniq[counts > 1][0])} "
                         f"occurs {int(counts[counts > 1][0])} times")
    return ids.astype(np.int64)


def _features(path: Path, what: str, n: int, ids_name: str) -> torch.Tensor:
    x = _array(path, what)
    if x.ndim != 2:
        raise ValueError(f"{what}: expected a 2-D array (n, D) in {path.name}, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{what}: expected floating-point features in {path.name}, got dtype {x.dtype}")
    if x.shape[0] != n:
        raise ValueError(f"{what}: expected {n} rows in {path.name} (one per id in {ids_name}), got {x.shape[0]}")
    if not np.isfinite(x).all():
        raise ValueError(f"{what}: expected finite values in {path.name}, found {int((~np.isfinite(x)).sum())} NaN/inf")
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def _annotations(path: Path) -> tuple[dict[int, str], list[tuple[int, int, str]]]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise ValueError(f"annotations: {path} is not valid JSON ({exc})") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"annotations: {path} is not UTF-8 text, as JSON files are ({exc}); "
                         "re-save it as UTF-8") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations"), list):
        raise ValueError(f"annotations: expected a JSON object with lists 'images' and 'annotations' "
                         f"(COCO's caption format) in {path.name}, got keys "
                         f"{sorted(data) if isinstance(data, dict) else type(data).__name__}")
    images: dict[int, str] = {}
    for i, im in enumerate(data["images"]):
        if not isinstance(im, dict) or not isinstance(im.get("id"), int) or not isinstance(im.get("file_name"), str):
            raise ValueError(f"annotations: images[{i}] in {path.name}: expected an object with an integer 'id' "
                             f"and a string 'file_name', got {im!r}")
        if im["id"] in images:
            raise ValueError(f"annotations: image id {im['id']} occurs more than once in 'images' of {path.name}")
        images[im["id"]] = im["file_name"]
    anns: list[tuple[int, int, str]] = []
    seen: set[int] = set()
    for i, a in enumerate(data["annotations"]):
        if not isinstance(a, dict) or not isinstance(a.get("id"), int) or not isinstance(a.get("image_id"), int) \
                or not isinstance(a.get("caption"), str):
            raise ValueError(f"annotations: annotations[{i}] in {path.name}: expected an object with integer 'id' "
                             f"and 'image_id' and a string 'caption', got {a!r}")
        if a["id"] in seen:
            raise ValueError(f"annotations: annotation id {a['id']} occurs more than once in {path.name}")
        if a["image_id"] not in images:
            raise ValueError(f"annotations: annotation {a['id']} refers to image id {a['image_id']}, "
                             f"which is not in 'images' of {path.name}")
        seen.add(a["id"])
        anns.append((a["id"], a["image_id"], a["caption"].strip()))
    return images, anns


def load_coco_captions(
    folder: str | Path,
    annotations: str = "captions.json",
    image_features: str = "image_features.npy",
    image_ids: str = "image_ids.npy",
    caption_features: str | None = None,
    caption_ids: str = "caption_ids.npy",
    drop_missing: bool = False,
) -> CocoCaptions:
    """Read a local COCO-captions folder with precomputed features (see the module docstring).

    Args:
        folder: the folder the user prepared.
        annotations, image_features, image_ids: file names inside ``folder``.
        caption_features: file name of optional caption features (``None``: not loaded);
            needs ``caption_ids`` (their annotation ids, one per row).
        drop_missing: drop captions whose image has no feature row instead of raising.

    Returns:
        :class:`CocoCaptions`.

    Raises:
        FileNotFoundError: the folder or a named file does not exist.
        ValueError: malformed or non-UTF-8 JSON, duplicated or unknown ids, wrong shapes or
            dtypes, NaN, an image with features but no caption, an ``.npz`` archive in place of
            an ``.npy`` array.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"folder: expected an existing folder with the COCO files, got {folder}")
    images, anns = _annotations(_file(folder, annotations, "annotations"))
    img_ids = _id_array(_file(folder, image_ids, "image_ids"), "image_ids")
    unknown = [int(i) for i in img_ids if int(i) not in images]
    if unknown:
        raise ValueError(f"image_ids: {len(unknown)} ids of {image_ids} are not images of {annotations} "
                         f"(first: {unknown[0]})")
    img_x = _features(_file(folder, image_features, "image_features"), "image_features", len(img_ids), image_ids)
    row_of = {int(i): r for r, i in enumerate(img_ids)}

    if caption_features is not None:
        cap_ids = _id_array(_file(folder, caption_ids, "caption_ids"), "caption_ids")
        by_id = {a[0]: a for a in anns}
        missing = [int(i) for i in cap_ids if int(i) not in by_id]
        if missing:
            raise ValueError(f"caption_ids: {len(missing)} ids of {caption_ids} are not annotations of "
                             f"{annotations} (first: {missing[0]})")
        anns = [by_id[int(i)] for i in cap_ids]
        cap_x = _features(_file(folder, caption_features, "caption_features"), "caption_features",
                          len(cap_ids), caption_ids)
    else:
        cap_x = None

    keep = [j for j, a in enumerate(anns) if a[1] in row_of]
    if len(keep) < len(anns):
        if not drop_missing:
            first = next(a for a in anns if a[1] not in row_of)
            raise ValueError(f"annotations: {len(anns) - len(keep)} captions describe images without a feature row "
                             f"in {image_ids} (first: caption {first[0]} of image {first[1]}); "
                             "pass drop_missing=True to drop them")
        anns = [anns[j] for j in keep]
        if cap_x is not None:
            cap_x = cap_x[torch.as_tensor(keep, dtype=torch.int64)]
    if not anns:
        raise ValueError(f"annotations: no caption left for the {len(img_ids)} images with features")
    described = {a[1] for a in anns}
    bare = [int(i) for i in img_ids if int(i) not in described]
    if bare:
        # such an image has no positive for image -> text retrieval: recall_at_k would fail later
        raise ValueError(f"annotations: {len(bare)} images with a feature row in {image_ids} have no caption "
                         f"(first: image {bare[0]}, {images[bare[0]]!r}); every image needs at least one "
                         "caption (remove its row from the image ids and features)")
    return CocoCaptions(
        image_ids=torch.from_numpy(img_ids),
        file_names=[images[int(i)] for i in img_ids],
        image_features=img_x,
        captions=[a[2] for a in anns],
        caption_ids=torch.tensor([a[0] for a in anns], dtype=torch.int64),
        caption_image=torch.tensor([row_of[a[1]] for a in anns], dtype=torch.int64),
        caption_features=cap_x,
    )
