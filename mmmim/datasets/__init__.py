from .captions import CaptionDataset, load_caption_annotations
from .data_preprocessor import DALLE_MEAN, DALLE_STD, TwoViewDataPreprocessor
from .demo import CLASSES as DEMO_CLASSES
from .demo import (make_demo_ade20k, make_demo_captions, make_demo_coco, make_demo_images,
                   make_realsize_images)
from .fast_decode import RandomResizedCropFromFile
from .masking import BlockwiseMaskGenerator
from .tokens import TokenDataset, write_token_file
from .transforms import CheckSegMapSize, LoadImageOrSkip, RandomResizedCropTwoViews

__all__ = [
    'DALLE_MEAN', 'DALLE_STD', 'TwoViewDataPreprocessor', 'DEMO_CLASSES', 'make_demo_ade20k', 'make_demo_coco',
    'make_demo_images', 'BlockwiseMaskGenerator', 'LoadImageOrSkip', 'CheckSegMapSize',
    'RandomResizedCropTwoViews', 'TokenDataset', 'write_token_file',
    'make_realsize_images', 'RandomResizedCropFromFile', 'CaptionDataset', 'load_caption_annotations',
    'make_demo_captions'
]
from .vqa import VQADataset, load_vqa_annotations, make_demo_vqa

__all__ += ['VQADataset', 'load_vqa_annotations', 'make_demo_vqa']
