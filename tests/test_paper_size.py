"The paper's model at its real size (random-init Swin-B and BERT-base, 224 px) on the road a GPU user walks, on the CPU."
import json, resource, subprocess, sys, time
import pytest
from conftest import ROOT

@pytest.mark.slow
def test_the_paper_model_at_its_real_size_through_train_index_and_search(tmp_path):
    """`hat-nb train --recipe paper_f30k` at the paper's shapes (Swin-B 224 px: 3,136/784/196/49 patches; BERT-base: 12 layers
    of 768; both towers frozen in epoch 1, as the recipe has it) for two steps with its validation, then `hat-nb index` of
    the images and `hat-nb search`: each process under 3 GB, the model saved and read back at its real size."""
    from hat_nb.data import make_fixture
    data = make_fixture(tmp_path/'data', 'flickr', n=9, size=64)            # 3 train, 3 val, 3 test images
    hat = lambda *a: subprocess.run([sys.executable, '-m', 'hat_nb.cli', *map(str, a)], cwd=tmp_path, capture_output=True,
                                    text=True, timeout=300)
    t0 = time.monotonic()
    r = hat('train', '--recipe', 'paper_f30k', '--data', data, '--out', tmp_path/'model', '--set', 'model.img_weights=none',
            '--set', 'model.txt_model=none', '--set', 'epochs=1', '--set', 'batch_size=4', '--set', 'max_steps_per_epoch=2',
            '--set', 'eval_batch_size=4', '--set', 'num_workers=0')
    assert r.returncode == 0, r.stderr[-3000:]
    cfg = json.loads((tmp_path/'model/best/config.json').read_text())
    assert (cfg['img_model'], cfg['img_size'], cfg['txt_levels'], cfg['embed_dim']) == ('swin_base_patch4_window7_224', 224, [4, 10, 12], 768)
    size = sum(p.stat().st_size for p in (tmp_path/'model/best').rglob('*') if p.is_file())
    assert size > 700e6, size                                                # Swin-B + BERT-base, fp32: the real model
    epoch = [json.loads(l) for l in (tmp_path/'model/log.jsonl').read_text().splitlines() if json.loads(l)['kind'] == 'epoch']
    assert len(epoch) == 1 and 0 <= epoch[0]['val_rsum'] <= 600, epoch     # validated on the val split
    r = hat('index', data/'images', '--model', tmp_path/'model/best', '--out', tmp_path/'idx', '--batch-size', '4')
    assert r.returncode == 0, r.stderr[-3000:]
    r = hat('search', tmp_path/'idx', 'Image number 4 caption 0.', '-k', '3', '--json')
    assert r.returncode == 0, r.stderr[-3000:]
    hits = json.loads(r.stdout)
    assert len(hits) == 3 and all(h['path'].endswith('.png') for h in hits), hits
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # the largest of the processes, in bytes
    print(f'train + index + search: {time.monotonic() - t0:.0f} s, peak {peak / 1e9:.2f} GB')
    assert peak < 3e9, peak
