from .vit import ARCHS, BEiTViT, CAEViT, MAEViT, ViT, init_mae_weights

__all__ = ['ARCHS', 'ViT', 'MAEViT', 'BEiTViT', 'CAEViT', 'init_mae_weights']
