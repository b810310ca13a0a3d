"""The official BLIP recipes as configs: they build at full size with the official settings."""
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

from ..conftest import REPO


def cfg_of(name):
    return Config.fromfile(osp.join(REPO, 'configs', 'blip', name))


def test_pretrain_recipe_builds_vit_b_and_bert_base(demo_wordpiece_vocab):
    from mmmim.registry import MODELS
    cfg = cfg_of('blip_vit-base-p16_8xb75-20e_14m.py')
    assert cfg.train_dataloader.batch_size == 75 and cfg.optim_wrapper.optimizer.lr == 3e-4
    assert cfg.param_scheduler[0].end == 3000 and cfg.param_scheduler[1].gamma == 0.9
    assert cfg.train_cfg.max_epochs == 20 and cfg.optim_wrapper.optimizer.weight_decay == 0.05
    cfg.model.tokenizer = demo_wordpiece_vocab  # bert-base-uncased is not bundled
    with DefaultScope.overwrite_default_scope('mmmim'):
        model = MODELS.build(cfg.model)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert 85e6 < count(model.visual_encoder) < 87e6  # ViT-B/16 at 224
    assert model.text_encoder.config.vocab_size == 30524 and model.image_queue.shape == (256, 57600)
    assert model.momentum == 0.995 and model.alpha == 0.4
    assert float(model.temp.detach()) == pytest.approx(0.07)
    assert model.itm_head.in_features == 768 and model.vision_proj.out_features == 256
    large = cfg_of('blip_vit-large-p16_8xb75-20e_129m.py')
    assert large.model.vision_encoder.arch == 'large' and large.model.vision_encoder.with_cp
    assert large.optim_wrapper.optimizer.lr == 2e-4


def test_finetune_recipes():
    coco = cfg_of('blip-retrieval_vit-base-p16_8xb32-6e_coco.py')
    flickr = cfg_of('blip-retrieval_vit-base-p16_8xb32-6e_flickr30k.py')
    assert coco.model.negative_all_rank and not flickr.model.negative_all_rank
    assert coco.test_cfg.k_test == 256 and flickr.test_cfg.k_test == 128
    assert coco.optim_wrapper.optimizer.lr == 1e-5 and coco.train_cfg.max_epochs == 6
    assert coco.model.vision_encoder.img_size == 384 and coco.model.vision_encoder.with_cp
    cap = cfg_of('blip-caption_vit-base-p16_8xb32-5e_coco.py')
    assert cap.model.prompt == 'a picture of ' and cap.model.generation == dict(
        num_beams=3, max_length=20, min_length=5)
    assert cap.train_cfg.max_epochs == 5 and cap.test_evaluator.type == 'CaptionMetric'
