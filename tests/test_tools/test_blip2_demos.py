"""The BLIP-2 / InstructBLIP demo configs train in two processes through tools/dist_train.sh.

torchrun + DDP on gloo (CPU), two iterations each on the captioned demo data (16 images per
rank), with the demo WordPiece vocabulary, the demo questions (make_demo_vqa) and a random
tiny OPT saved as a HF folder in place of tools/misc/train_demo_llm.py's. Stage 1 runs first;
its checkpoint starts the stage-2 and InstructBLIP demos, as in docs/blip2.md, and is evaluated
by retrieval through tools/dist_test.sh. The demos that validate (retrieval R@k, captioning
CIDEr, VQA accuracy) print their metric.
"""
import os.path as osp

import pytest

from ..conftest import dist_env, run_tool
from .test_train_tools import losses

STAGE1 = 'configs/blip2/blip2-stage1_vit-demo-p8_1xb32-600i_demo-captions.py'
FROM_STAGE1 = {
    'configs/blip2/blip2-stage2_vit-demo-p8-opt-demo_1xb32-600i_demo-captions.py': 'caption/CIDEr: ',
    'configs/instructblip/instructblip_vit-demo-p8-opt-demo_1xb32-900i_demo-vqa.py': 'vqa/accuracy: ',
    'configs/instructblip/blip2-vqa_vit-demo-p8-opt-demo_1xb32-900i_demo-vqa.py': 'vqa/accuracy: ',
    # FlexibleRunner + DDPStrategy (the FSDP recipe's runner; torch FSDP refuses CPU devices)
    'configs/blip2/blip2-stage2-flexible_vit-demo-p8-opt-demo_1xb32-600i_demo-captions.py':
    'caption/CIDEr: ',
}


@pytest.fixture(scope='module')
def demo_data(demo_captions, demo_wordpiece_vocab, demo_bpe_tokenizer, tmp_path_factory):
    """Captions + demo questions, the vocabulary and a random tiny OPT folder with its tokenizer."""
    from mmmim.datasets import make_demo_vqa
    from mmmim.models.multimodal import FrozenLLM
    make_demo_vqa(demo_captions)
    llm = FrozenLLM(config=dict(type='opt', vocab_size=512, hidden_size=32, num_hidden_layers=1,
                                ffn_dim=64, num_attention_heads=2, word_embed_proj_dim=32,
                                max_position_embeddings=128),
                    tokenizer=demo_bpe_tokenizer,
                    special_tokens=dict(pad_token='<pad>', bos_token='<bos>', eos_token='<eos>'))
    folder = str(tmp_path_factory.mktemp('opt_demo'))
    llm.model.save_pretrained(folder)
    llm.tokenizer.save_pretrained(folder)
    return dict(root=demo_captions, vocab=demo_wordpiece_vocab, llm=folder)


def train(config, work_dir, data, *extra):
    root = data['root']
    opts = [f'model.tokenizer={data["vocab"]}', f'train_dataloader.dataset.data_root={root}',
            'train_dataloader.batch_size=16', 'train_cfg.max_iters=2',
            'default_hooks.checkpoint.interval=2', 'default_hooks.logger.interval=1',
            'log_processor.window_size=1', *extra]
    proc = run_tool(['bash', 'tools/dist_train.sh', config, '2', '--work-dir', str(work_dir),
                     '--cfg-options', *opts], env=dist_env())
    log = proc.stdout + proc.stderr
    assert 'Distributed training: True' in log and 'terminate called' not in log
    assert losses(str(work_dir)).keys() == {1, 2}
    ckpt = open(osp.join(work_dir, 'last_checkpoint')).read().strip()
    assert osp.isfile(ckpt)
    return log, ckpt


@pytest.fixture(scope='module')
def stage1_checkpoint(demo_data, tmp_path_factory):
    log, ckpt = train(STAGE1, tmp_path_factory.mktemp('stage1'), demo_data,
                      'train_cfg.val_interval=2',
                      f'val_dataloader.dataset.data_root={demo_data["root"]}')
    assert 'loss_itc' in log and 'loss_itm' in log and 'loss_itg' in log
    assert 'retrieval/txt_r1: ' in log and 'retrieval/itc_img_r10: ' in log, log[-3000:]
    return ckpt


def test_stage1_demo_trains_in_two_processes(stage1_checkpoint):
    assert stage1_checkpoint.endswith('iter_2.pth')


def test_stage1_retrieval_through_dist_test(demo_data, stage1_checkpoint, tmp_path):
    """tools/dist_test.sh: ITC (max over the queries) + ITM re-ranking, R@k both ways."""
    proc = run_tool(['bash', 'tools/dist_test.sh', STAGE1, stage1_checkpoint, '2', '--work-dir',
                     str(tmp_path), '--cfg-options', f'model.tokenizer={demo_data["vocab"]}',
                     f'test_dataloader.dataset.data_root={demo_data["root"]}'], env=dist_env())
    log = proc.stdout + proc.stderr
    for key in ('txt_r1', 'txt_r5', 'txt_r10', 'img_r1', 'img_r5', 'img_r10', 'itc_txt_r1'):
        assert f'retrieval/{key}: ' in log, log[-3000:]


@pytest.mark.parametrize('config', sorted(FROM_STAGE1))
def test_demo_from_stage1_trains_in_two_processes(config, demo_data, stage1_checkpoint, tmp_path):
    log, _ = train(config, tmp_path, demo_data, f'model.init_cfg.checkpoint={stage1_checkpoint}',
                   f'model.llm.path={demo_data["llm"]}', 'train_cfg.val_interval=2',
                   f'val_dataloader.dataset.data_root={demo_data["root"]}')
    assert 'stage-1 file: llm_proj stays freshly initialised' in log
    assert FROM_STAGE1[config] in log, log[-3000:]
