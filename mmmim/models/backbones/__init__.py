from .vit import ARCHS, MAEViT, ViT, init_mae_weights

__all__ = ['ARCHS', 'ViT', 'MAEViT', 'init_mae_weights']
