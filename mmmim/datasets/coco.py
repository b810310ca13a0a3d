"""COCO instance annotations for mmdet, read with checks that name the file at fault.

Needs mmdet, so ``import mmmim`` does not import it; mmdet configs name the
class by its module path, ``type='mmmim.datasets.coco.CheckedCocoDataset'``.
"""
from typing import List

from mmdet.datasets import CocoDataset
from mmdet.datasets.api_wrappers import COCO

from mmmim.registry import DATASETS


def _few(items: list, n: int = 5) -> str:
    return ', '.join(map(str, items[:n])) + (f' ... ({len(items)} in all)' if len(items) > n else '')


def check_coco_annotations(dataset: dict, path: str) -> None:
    """Raise ``ValueError`` naming ``path`` and the key at fault for a COCO dict that
    mmdet would read silently wrong: no images, no categories, annotations of
    an unknown ``category_id`` (mmdet drops them) or of an unknown ``image_id``.
    """
    for key in ('images', 'categories'):
        if not isinstance(dataset.get(key), list):
            raise ValueError(f'{path}: no "{key}" list; not a COCO instances file')
    if not dataset['images']:
        raise ValueError(f'{path}: "images" is empty; there is nothing to train or test on')
    if not dataset['categories']:
        raise ValueError(f'{path}: "categories" is empty')
    cat_ids = {c['id'] for c in dataset['categories']}
    img_ids = {img['id'] for img in dataset['images']}
    anns = dataset.get('annotations', [])
    bad_cat = [f'annotation {a.get("id")} (image {a["image_id"]}): category_id {a["category_id"]}'
               for a in anns if a['category_id'] not in cat_ids]
    if bad_cat:
        raise ValueError(f'{path}: "annotations" use category ids that "categories" does not '
                         f'define (known: {sorted(cat_ids)}): {_few(bad_cat)}')
    bad_img = [f'annotation {a.get("id")}: image_id {a["image_id"]}'
               for a in anns if a['image_id'] not in img_ids]
    if bad_img:
        raise ValueError(f'{path}: "annotations" refer to images that "images" does not list: '
                         f'{_few(bad_img)}')


class CheckedCOCO(COCO):
    """mmdet's COCO reader, checking the file (:func:`check_coco_annotations`) and
    that every class the dataset asks for is one of its categories."""

    def __init__(self, annotation_file: str):
        self.annotation_file = annotation_file
        super().__init__(annotation_file)
        check_coco_annotations(self.dataset, annotation_file)

    def get_cat_ids(self, cat_names=[], sup_names=[], cat_ids=[]):  # noqa: B006 (mmdet's signature)
        names = [c['name'] for c in self.dataset['categories']]
        unknown = [n for n in cat_names if n not in names]
        if unknown:
            raise ValueError(f'{self.annotation_file}: classes {unknown} of the dataset metainfo are '
                             f'not among its "categories" {names}; set metainfo.classes to match')
        return super().get_cat_ids(cat_names, sup_names, cat_ids)


@DATASETS.register_module()
class CheckedCocoDataset(CocoDataset):
    """mmdet's ``CocoDataset`` that fails with the file and key at fault instead
    of training or testing on silently dropped annotations.

    Besides :class:`CheckedCOCO`'s checks, a training set whose images are
    all removed by ``filter_cfg`` (no annotation of the classes) is an error.
    """

    COCOAPI = CheckedCOCO

    def filter_data(self) -> List[dict]:
        kept = super().filter_data()
        if self.data_list and not kept:
            raise ValueError(f'{self.ann_file}: filter_cfg {self.filter_cfg} removed all '
                             f'{len(self.data_list)} images; none has annotations of the classes '
                             f'{self.metainfo["classes"]}')
        return kept
