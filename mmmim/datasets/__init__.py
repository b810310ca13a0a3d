from .demo import CLASSES as DEMO_CLASSES
from .demo import make_demo_images
from .transforms import LoadImageOrSkip

__all__ = ['DEMO_CLASSES', 'make_demo_images', 'LoadImageOrSkip']
