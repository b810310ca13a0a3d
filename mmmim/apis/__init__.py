from .inference import init_model, read_image, reconstruct_images
from .knn import knn_classify, topk_accuracy

__all__ = ['init_model', 'read_image', 'reconstruct_images', 'knn_classify', 'topk_accuracy']
