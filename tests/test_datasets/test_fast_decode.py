"""RandomResizedCropFromFile: the crops of RandomResizedCrop, the pixels of a full decode."""
import io
import logging
import math
import os

import cv2
import numpy as np
import pytest
from mmcv.transforms import RandomFlip
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope
from mmpretrain.datasets.transforms import RandomResizedCrop
from PIL import Image
from scipy import stats

from mmmim.datasets import LoadImageOrSkip, RandomResizedCropFromFile
from mmmim.datasets.demo import _render_photo
from mmmim.datasets.fast_decode import decode_factor, jpeg_size
from mmmim.registry import DATASETS

from ..conftest import REPO


def write_photo(path, size, seed=0, exif_orientation=None, **save):
    """A photograph-like JPEG of ``size`` (h, w) at quality 90; returns the BGR pixels."""
    img = _render_photo('disc', size, np.random.default_rng(seed))
    pil = Image.fromarray(img[..., ::-1])
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        save['exif'] = exif.tobytes()
    pil.save(path, quality=90, **save)
    return img


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255 ** 2 / mse)


def test_jpeg_size_reads_the_header(tmp_path):
    write_photo(tmp_path / 'a.jpg', (75, 100))
    write_photo(tmp_path / 'p.jpg', (75, 100), progressive=True)  # SOF2
    write_photo(tmp_path / 'r.jpg', (75, 100), exif_orientation=6)  # shown rotated by 90 degrees
    write_photo(tmp_path / 'f.jpg', (75, 100), exif_orientation=3)
    data = {p: (tmp_path / p).read_bytes() for p in ('a.jpg', 'p.jpg', 'r.jpg', 'f.jpg')}
    assert jpeg_size(data['a.jpg']) == jpeg_size(data['p.jpg']) == (75, 100)
    assert jpeg_size(data['r.jpg']) == (100, 75) and jpeg_size(data['f.jpg']) == (75, 100)
    for name, d in data.items():  # as the decoder shows it
        assert jpeg_size(d) == cv2.imdecode(np.frombuffer(d, np.uint8), cv2.IMREAD_COLOR).shape[:2]
    png = io.BytesIO()
    Image.new('RGB', (8, 8)).save(png, 'PNG')
    for bad in (png.getvalue(), b'', b'\xff\xd8', data['a.jpg'][:20], b'\xff\xd8 not a jpeg'):
        assert jpeg_size(bad) is None


def test_decode_factor_keeps_the_output_size_in_the_crop():
    assert decode_factor((375, 500), (224, 224)) == 1
    assert decode_factor((448, 448), (224, 224)) == 2
    assert decode_factor((447, 900), (224, 224)) == 1
    assert decode_factor((900, 1800), (224, 224)) == 4
    assert decode_factor((1792, 1792), (224, 224)) == 8
    assert decode_factor((1792, 1792), (224, 224), max_factor=2) == 2


def reference_boxes(shape, n, seed, **crop):
    """(top, left, h, w) of mmpretrain's RandomResizedCrop, n draws."""
    rrc = RandomResizedCrop(**crop)
    np.random.seed(seed)
    return np.array([rrc.rand_crop_params(np.empty(shape + (0, ), np.uint8)) for _ in range(n)])


def fast_boxes(path, n, seed, **crop):
    """(top, left, h, w), decode factors and flips of the fast path, n draws."""
    t = RandomResizedCropFromFile(**crop)
    np.random.seed(seed)
    boxes, factors, flips = [], [], []
    for _ in range(n):
        out = t({'img_path': str(path)})
        x1, y1, x2, y2 = out['crop_bbox']
        boxes.append((y1, x1, y2 - y1, x2 - x1))
        factors.append(out['decode_factor'])
        flips.append(out['flip'])
        assert out['img'].shape == (*t.scale, 3) and out['img'].dtype == np.uint8
    return np.array(boxes), np.array(factors), np.array(flips)


def edges(boxes):
    """top, left, bottom, right of (top, left, h, w)."""
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], 1)


def box_stats(boxes, shape):
    """Scale (area fraction), log aspect ratio, centre x and y (fractions) of (top, left, h, w)."""
    top, left, h, w = boxes.T.astype(np.float64)
    return dict(scale=h * w / (shape[0] * shape[1]), log_ratio=np.log(w / h),
                cx=(left + w / 2) / shape[1], cy=(top + h / 2) / shape[0])


