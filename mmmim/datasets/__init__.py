from .demo import CLASSES as DEMO_CLASSES
from .demo import make_demo_ade20k, make_demo_images
from .transforms import CheckSegMapSize, LoadImageOrSkip

__all__ = ['DEMO_CLASSES', 'make_demo_ade20k', 'make_demo_images', 'LoadImageOrSkip', 'CheckSegMapSize']
