from .inference import init_model, read_image, reconstruct_images

__all__ = ['init_model', 'read_image', 'reconstruct_images']
