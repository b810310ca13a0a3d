"""The official BLIP-2 / InstructBLIP recipes as configs (numbers of the LAVIS yamls and the
papers, written out here), and the FSDP set-up that the CPU cannot run.

torch's FSDP refuses CPU devices ("FSDP needs a non-CPU accelerator device"), so the FSDP
recipe is checked by its config and its wrap policy; the FlexibleRunner path itself trains
on the CPU with DDPStrategy (tests/test_tools/test_blip2_demos.py).
"""
import os.path as osp

import pytest
from mmengine.config import Config

from ..conftest import REPO


def cfg(name):
    return Config.fromfile(osp.join(REPO, 'configs', name))


def test_stage1_recipe_is_lavis_pretrain_stage1():
    c = cfg('blip2/blip2-stage1_eva-g-p14_16xb100-amp-coslr-10e_coco-vg-224.py')
    m = c.model
    assert m.type == 'BLIP2' and m.embed_dim == 256 and m.max_txt_len == 32
    assert m.visual_encoder.arch == 'eva-g' and m.visual_encoder.patch_size == 14
    assert m.visual_encoder.img_size == 224 and m.vit_precision == 'fp16'
    assert m.qformer.num_query_tokens == 32 and m.qformer.cross_attention_freq == 2
    assert c.train_dataloader.batch_size == 100  # batch_size_train
    assert c.optim_wrapper.optimizer.lr == 1e-4 and c.optim_wrapper.optimizer.weight_decay == 0.05
    warmup, cosine = c.param_scheduler
    assert warmup.end == 5000 and warmup.start_factor * 1e-4 == pytest.approx(1e-6)  # warmup_lr
    assert cosine.eta_min == 1e-5 and c.train_cfg.max_epochs == 10


@pytest.mark.parametrize('llm, folder', [('opt2.7b', 'opt-2.7b'), ('opt6.7b', 'opt-6.7b'),
                                         ('flant5xl', 'flan-t5-xl'), ('flant5xxl', 'flan-t5-xxl')])
def test_stage2_recipes(llm, folder):
    c = cfg(f'blip2/blip2-stage2_eva-g-p14-{llm}_16xb64-amp-coslr-10e_coco-vg-224.py')
    assert c.model.llm.path.endswith(folder) and c.model.prompt == ''
    assert c.model.llm.dtype == ('bf16' if 't5' in llm else 'fp16')  # LAVIS: fp16 OPT, bf16 T5
    assert c.train_dataloader.batch_size == 64 and c.param_scheduler[0].end == 2000


@pytest.mark.parametrize('llm, batch', [('flant5xl', 12), ('flant5xxl', 4), ('vicuna7b', 8),
                                        ('vicuna13b', 4)])
def test_instructblip_recipes(llm, batch):
    c = cfg(f'instructblip/instructblip_eva-g-p14-{llm}_16xb{batch}-bf16-60ki_held-in-224.py')
    m = c.model
    assert m.type == 'InstructBLIP' and m.max_txt_len == 128 and m.max_output_txt_len == 256
    assert m.qformer_max_txt_len == 128
    assert 16 * batch == {'flant5xl': 192, 'vicuna7b': 128}.get(llm, 64)  # 3B / 7B / 11-13B
    assert c.optim_wrapper.optimizer.lr == 1e-5 and c.train_cfg.max_iters == 60000
    assert c.param_scheduler[0].end == 1000 and c.param_scheduler[1].eta_min == 0.0
    assert 'Question: {} Short answer:' in m.prompt.vqa and m.prompt.caption[0].startswith('A short')


def test_fsdp_recipe_and_wrap_policy():
    c = cfg('blip2/blip2-stage2_eva-g-p14-opt6.7b_16xb64-bf16-fsdp-coslr-10e_coco-vg-224.py')
    assert c.runner_type == 'FlexibleRunner' and c.strategy.type == 'FSDPStrategy'
    assert c.strategy.model_wrapper.use_orig_params  # frozen and trained parameters mixed
    assert c.strategy.model_wrapper.auto_wrap_policy == 'transformer_block_wrap_policy'
    from mmengine.registry import FUNCTIONS
    from transformers import OPTConfig, OPTForCausalLM
    import mmmim.engine  # noqa: F401  (registers the policy)
    from mmmim.models.backbones.vit import ViT
    policy = FUNCTIONS.get('transformer_block_wrap_policy')
    opt = OPTForCausalLM(OPTConfig(hidden_size=16, num_hidden_layers=2, ffn_dim=32,
                                   num_attention_heads=2, vocab_size=32))
    vit = ViT(arch=dict(embed_dim=16, depth=3, num_heads=2), img_size=16, patch_size=8)
    units = [m for m in list(opt.modules()) + list(vit.modules()) if policy(m, False, 0)]
    assert units == list(opt.model.decoder.layers) + list(vit.blocks)
    assert policy(opt, True, 0)  # descends everywhere


def test_coco_retrieval_eval_is_lavis_ret_coco_eval():
    """lavis/projects/blip2/eval/ret_coco_eval.yaml + models/blip2/blip2_coco.yaml."""
    c = cfg('blip2/blip2-retrieval_eva-g-p14_coco-364.py')
    m = c.model
    assert m.type == 'BLIP2' and m.get('llm') is None and m.embed_dim == 256
    assert m.visual_encoder.img_size == 364 and m.vit_precision == 'fp32'
    assert m.max_txt_len == 35 and m.qformer.num_query_tokens == 32
    assert c.test_cfg.type == 'RetrievalTestLoop' and c.test_cfg.k_test == 128
    assert c.test_evaluator.type == 'RetrievalRecall' and c.test_dataloader.batch_size == 32
    assert c.test_dataloader.dataset.per_image
    assert c.test_dataloader.dataset.ann_file.endswith('coco_karpathy_test.json')
    resize = c.test_dataloader.dataset.pipeline[1]
    assert resize.scale == (364, 364) and resize.interpolation == 'bicubic'


def test_instructblip_eval_prompts_are_lavis():
    """lavis/projects/instructblip/caption_coco_*_eval_*.yaml and qa_okvqa_*_eval.yaml."""
    c = cfg('instructblip/instructblip_eva-g-p14-flant5xl_16xb12-bf16-60ki_held-in-224.py')
    assert c.model.eval_prompt == dict(vqa='Question: {} Short Answer:',
                                       caption='A short image caption.')
    assert len(c.model.prompt.caption) == 13 and len(c.model.prompt.vqa) == 10
