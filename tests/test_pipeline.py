"The DVC pipeline: params checking before any work, and a short end-to-end `dvc repro` in a scratch clone."
import json, shutil, sys
from pathlib import Path
import pytest, yaml
from conftest import ROOT, run

BIN = Path(sys.executable).parent

def _bad_params(tmp_path, **section):
    p = yaml.safe_load((ROOT/'params.yaml').read_text())
    p['train'].update(section)
    f = tmp_path/'params.yaml'; f.write_text(yaml.safe_dump(p))
    return f

@pytest.mark.parametrize('section,msg', [(dict(epochs=3), "train.epochs: unknown key"),
                                         (dict(overrides=3), "train.overrides: expected dict like {}, got int 3"),
                                         (dict(recipe=['demo']), "train.recipe: expected str like 'demo', got list")])
def test_bad_params_stop_stage_before_work(tmp_path, section, msg):
    r = run(BIN/'hat-nb', 'stage', 'train', '--params', _bad_params(tmp_path, **section), check=False)
    assert r.returncode == 2 and msg in r.stderr, r.stderr
    assert not (tmp_path/'models').exists()

def test_bad_override_key_named(tmp_path):
    r = run(BIN/'hat-nb', 'stage', 'train', '--params', _bad_params(tmp_path, overrides={'epoch': 2}, out_dir=str(tmp_path/'m')), check=False)
    assert r.returncode != 0 and "unknown training setting 'epoch'" in r.stdout + r.stderr
    assert not (tmp_path/'m').exists()

@pytest.mark.slow
def test_dvc_repro_end_to_end(tmp_path, emoji_dir):
    "A shortened demo run through every stage in a fresh clone; a second repro does nothing."
    repo = tmp_path/'repo'
    run('git', 'clone', '-q', ROOT, repo)
    shutil.copytree(emoji_dir, repo/'data/emoji')
    p = yaml.safe_load((repo/'params.yaml').read_text())
    p['train']['overrides'] = dict(epochs=1, max_steps_per_epoch=2, batch_size=16, freeze_txt_epochs=0)
    (repo/'params.yaml').write_text(yaml.safe_dump(p, sort_keys=False))
    env = dict(__import__('os').environ, PATH=f"{BIN}:{__import__('os').environ['PATH']}")
    run(BIN/'dvc', 'repro', cwd=repo, env=env, timeout=1200)
    test = json.loads((repo/'metrics/test.json').read_text())
    assert test['n_images'] == 450 and test['n_captions'] == 605 and {'i2t', 't2i', 'both'} <= set(test)
    for f in ('figures/curves.png', 'figures/levels.png', 'figures/retrievals.png', 'attention.png'): assert (repo/'reports'/f).stat().st_size > 10_000, f
    assert 'HAT (this run, i2t)' in (repo/'reports/results.md').read_text()
    figs, curve = json.loads((repo/'reports/figures/figures.json').read_text()), json.loads((repo/'metrics/train_curve.json').read_text())
    rk, loss, val = figs['curves.png']                                     # each figure is what its name says, from its data
    assert (rk['title'], rk['xlabel']) == ('Recall@K on the test split', 'k') and rk['lines'][0]['x'][:3] == [1, 5, 10]
    assert (loss['title'], loss['xlabel'], loss['ylabel']) == ('Training loss', 'epoch', 'train_loss')
    assert loss['lines'][0]['y'] == [c['train_loss'] for c in curve] and loss['lines'][0]['x'] == [c['epoch'] for c in curve]
    assert all(t.lstrip('−-').isdigit() for t in loss['xticks'] + val['xticks']), loss['xticks']       # whole epochs
    assert val['title'] == 'Validation R@1' and {l['label'] for l in val['lines']} >= {'val_i2t_R1', 'val_t2i_R1'}
    (lv,) = figs['levels.png']
    assert lv['xlabel'] == 'level' and len(lv['bars']) == 6 and min(lv['bars']) != max(lv['bars'])   # 3 levels x (matching, not)
    assert sum(a['images'] for a in figs['retrievals.png']) == 5 * len(json.loads((repo/'reports/eval_details.json').read_text())['examples'])
    again = run(BIN/'dvc', 'repro', cwd=repo, env=env).stdout
    assert 'Data and pipelines are up to date' in again, again
    shown = run(BIN/'dvc', 'metrics', 'show', cwd=repo, env=env).stdout
    assert 'i2t.i2t_R@1' in shown, shown
    status = run('git', 'status', '--porcelain', cwd=repo).stdout.split('\n')
    assert [l for l in status if l.strip() and not l.endswith(('dvc.lock', 'params.yaml'))] == [], status