def test_full_size_decodes_draw_exactly_the_reference_crops_and_flips(tmp_path):
    """Without reduced decodes, a seed gives the draws of RandomResizedCrop and RandomFlip."""
    write_photo(tmp_path / 'a.jpg', (90, 120))
    crop = dict(scale=64, crop_ratio_range=(0.2, 1.0))
    fast, factors, flips = fast_boxes(tmp_path / 'a.jpg', 300, 3, flip_prob=0.5, **crop)
    rrc, flip = RandomResizedCrop(**crop), RandomFlip(prob=0.5)
    np.random.seed(3)
    ref_boxes, ref_flips = [], []
    for _ in range(300):
        ref_boxes.append(rrc.rand_crop_params(np.empty((90, 120, 0), np.uint8)))
        ref_flips.append(flip._choose_direction() is not None)
    assert (factors == 1).all()
    np.testing.assert_array_equal(fast, np.array(ref_boxes))
    np.testing.assert_array_equal(flips, ref_flips)
    assert abs(flips.mean() - 0.5) < 4 * math.sqrt(0.25 / len(flips))


def test_crop_boxes_follow_the_reference_distribution(tmp_path):
    """Reduced decodes (factors 2 and 4) move crop edges by at most factor / 2; a KS test on
    scale, aspect ratio and centre against independent reference draws."""
    shape, n = (240, 320), 2000
    write_photo(tmp_path / 'a.jpg', shape)
    crop = dict(scale=32, crop_ratio_range=(0.2, 1.0))
    fast, factors, _ = fast_boxes(tmp_path / 'a.jpg', n, 0, **crop)
    assert {2, 4} <= set(factors.tolist())
    same_seed = reference_boxes(shape, n, 0, **crop)  # the fast path draws these, then snaps them
    assert (np.abs(edges(fast) - edges(same_seed)) <= (factors // 2)[:, None]).all()
    independent = box_stats(reference_boxes(shape, n, 1, **crop), shape)
    for key, values in box_stats(fast, shape).items():
        assert stats.ks_2samp(values, independent[key]).pvalue > 1e-3, key


def test_pixels_match_a_full_decode_with_the_same_crop_and_resize(tmp_path):
    """PSNR >= 30 dB against full decode + same crop + same resize, and against PIL bicubic."""
    np.random.seed(0)
    same, pil, factors = [], [], []
    for seed, (size, scale) in enumerate([((900, 1200), 224), ((600, 800), 112), ((375, 500), 224)]):
        t = RandomResizedCropFromFile(scale=scale, crop_ratio_range=(0.2, 1.0), interpolation='bicubic',
                                      flip_prob=0.5)
        path = str(tmp_path / f'{seed}.jpg')
        write_photo(path, size, seed)
        full = cv2.imread(path, cv2.IMREAD_COLOR)
        for _ in range(12):
            out = t({'img_path': path})
            x1, y1, x2, y2 = out['crop_bbox']
            crop = full[y1:y2, x1:x2]
            refs = [t._resize(crop),  # the same resize
                    np.asarray(Image.fromarray(crop).resize((scale, scale), Image.BICUBIC))]
            if out['flip']:
                refs = [r[:, ::-1] for r in refs]
            same.append(psnr(out['img'], refs[0]))
            pil.append(psnr(out['img'], refs[1]))
            factors.append(out['decode_factor'])
    assert {1, 2, 4} <= set(factors)
    assert min(same) >= 30 and min(pil) >= 30, (min(same), min(pil))
    at_full_size = [p for p, f in zip(same, factors) if f == 1]
    assert all(math.isinf(p) for p in at_full_size)  # nothing is approximated there


def test_other_inputs_fall_back_to_a_full_decode(tmp_path):
    """PNG, grayscale and EXIF-rotated files give the reference pipeline's crop, same seed."""
    img = write_photo(tmp_path / 'r.jpg', (60, 80), exif_orientation=6)
    cv2.imwrite(str(tmp_path / 'a.png'), img)
    cv2.imwrite(str(tmp_path / 'g.jpg'), img[..., 0])
    crop = dict(scale=48, crop_ratio_range=(0.2, 1.0), interpolation='bicubic')
    fast = RandomResizedCropFromFile(flip_prob=0.5, **crop)
    reference = [LoadImageOrSkip(), RandomResizedCrop(backend='pillow', **crop), RandomFlip(prob=0.5)]
    for name in ('r.jpg', 'a.png', 'g.jpg'):
        np.random.seed(5)
        out = fast({'img_path': str(tmp_path / name)})
        np.random.seed(5)
        ref = {'img_path': str(tmp_path / name)}
        for step in reference:
            ref = step(ref)
        assert out['ori_shape'] == ref['ori_shape'] and out['flip'] == ref['flip']
        assert psnr(out['img'], ref['img']) > 45, name  # torch's bicubic is PIL's
    lanczos = RandomResizedCropFromFile(scale=48, interpolation='lanczos')
    assert lanczos({'img_path': str(tmp_path / 'r.jpg')})['img'].shape == (48, 48, 3)


BAD_FILES = {
    'truncated.jpg': lambda good: good[:len(good) // 2],
    'header_only.jpg': lambda good: good[:600],
    'no_end_marker.jpg': lambda good: good[:-2],
    'empty.jpg': lambda good: b'',
    'garbage.jpg': lambda good: bytes(np.random.default_rng(0).integers(0, 256, 4000, np.uint8)),
    'not_a_jpeg.jpg': lambda good: b'\xff\xd8 this is not a jpeg',
    'corrupt_entropy_data.jpg':
        lambda good: good[:len(good) // 2] + b'\x00' * 500 + good[len(good) // 2 + 500:],
}


def test_bad_files_are_skipped_and_counted_as_by_load_image_or_skip(tmp_path):
    good = {}
    for size in ((90, 120), (1000, 1400)):  # the second decodes at 1/2 or 1/4
        path = tmp_path / f'good_{size[0]}.jpg'
        write_photo(path, size)
        good[size] = path.read_bytes()
    MMLogger.get_instance('test_fast_skip', log_level='WARNING').addHandler(
        logging.FileHandler(tmp_path / 'log'))
    fast = RandomResizedCropFromFile(scale=32, crop_ratio_range=(0.2, 1.0))
    reference = LoadImageOrSkip()
    for size, data in good.items():
        for name, make in {**BAD_FILES, 'missing.jpg': None}.items():
            path = str(tmp_path / f'{size[0]}_{name}')
            if make is not None:
                with open(path, 'wb') as f:
                    f.write(make(data))
            before = LoadImageOrSkip.num_skipped()
            ref_skipped = reference({'img_path': path}) is None
            assert LoadImageOrSkip.num_skipped() - before == int(ref_skipped)
            fast_out = fast({'img_path': path})
            assert (fast_out is None) == ref_skipped, name
            assert LoadImageOrSkip.num_skipped() - before == 2 * int(ref_skipped), name
            if not ref_skipped:
                assert fast_out['img'].shape == (32, 32, 3)
    log = (tmp_path / 'log').read_text()
    assert f'skipped image {tmp_path / "1000_truncated.jpg"}' in log
    assert 'so far on this rank' in log


def test_a_dataset_draws_another_image_in_place_of_a_skipped_one(tmp_path):
    os.makedirs(tmp_path / 'train' / 'a')
    for i in range(4):
        write_photo(tmp_path / 'train' / 'a' / f'{i}.jpg', (60, 80), seed=i)
    (tmp_path / 'train' / 'a' / '1.jpg').write_bytes(b'\xff\xd8 this is not a jpeg')
    with DefaultScope.overwrite_default_scope('mmmim'):
        dataset = DATASETS.build(dict(
            type='CustomDataset', data_root=str(tmp_path), data_prefix='train', with_label=False,
            pipeline=[dict(type='RandomResizedCropFromFile', scale=32), dict(type='PackInputs')]))
    index = [i for i in range(4) if dataset.get_data_info(i)['img_path'].endswith('1.jpg')][0]
    before = LoadImageOrSkip.num_skipped()
    assert dataset[index]['inputs'].shape == (3, 32, 32)
    assert LoadImageOrSkip.num_skipped() > before


@pytest.mark.parametrize('name', ['mae_vit-base-p16_8xb512-amp-coslr-400e_in1k.py',
                                  'mae_vit-large-p16_8xb512-amp-coslr-1600e_in1k.py',
                                  'mae_vit-huge-p14_8xb512-amp-coslr-1600e_in1k.py'])
def test_mae_imagenet_configs_use_the_fast_path_with_mmpretrains_parameters(name):
    cfg = Config.fromfile(os.path.join(REPO, 'configs', 'mae', name))
    fast = cfg.train_dataloader.dataset.pipeline[0]
    ref = {t['type']: t for t in cfg.mmpretrain_train_pipeline}
    assert fast['type'] == 'RandomResizedCropFromFile'
    assert fast['scale'] == ref['RandomResizedCrop']['scale'] == 224
    assert fast['crop_ratio_range'] == ref['RandomResizedCrop']['crop_ratio_range'] == (0.2, 1.0)
    assert fast['interpolation'] == ref['RandomResizedCrop']['interpolation'] == 'bicubic'
    assert fast['flip_prob'] == ref['RandomFlip']['prob'] == 0.5
    assert 'LoadImageOrSkip' in ref  # the old pipeline, one config line away
