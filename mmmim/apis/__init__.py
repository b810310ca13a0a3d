from .inference import build_model_of, init_model, read_image, reconstruct_images
from .knn import knn_classify, topk_accuracy

__all__ = ['build_model_of', 'init_model', 'read_image', 'reconstruct_images', 'knn_classify', 'topk_accuracy']
