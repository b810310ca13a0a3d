from .vit import ARCHS, BEiTViT, MAEViT, ViT, init_mae_weights

__all__ = ['ARCHS', 'ViT', 'MAEViT', 'BEiTViT', 'init_mae_weights']
