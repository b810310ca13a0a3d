"""Image-caption annotations (COCO captions, LAVIS / BLIP JSON) and their dataset."""
import os.path as osp
from collections import OrderedDict
from typing import List

from mmengine.dataset import BaseDataset

from mmmim.registry import DATASETS
from mmmim.utils import load_json


def _entry_error(ann_file: str, where: str, what: str) -> ValueError:
    return ValueError(f'{ann_file}: {where}: {what}')


def _load_coco(ann_file: str, ann: dict) -> List[dict]:
    """COCO captions: ``images`` (id, file_name[, attributes]) and ``annotations``
    (image_id, caption)."""
    for key in ('images', 'annotations'):
        if not isinstance(ann.get(key), list):
            raise _entry_error(ann_file, 'top level', f'expected a list under "{key}"')
    images = OrderedDict()
    for i, img in enumerate(ann['images']):
        if not isinstance(img, dict) or 'id' not in img or not isinstance(img.get('file_name'), str):
            raise _entry_error(ann_file, f'images[{i}]', 'needs "id" and a string "file_name"')
        if img['id'] in images:
            raise _entry_error(ann_file, f'images[{i}]', f'image id {img["id"]!r} repeats')
        images[img['id']] = dict(image=img['file_name'], image_id=img['id'], captions=[],
                                 attributes=img.get('attributes'))
    for i, a in enumerate(ann['annotations']):
        if not isinstance(a, dict) or not isinstance(a.get('caption'), str):
            raise _entry_error(ann_file, f'annotations[{i}]', 'needs a string "caption"')
        if a.get('image_id') not in images:
            raise _entry_error(ann_file, f'annotations[{i}]',
                               f'image_id {a.get("image_id")!r} is not in "images"')
        images[a['image_id']]['captions'].append(a['caption'])
    return list(images.values())


def _load_lavis(ann_file: str, ann: list) -> List[dict]:
    """LAVIS / BLIP: a list of ``{"image", "caption" (str or list)[, "image_id"]}``;
    entries of one image are merged, in order of first appearance."""
    images = OrderedDict()
    for i, a in enumerate(ann):
        if not isinstance(a, dict) or not isinstance(a.get('image'), str):
            raise _entry_error(ann_file, f'entry {i}', 'needs a string "image"')
        caption = a.get('caption')
        captions = [caption] if isinstance(caption, str) else caption
        if not isinstance(captions, list) or not captions \
                or not all(isinstance(c, str) for c in captions):
            raise _entry_error(ann_file, f'entry {i}', '"caption" must be a string or a list of strings')
        image_id = a.get('image_id', a['image'])
        entry = images.setdefault(image_id, dict(image=a['image'], image_id=image_id, captions=[],
                                                 attributes=a.get('attributes')))
        if entry['image'] != a['image']:
            raise _entry_error(ann_file, f'entry {i}',
                               f'image_id {image_id!r} names {a["image"]} and {entry["image"]}')
        entry['captions'] += captions
    return list(images.values())


def load_caption_annotations(ann_file: str) -> List[dict]:
    """Read a caption annotation file into one dict per image.

    Accepts COCO captions (``{"images": [...], "annotations": [...]}``) and
    the LAVIS / BLIP list layout (``[{"image", "caption", "image_id"}]``).
    Returns ``[dict(image, image_id, captions, attributes)]``; ``image`` is the
    path as written in the file and ``attributes`` ``None`` where absent.
    A malformed entry raises ``ValueError`` naming the file and the entry.
    """
    ann = load_json(ann_file, 'caption annotation file')
    if isinstance(ann, dict):
        entries = _load_coco(ann_file, ann)
    elif isinstance(ann, list):
        entries = _load_lavis(ann_file, ann)
    else:
        raise _entry_error(ann_file, 'top level', 'expected a COCO captions dict or a LAVIS list')
    for e in entries:
        if not e['captions']:
            raise _entry_error(ann_file, f'image {e["image_id"]!r}', 'has no caption')
    return entries


@DATASETS.register_module()
class CaptionDataset(BaseDataset):
    """Images with captions, from :func:`load_caption_annotations`.

    With ``per_image=False`` (training) a sample is one caption: ``img_path``,
    ``image_id``, ``text``, ``attributes``; with ``per_image=True``
    (retrieval / captioning evaluation) a sample is one image with all its
    captions under ``texts``. Put ``LoadImageOrSkip`` first in the pipeline
    so that a corrupt image is skipped and counted.

    Args:
        ann_file: The annotation JSON, relative to ``data_root``.
        per_image: One sample per image instead of per caption.
        **kwargs: ``data_root``, ``data_prefix=dict(img_path=...)``,
            ``pipeline`` ... of ``BaseDataset``.
    """

    def __init__(self, ann_file: str, per_image: bool = False, **kwargs):
        self.per_image = per_image
        super().__init__(ann_file=ann_file, **kwargs)

    def load_data_list(self) -> List[dict]:
        prefix = self.data_prefix.get('img_path', '')
        data_list = []
        for e in load_caption_annotations(self.ann_file):
            common = dict(img_path=osp.join(prefix, e['image']), image_id=e['image_id'],
                          attributes=e['attributes'])
            if self.per_image:
                data_list.append(dict(common, texts=list(e['captions'])))
            else:
                data_list += [dict(common, text=c) for c in e['captions']]
        return data_list

