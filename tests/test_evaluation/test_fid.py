"""FID / IS / precision-recall plumbing with random Inception weights; the Frechet distance
against an independent formula (scipy's matrix square root)."""
import numpy as np
import pytest
import torch
from scipy import linalg

from mmmim.evaluation import (build_inception, evaluate, extract_features, frechet_distance,
                              reference, statistics)
from mmmim.evaluation.fid import main as fid_main


def _scipy_fd(mu1, s1, mu2, s2):
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2)**2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_frechet_distance_equals_the_closed_form():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 16)), rng.normal(0.3, 1.5, size=(150, 16)) @ rng.normal(size=(16, 16))
    fd = frechet_distance(statistics(torch.from_numpy(a)), statistics(torch.from_numpy(b)))
    ref = _scipy_fd(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    assert fd == pytest.approx(ref, rel=1e-6)
    assert frechet_distance(statistics(torch.from_numpy(a)), statistics(torch.from_numpy(a))) \
        == pytest.approx(0.0, abs=1e-6)


@pytest.fixture(scope='module', autouse=True)
def small_inception_input():
    """Inception runs at 96x96 instead of 299x299 here (plumbing only; ~10x cheaper)."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe
    mp = pytest.MonkeyPatch()
    mp.setattr(fe.FeatureExtractorInceptionV3, 'INPUT_IMAGE_SIZE', 96)
    yield
    mp.undo()


@pytest.fixture(scope='module')
def inception_file(tmp_path_factory):
    """torch-fidelity's Inception v3 with random weights, saved as the weights file."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe
    mp = pytest.MonkeyPatch()
    mp.setattr(fe, 'load_state_dict_from_url', lambda *a, **k: {})  # no download
    mp.setattr(fe.FeatureExtractorInceptionV3, 'load_state_dict', lambda self, sd: None)
    torch.manual_seed(0)
    net = fe.FeatureExtractorInceptionV3('inception-v3-compat', ['2048'])
    mp.undo()
    path = str(tmp_path_factory.mktemp('inception') / 'inception.pth')
    torch.save(net.state_dict(), path)
    return path


def _images(seed, n=6, side=32):
    return np.random.default_rng(seed).integers(0, 256, size=(n, side, side, 3), dtype=np.uint8)


def test_scores_from_an_adm_npz_and_a_folder(inception_file, tmp_path):
    from PIL import Image
    extractor = build_inception(inception_file)
    real, fake = _images(1), _images(2)
    f_real = extract_features(extractor, real)
    f_fake = extract_features(extractor, fake)
    assert f_real['2048'].shape == (6, 2048) and f_real['logits_unbiased'].shape == (6, 1008)
    # an ADM-style reference: mu / sigma computed independently, and the images
    feats = f_real['2048'].numpy()
    ref_npz = str(tmp_path / 'ref.npz')
    np.savez(ref_npz, arr_0=real, mu=feats.mean(0), sigma=np.cov(feats, rowvar=False))
    ref = reference(ref_npz, extractor)
    scores = evaluate(fake, ref, extractor)
    g = f_fake['2048'].numpy()
    expected = _scipy_fd(g.mean(0), np.cov(g, rowvar=False), feats.mean(0),
                         np.cov(feats, rowvar=False))
    assert scores['fid'] == pytest.approx(expected, rel=1e-4, abs=1e-4)
    assert scores['inception_score'] >= 1.0 - 1e-6  # exp(KL) of a distribution to its mean
    assert 0.0 <= scores['precision'] <= 1.0 and 0.0 <= scores['recall'] <= 1.0
    # an image folder gives the same reference statistics
    folder = tmp_path / 'real'
    folder.mkdir()
    for i, img in enumerate(real):
        Image.fromarray(img).save(folder / f'{i}.png')
    ref_dir = reference(str(folder), extractor)
    assert np.allclose(ref_dir['mu'], ref['mu'], atol=1e-6)
    # the command line, on an ADM sample file
    samples = str(tmp_path / 'samples.npz')
    np.savez(samples, arr_0=fake)
    cli = fid_main([samples, str(folder), '--inception', inception_file])
    assert cli['fid'] == pytest.approx(scores['fid'], rel=1e-4, abs=1e-4)


def test_bad_inputs_are_clear_errors(inception_file, tmp_path):
    with pytest.raises(FileNotFoundError):
        build_inception(str(tmp_path / 'missing.pth'))
    torch.save({'w': torch.zeros(1)}, str(tmp_path / 'other.pth'))
    with pytest.raises(KeyError, match='Inception'):
        build_inception(str(tmp_path / 'other.pth'))
    np.savez(str(tmp_path / 'empty.npz'), foo=np.zeros(1))
    with pytest.raises(KeyError, match='mu / sigma'):
        reference(str(tmp_path / 'empty.npz'))
    from mmmim.evaluation.fid import read_images_npz
    with pytest.raises(KeyError, match='arr_0'):
        read_images_npz(str(tmp_path / 'empty.npz'))
    np.savez(str(tmp_path / 'float.npz'), arr_0=np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match='uint8'):
        read_images_npz(str(tmp_path / 'float.npz'))
