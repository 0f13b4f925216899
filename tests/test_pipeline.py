"The DVC pipeline: params checking before any work, and a short end-to-end `dvc repro` in a scratch clone."
import html, json, os, re, shutil, subprocess, sys
from pathlib import Path
import pytest, yaml
from conftest import ROOT, run

BIN = Path(sys.executable).parent

def _bad_params(tmp_path, catalog=None, **section):
    p = yaml.safe_load((ROOT/'params.yaml').read_text())
    p['train'].update(section); p['catalog']['emoji'].update(catalog or {})
    f = tmp_path/'params.yaml'; f.write_text(yaml.safe_dump(p))
    return f

@pytest.mark.parametrize('section,catalog,msg', [(dict(epochs=3), {}, "train.epochs: unknown key"),
                                                 (dict(overrides=3), {}, "train.overrides: expected dict like {}, got int 3"),
                                                 ({}, dict(recipe=['demo']), "train.recipe: expected str like 'demo', got list"),
                                                 (dict(recipe='demo'), {}, "train.recipe: set per dataset, in catalog.<dataset>.recipe")])
def test_bad_params_stop_stage_before_work(tmp_path, section, catalog, msg):
    r = run(BIN/'hat-nb', 'stage', 'train', 'emoji', '--params', _bad_params(tmp_path, catalog, **section), check=False)
    assert r.returncode == 2 and msg in r.stderr and 'Traceback' not in r.stderr, r.stderr

def test_bad_override_key_named(tmp_path):
    r = run(BIN/'hat-nb', 'stage', 'train', 'emoji', '--params', _bad_params(tmp_path, overrides={'epoch': 2}), check=False)
    assert r.returncode == 2 and "unknown training setting 'epoch'" in r.stderr, r.stderr

def test_architecture_override_checked_with_timm():
    "A `model.img_model` override is the one value checked with timm's registry, still before the stage starts."
    from hat_nb.pipeline import ParamsError, check_recipe_overrides
    with pytest.raises(ParamsError, match=r"train.overrides.model.img_model: HATConfig.img_model must be a timm architecture name .* got 'tiny'"):
        check_recipe_overrides(dict(recipe='demo', overrides={'model.img_model': 'tiny'}), dict(recipe='demo', overrides={}))
    check_recipe_overrides(dict(recipe='demo', overrides={'model.img_model': 'swin_tiny_patch4_window7_224'}), dict(recipe='demo', overrides={}))

def test_missing_dataset_says_how_to_get_it(tmp_path):
    f = _bad_params(tmp_path)
    r = run(BIN/'hat-nb', 'stage', 'prepare', 'flickr30k', '--params', f, check=False)
    assert r.returncode == 2 and "dataset 'flickr30k': no data in data/flickr30k" in r.stderr and 'hat-nb get-data flickr30k' in r.stderr, r.stderr
    assert 'Traceback' not in r.stderr

@pytest.mark.parametrize('stage,section,msg', [
    ('evaluate', dict(batch_size=0), "params.yaml:evaluate.batch_size: must be >= 1, got 0"),
    ('evaluate', dict(split='restval'), "has no 'restval' images (it has test 450, train 3,106, val 230); choose one of those"),
    ('evaluate', dict(device='gpu'), "params.yaml:evaluate.device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'"),
    ('evaluate', dict(amp='fp8'), "params.yaml:evaluate.amp: expected 'none', 'auto', 'bf16' or 'fp16', got 'fp8'"),
    ('report', dict(datasets=[]), "params.yaml:datasets: empty; name at least one dataset of `catalog`")])
def test_stage_values_checked_before_the_notebook(tmp_path, emoji_dir, stage, section, msg):
    "Values a notebook would only fail on late (as a papermill traceback) stop the stage first: one line, exit 2."
    p = yaml.safe_load((ROOT/'params.yaml').read_text())
    if 'datasets' in section: p.update(section)
    else: p[stage].update(section)
    f = tmp_path/'params.yaml'; f.write_text(yaml.safe_dump(p))
    r = run(BIN/'hat-nb', 'stage', stage, *(['emoji'] if stage != 'report' else []), '--params', f, check=False)
    assert r.returncode == 2 and msg in r.stderr and 'Traceback' not in r.stderr + r.stdout, r.stderr

def test_dvc_yaml_declares_the_paths_of_dataset_paths():
    "The paths hat_nb.pipeline.dataset_paths gives the notebooks are the ones dvc.yaml declares (resolved by DVC itself)."
    from dvc.repo import Repo
    from hat_nb.pipeline import REPORT, dataset_paths
    P = dataset_paths('emoji')
    with Repo(str(ROOT)) as repo:
        st = {s.addressing: s for s in repo.index.stages}
    paths = lambda s, kind: {str(Path(o.def_path)) for o in getattr(st[s], kind)}
    assert paths('prepare@emoji', 'deps') >= {P['data_dir']} and paths('prepare@emoji', 'outs') >= {P['data_stats']}
    assert paths('train@emoji', 'outs') >= {P['best_model'], P['train_metrics'], P['train_curve']}
    records = {f"{P['notebooks']}/{s}.ipynb" for s in ('prepare', 'train', 'evaluate')} | {f"{P['model_dir']}/log.jsonl", 'reports/report.ipynb'}
    assert not records & set().union(*(paths(s, 'outs') for s in st)), 'a record with wall times is an out: dvc.lock would change on every run'
    assert paths('evaluate@emoji', 'deps') >= {P['best_model'], P['data_dir']}
    assert paths('evaluate@emoji', 'outs') >= {P['test_metrics'], P['recall_curves'], P['details'], P['attention']}
    assert paths('report', 'outs') >= {REPORT['results'], REPORT['figures']} and REPORT['published'] in paths('report', 'deps')
    metrics = lambda s: {str(Path(o.def_path)) for o in st[s].outs if o.metric}       # what `dvc metrics show` lists
    assert (metrics('prepare@emoji'), metrics('train@emoji'), metrics('evaluate@emoji')) == (set(), {P['train_metrics']}, {P['recall']})
    assert 'hat_nb/search.py' not in paths('train@emoji', 'deps') | paths('evaluate@emoji', 'deps')      # only the code a stage runs

def test_dvc_yaml_deps_hold_the_code_each_stage_runs():
    """Each stage depends on the hat_nb modules it runs: the CLI, the pipeline module and what its notebook imports,
    with every module those import (`hat_nb.runs.hat_nb_modules`, which `training_code()` also comes from)."""
    import re
    from dvc.repo import Repo
    from hat_nb.runs import hat_nb_modules, training_code
    with Repo(str(ROOT)) as repo:
        st = {s.addressing: s for s in repo.index.stages}
    for stage in ('prepare@emoji', 'train@emoji', 'evaluate@emoji', 'report'):
        nb = (ROOT/'pipelines'/f"{stage.split('@')[0]}.ipynb").read_text()
        runs = hat_nb_modules('cli', 'pipeline', *re.findall(r'from hat_nb\.(\w+) import', nb))
        deps = {str(Path(d.def_path)) for d in st[stage].deps}
        missing = {f'hat_nb/{m}.py' for m in runs} - deps
        assert not missing, f"dvc.yaml: {stage} runs {sorted(missing)} but does not depend on them"
    assert set(training_code()) <= set(hat_nb_modules('cli', 'pipeline', 'train'))

def _check_figures(figs, curve, recall, details):
    "Each figure of the report is what its name says, from the data behind its axes."
    rk, loss, val = figs['curves.png']
    assert (rk['title'], rk['xlabel']) == ('Recall@K on the test split', 'k') and rk['lines'][0]['x'] == [float(c['k']) for c in recall]
    assert (loss['title'], loss['xlabel'], loss['ylabel']) == ('Training loss', 'epoch', 'train_loss')
    assert loss['lines'][0]['y'] == [c['train_loss'] for c in curve] and loss['lines'][0]['x'] == [c['epoch'] for c in curve]
    assert all(t.lstrip('−-').isdigit() for t in loss['xticks'] + val['xticks']), loss['xticks']       # whole epochs
    assert val['title'] == 'Validation R@1' and set(val['legend']) >= {'val_i2t_R1', 'val_t2i_R1'} and len(val['lines']) >= 2
    (lv,) = figs['levels.png']
    assert lv['xlabel'] == 'level' and len(lv['bars']) == 6 and min(lv['bars']) != max(lv['bars'])   # 3 levels x (matching, not)
    assert sum(a['images'] for a in figs['retrievals.png']) == 5 * len(details['examples'])

def _clone(tmp_path):
    repo = tmp_path/'repo'
    run('git', 'clone', '-q', ROOT, repo)
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}")
    return repo, env

def _set_params(repo, **top):
    p = yaml.safe_load((repo/'params.yaml').read_text())
    for k, v in top.items():
        if isinstance(v, dict) and isinstance(p.get(k), dict): p[k].update(v)
        else: p[k] = v
    (repo/'params.yaml').write_text(yaml.safe_dump(p, sort_keys=False))

def test_dvc_repro_of_a_dataset_without_data_says_where_to_get_it(tmp_path, emoji_dir):
    "`dvc exp run -S 'datasets=[flickr30k]'` before the data is there: the stage's message (not DVC's [Errno 2]); -S changes only that value."
    from hat_nb.pipeline import write_data_placeholders
    repo, env = _clone(tmp_path)
    shutil.copytree(emoji_dir, repo/'data/emoji')
    write_data_placeholders(root=repo)                                  # as tools/setup.sh does
    r = run(BIN/'dvc', 'exp', 'run', '-S', 'datasets=[flickr30k]', cwd=repo, env=env, check=False, timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "dataset 'flickr30k': no data in data/flickr30k" in out and 'hat-nb get-data flickr30k' in out, out[-3000:]
    assert 'Errno 2' not in out, out[-3000:]
    diff = run('git', 'diff', '-U0', 'params.yaml', cwd=repo).stdout
    assert [l for l in diff.splitlines() if l[:1] in '+-' and l[:3] not in ('+++', '---')] == ['-- emoji', '+- flickr30k'], diff
    assert run('git', 'status', '--porcelain', 'data.dvc', cwd=repo).stdout == ''

# The demo pipeline, shortened, is run once per session in a fresh clone; the end-to-end test asserts on that run, and the
# kill-and-resume test compares its own (killed, then resumed) run with it, file for file.
DEMO_OVERRIDES = dict(epochs=2, max_steps_per_epoch=3, batch_size=8, freeze_txt_epochs=0, ckpt_every_minutes=0, val_images=40)
OTHER_CALLER = dict(ATEN_CPU_CAPABILITY='default', OMP_NUM_THREADS='1')    # a caller asking for other CPU kernels and 1 thread

@pytest.fixture(scope='session')
def demo_repo(tmp_path_factory, emoji_dir):
    "A fresh clone with the emoji data and `DEMO_OVERRIDES`, after one `dvc repro` of every stage."
    repo, env = _clone(tmp_path_factory.mktemp('demo'))
    shutil.copytree(emoji_dir, repo/'data/emoji')
    _set_params(repo, train=dict(overrides=DEMO_OVERRIDES), evaluate=dict(n_examples=2))
    r = run(BIN/'dvc', 'repro', cwd=repo, env=env, timeout=1200)
    (repo.parent/'repro.log').write_text(r.stdout + r.stderr)       # what the user saw
    return repo, env

@pytest.mark.slow
@pytest.mark.xdist_group('demo')          # one worker runs both tests of the shared demo run
def test_dvc_repro_end_to_end(demo_repo):
    "A shortened demo run through every stage in a fresh clone; a second repro does nothing."
    repo, env = demo_repo
    m = repo/'metrics/emoji'
    test = json.loads((m/'test.json').read_text())['standard']
    assert test['n_images'] == 450 and test['n_captions'] == 605 and set(test['scoring']) == {'i2t', 't2i', 'both'}
    for f in ('figures/emoji/curves.png', 'figures/emoji/levels.png', 'figures/emoji/retrievals.png', 'figures/tables.png', 'emoji/attention.png'):
        assert (repo/'reports'/f).stat().st_size > 10_000, f
    results = (repo/'reports/results.md').read_text()
    assert '## emoji test (demo)' in results and 'HAT (this run, scoring i2t)' in results and 'VSE++' not in results
    load = lambda p: json.loads(p.read_text())
    _check_figures(load(repo/'reports/figures/emoji/figures.json'), load(m/'train_curve.json'), load(m/'recall_at_k.json'), load(m/'eval_details.json'))
    seen = (repo.parent/'repro.log').read_text()
    assert 'without encryption' not in seen and 'Traceback' not in seen, seen[-3000:]       # no kernel noise on a clean run
    lock = (repo/'dvc.lock').read_bytes()
    again = run(BIN/'dvc', 'repro', cwd=repo, env=env).stdout
    assert 'Data and pipelines are up to date' in again, again
    assert (repo/'dvc.lock').read_bytes() == lock
    shown = run(BIN/'dvc', 'metrics', 'show', cwd=repo, env=env).stdout          # few columns, in the paper's order
    head = shown.splitlines()[0].split()
    assert head == ['Path', 'epoch', 'standard.RSUM', 'standard.i2t.R@01', 'standard.i2t.R@05', 'standard.i2t.R@10',
                    'standard.t2i.R@01', 'standard.t2i.R@05', 'standard.t2i.R@10', 'train_loss', 'val.RSUM', 'val.i2t.R@01',
                    'val.t2i.R@01'], shown
    status = run('git', 'status', '--porcelain', cwd=repo).stdout.split('\n')
    assert [l for l in status if l.strip() and not l.endswith(('dvc.lock', 'params.yaml', '.gitignore'))] == [], status
    assert (repo/'reports/emoji/train.ipynb').is_file() and (repo/'models/emoji/log.jsonl').is_file()    # the run's records, git-ignored

# Injected into the page `dvc plots show` writes: each plot's Vega view is kept; once drawn, the series of every line drawn.
LINES_DRAWN = """<script>
window.__views = [];
const __embed = vegaEmbed;
vegaEmbed = (...a) => __embed(...a).then(r => { window.__views.push(r.view); return r; });
window.addEventListener('load', () => setTimeout(() => {
  const lines = (node, out) => {
    if (node.marktype === 'line' && node.items && node.items.length) {
      const d = node.items[0].datum || {};
      out.push(String(d.direction ?? d.series ?? '?'));
    }
    for (const it of (node.items || [])) lines(it, out);
    return out;
  };
  const pre = document.createElement('pre'); pre.id = 'lines-drawn';
  pre.textContent = JSON.stringify(window.__views.map(v => lines(v.scenegraph().root, []).sort()));
  document.body.appendChild(pre);
}, 2000));
</script>"""

@pytest.mark.slow
@pytest.mark.xdist_group('demo')
@pytest.mark.skipif(not shutil.which('chromium'), reason='needs the chromium package (tools/setup.sh --tests installs it where apt-get runs as root)')
def test_dvc_plots_render_offline(demo_repo, tmp_path):
    """`dvc plots show` writes a page whose Vega scripts are inlined (tools/plots_template.py): Chromium draws every series
    with no network (recall@K: i2t and t2i; the training curve: its loss and its validation RSUM). The README's reading
    commands (`dvc plots show`, `hat-nb ablation-table`) leave `git status` as it was."""
    repo, env = demo_repo
    run(sys.executable, 'tools/plots_template.py', cwd=repo)   # what tools/setup.sh runs (the packages come from the cache)
    before = run('git', 'status', '--porcelain', cwd=repo).stdout
    run(BIN/'dvc', 'plots', 'show', cwd=repo, env=env)         # into dvc_plots/, as a user runs it
    table = run(BIN/'hat-nb', 'ablation-table', cwd=repo, env=env).stdout
    assert 'One run so far. Queue the paper\'s variants' in table and '`dvc exp run --run-all`' in table, table
    assert run('git', 'status', '--porcelain', cwd=repo).stdout == before
    page = (repo/'dvc_plots/index.html').read_text()
    assert 'cdn.jsdelivr' not in page and '<script src=' not in page
    i = page.rindex('<body>') + len('<body>')                  # (vega-embed's own code holds the string '<body>' too)
    (tmp_path/'probe.html').write_text(page[:i] + LINES_DRAWN + page[i:])
    r = subprocess.run(['chromium', '--headless', '--no-sandbox', '--disable-gpu', f'--user-data-dir={tmp_path}/profile',
                        '--virtual-time-budget=20000', '--dump-dom', (tmp_path/'probe.html').as_uri()],
                       capture_output=True, text=True, timeout=180)
    drawn = re.search(r'<pre id="lines-drawn">(.*?)</pre>', r.stdout, re.S)
    assert drawn, r.stderr[-2000:]
    assert sorted(json.loads(html.unescape(drawn.group(1)))) == [['i2t', 't2i'], ['train_loss', 'val_rsum']], drawn.group(1)

@pytest.mark.slow
@pytest.mark.xdist_group('demo')
def test_a_run_shared_through_a_dvc_remote(demo_repo, tmp_path):
    """README "Sharing runs": after a run, its commit and `dvc push` to a folder remote; a teammate's fresh clone runs `dvc
    pull`: `dvc status` is clean, `dvc repro` runs no stage, and `reports/results.md` is the run's."""
    whole, env = demo_repo
    origin = tmp_path/'origin'
    shutil.copytree(whole, origin, symlinks=True)                      # the shared demo run stays as the other tests see it
    run('git', 'commit', '-qam', 'the demo run', cwd=origin)
    run(BIN/'dvc', 'remote', 'add', '-d', 'shared', tmp_path/'remote', cwd=origin, env=env)
    run('git', 'commit', '-qam', 'a DVC remote', cwd=origin)
    run(BIN/'dvc', 'push', cwd=origin, env=env, timeout=600)
    team = tmp_path/'team'
    run('git', 'clone', '-q', origin, team)
    run(BIN/'dvc', 'pull', cwd=team, env=env, timeout=600)
    assert 'Data and pipelines are up to date' in run(BIN/'dvc', 'status', cwd=team, env=env).stdout
    out = run(BIN/'dvc', 'repro', cwd=team, env=env).stdout
    assert 'Running stage' not in out and 'Data and pipelines are up to date' in out, out
    assert (team/'reports/results.md').read_bytes() == (whole/'reports/results.md').read_bytes()

@pytest.mark.slow
@pytest.mark.xdist_group('demo')
def test_killed_dvc_repro_resumes_and_reproduces_every_out(demo_repo, tmp_path, emoji_dir):
    """SIGKILL `dvc repro` (and everything it started) in the middle of training; `dvc repro` again resumes at the last
    checkpoint and ends with the uninterrupted run's files and `dvc.lock`, every stage included, although this caller asks
    for other CPU kernels and 1 thread (the stages pin their numerics: every out is reproducible)."""
    import signal, subprocess, time
    from hat_nb.runs import CheckpointError, load_checkpoint
    whole, _ = demo_repo
    repo, env = _clone(tmp_path)
    env.update(OTHER_CALLER)
    shutil.copytree(emoji_dir, repo/'data/emoji')
    _set_params(repo, train=dict(overrides=DEMO_OVERRIDES), evaluate=dict(n_examples=2))
    repro = [str(BIN/'dvc'), 'repro']
    p = subprocess.Popen(repro, cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    t0 = time.time()
    while True:                                          # killed in epoch 2, after at least one of its steps
        assert p.poll() is None and time.time() - t0 < 600, 'dvc repro ended before it could be killed'
        try: s = load_checkpoint(repo/'models/emoji/last.pt')
        except (CheckpointError, FileNotFoundError): s = None
        if s and (s['epoch'], s['step']) >= (1, 1): break
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL); p.wait()
    assert not (repo/'metrics/emoji/train.json').exists()
    out = run(*repro, cwd=repo, env=env, timeout=1200).stdout
    assert 'resuming the interrupted run in models/emoji at epoch 2' in out, out[-3000:]
    for f in ('metrics/emoji/train.json', 'metrics/emoji/train_curve.json', 'models/emoji/dvclive/metrics.json', 'models/emoji/best/model.safetensors',
              'metrics/emoji/test.json', 'reports/results.md',
              *(str(t.relative_to(whole)) for t in (whole/'models/emoji/dvclive/plots').rglob('*.tsv'))):
        assert (repo/f).read_bytes() == (whole/f).read_bytes(), f
    assert (repo/'dvc.lock').read_bytes() == (whole/'dvc.lock').read_bytes(), 'a rerun changed dvc.lock: some out is not reproducible'

def _sections(md: str) -> dict:
    "The tables of results.md by title."
    return {sec.split('\n', 1)[0].strip(): sec for sec in md.split('\n## ')[1:]}

@pytest.mark.slow
def test_paper_datasets_one_trained_one_from_released_checkpoint(tmp_path):
    """Flickr30K- and COCO-format fixtures in one pipeline. COCO trains with the paper recipe (random weights, one step) and is
    evaluated with its two protocols; Flickr30K names the authors' checkpoint (fabricated, tiny) and has its test split alone, from
    a hub copy (`get-data --test-only`): `dvc repro` imports and evaluates it, trains nothing. The report has the three paper tables and labels each row by where its model came from."""
    sys.path.insert(0, str(ROOT/'tests'))
    from dataclasses import asdict
    from official_ckpt import official_state_dict, save_lightning_checkpoint
    from hat_nb.config import tiny_config
    from hat_nb.data import make_fixture, read_karpathy
    from hat_nb.evaluate import evaluate
    from hat_nb.model import from_pretrained, load_tokenizer
    from loopback import hub_test_copy, paper_archives, serve
    repo, env = _clone(tmp_path)
    # the data as `hat-nb get-data` lays it out: Flickr30K's test split from the hub's copy, COCO downloaded from a
    # loopback mirror, the transfer of train2014.zip cut off halfway and resumed by the second run
    f30k = paper_archives(make_fixture(tmp_path/'fx/f30k', 'flickr', n=15, size=32), 'flickr', tmp_path/'have')
    mirror = tmp_path/'mirror'
    paper_archives(make_fixture(tmp_path/'fx/coco', 'coco', n=40, size=32), 'coco', mirror)   # 10 test images: COCO 1K = 5 folds of 2
    hub = hub_test_copy(tmp_path/'hub', 'clip-benchmark/wds_flickr30k', tmp_path/'fx/f30k')   # the test split's copy on the hub
    get = lambda *a: run(BIN/'hat-nb', 'get-data', *a, cwd=repo, check=False,
                         env={**env, 'HAT_NB_CACHE': str(tmp_path/'cache'), 'HF_HUB_CACHE': str(hub), 'HF_HUB_OFFLINE': '1'})
    r = get('flickr30k', '--test-only', '--from', f30k[0])                 # the released weights need the test split alone
    assert r.returncode == 2 and r.stderr.strip().endswith('the protocols need 1,000 / 5,000'), r.stderr   # laid out; fixture-sized
    assert json.loads((repo/'data/flickr30k/dataset_flickr30k.json').read_text())['test_only']['images'].startswith('clip-benchmark/')
    with serve(mirror, cut={'train2014.zip'}) as url:
        r = get('coco', '--download', '--mirror', url)
        assert r.returncode == 2 and 'train2014.zip: cut off at' in r.stderr and 'run again to resume' in r.stderr, r.stderr
        r = get('coco', '--download', '--mirror', url)
    assert r.returncode == 2 and 'the protocols need 5,000 / 25,000' in r.stderr and len(r.stderr.strip().splitlines()) == 2, r.stderr
    assert len(list((repo/'data/coco/images').rglob('*.png'))) == 40 and not (repo/'data/coco/GET_THE_DATA.md').exists()
    tiny = tiny_config(txt_levels=(1, 2, 3))
    as_yaml = lambda v: [as_yaml(x) for x in v] if isinstance(v, (list, tuple)) else {k: as_yaml(x) for k, x in v.items()} if isinstance(v, dict) else v
    save_lightning_checkpoint(official_state_dict(tiny, 0), repo/'weights/hat_flickr30k.ckpt')
    catalog = dict(flickr30k=dict(recipe='paper_f30k', protocols=['standard'], captions_per_image=None, reference_eval=True,
                                  checkpoint='weights/hat_flickr30k.ckpt',
                                  overrides={f'model.{k}': as_yaml(v) for k, v in asdict(tiny).items() if k != 'tokenizer'}),
                   coco=dict(recipe='paper_coco', protocols=['standard', 'coco1k'], captions_per_image=5,   # the paper's training
                             reference_eval=False, overrides=_tiny_model_keys()))                            # recipe, a tiny model
    _set_params(repo, datasets=['flickr30k', 'coco'], catalog=catalog,
                train=dict(overrides=dict(epochs=1, max_steps_per_epoch=1, batch_size=2, eval_batch_size=8)), evaluate=dict(n_examples=2, batch_size=8))
    run(BIN/'dvc', 'repro', cwd=repo, env=env, timeout=1500)
    # the report: three tables, rows labelled by the model's origin
    results = (repo/'reports/results.md').read_text()
    tables = _sections(results)
    assert list(tables) == ['Flickr30K 1K test', 'COCO 5K test', 'COCO 1K test (mean of 5 folds)'], results
    assert 'SCAN (t2i+i2t ensemble)' in results and 'emoji' not in results and 'ensemble of 2' in results, results
    f30k = tables['Flickr30K 1K test']
    assert f30k.count("HAT, authors' checkpoint, evaluated by hat_nb (scoring i2t)") == 1 and 'HAT (this run' not in f30k and '(scoring t2i)' not in f30k, f30k
    assert all('HAT (this run' in tables[t] and "authors' checkpoint, evaluated" not in tables[t] for t in list(tables)[1:]), results
    figs = json.loads((repo/'reports/figures/figures.json').read_text())['tables.png']
    assert [a['title'] for a in figs] == list(tables)
    stages = run(BIN/'dvc', 'stage', 'list', cwd=repo, env=env).stdout
    assert all(f'{s}@{d}' in stages for s in ('prepare', 'train', 'evaluate') for d in ('flickr30k', 'coco')), stages
    # COCO: trained, both protocols on its 10 test images
    coco = json.loads((repo/'metrics/coco/test.json').read_text())
    assert set(coco) == {'standard', 'coco1k'} and coco['standard']['n_images'] == coco['coco1k']['n_images'] == 10
    assert len(json.loads((repo/'metrics/coco/train_curve.json').read_text())) == 1 and (repo/'models/coco/log.jsonl').is_file()
    # Flickr30K: imported, nothing trained, the reference evaluation (i2t matrix only), the numbers of a direct evaluation
    assert json.loads((repo/'metrics/flickr30k/train_curve.json').read_text()) == []
    info = json.loads((repo/'metrics/flickr30k/train.json').read_text())
    assert set(info) == {'imported_from', 'sha256', 'epoch', 'global_step'} and info['imported_from'] == 'weights/hat_flickr30k.ckpt'
    assert not (repo/'models/flickr30k/log.jsonl').exists() and not (repo/'models/flickr30k/last.pt').exists()
    test = json.loads((repo/'metrics/flickr30k/test.json').read_text())['standard']
    assert set(test) == {'scoring', 'n_images', 'n_captions', 'protocol'} and list(test['scoring']) == ['i2t'] and test['n_images'] == 5
    m = from_pretrained(repo/'models/flickr30k/best')
    recs = read_karpathy(repo/'data/flickr30k/dataset_flickr30k.json', splits='test')
    direct = evaluate(m, recs, load_tokenizer(m.cfg), batch_size=8, progress=False, verbose=False, reference=True)
    assert direct['scoring'] == test['scoring'], (direct['scoring'], test['scoring'])
    # a checkpoint named but absent: the stage says where to get it
    catalog['flickr30k']['checkpoint'] = 'weights/missing.ckpt'
    _set_params(repo, datasets=['flickr30k'], catalog=catalog)
    r = run(BIN/'dvc', 'repro', cwd=repo, env=env, check=False, timeout=600)
    assert r.returncode != 0 and "catalog.flickr30k.checkpoint: weights/missing.ckpt not found; download the authors' released checkpoint" in r.stdout + r.stderr

def _tiny_model_keys():
    "Catalog overrides turning a paper recipe into the tiny test model (random towers: `model.img_weights: null`)."
    from dataclasses import asdict
    from hat_nb.config import tiny_config
    as_yaml = lambda v: [as_yaml(x) for x in v] if isinstance(v, (list, tuple)) else {k: as_yaml(x) for k, x in v.items()} if isinstance(v, dict) else v
    return {f'model.{k}': as_yaml(v) for k, v in asdict(tiny_config(txt_levels=(1, 2, 3))).items() if k != 'tokenizer'}

@pytest.mark.slow
def test_ablation_variants_queued_as_experiments_make_one_table(tmp_path):
    "Two level-subset variants queued with `dvc exp run --queue -S train.levels=...`, run by the queue; `hat-nb ablation-table` holds both."
    from hat_nb.data import make_fixture
    repo, env = _clone(tmp_path)
    make_fixture(repo/'data/flickr30k', 'flickr', n=15, size=32); (repo/'data/flickr30k/dataset_flickr.json').rename(repo/'data/flickr30k/dataset_flickr30k.json')
    run(BIN/'dvc', 'add', 'data', cwd=repo, env=env)                                        # queued runs take the data from DVC's cache
    _set_params(repo, datasets=['flickr30k'], catalog=dict(flickr30k=dict(recipe='paper_f30k', protocols=['standard'], captions_per_image=None,
                reference_eval=False, overrides=_tiny_model_keys())), train=dict(overrides=dict(epochs=1, max_steps_per_epoch=2, batch_size=4, eval_batch_size=8)),
                evaluate=dict(n_examples=2, batch_size=8))
    run('git', 'commit', '-qam', 'tiny fixture', cwd=repo, env=env)
    for name, levels in (('L3', '[3]'), ('L2-L3', '[2,3]')):
        run(BIN/'dvc', 'exp', 'run', '--queue', '-n', name, '-S', f'train.levels={levels}', cwd=repo, env=env)
    run(BIN/'dvc', 'exp', 'run', '--run-all', cwd=repo, env=env, timeout=1500)
    out = run(BIN/'hat-nb', 'ablation-table', '--dataset', 'flickr30k', cwd=repo, env=env).stdout
    rows = [l for l in out.splitlines() if l.startswith('| L')]
    assert [r.split('|')[1].strip() for r in rows] == ['L3', 'L2+L3'] and [r.split('|')[3].strip() for r in rows] == ['L3', 'L2-L3'], out
    assert (repo/'reports/ablation.md').read_text().startswith('# Ablations of the hierarchy: flickr30k, standard test')

@pytest.mark.slow
def test_stages_in_two_processes_match_one(tmp_path):
    "`nproc: 2` (two gloo processes started by the train and evaluate stages under torchrun) gives the metrics of `nproc: 1` within float rounding."
    from hat_nb.data import make_fixture
    repo, env = _clone(tmp_path)
    make_fixture(repo/'data/flickr30k', 'flickr', n=15, size=32); (repo/'data/flickr30k/dataset_flickr.json').rename(repo/'data/flickr30k/dataset_flickr30k.json')
    tiny = _tiny_model_keys()                       # without dropout: each process would draw its own masks
    tiny['model.img_kwargs']['drop_path_rate'] = 0.0
    tiny['model.txt_config'].update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    _set_params(repo, datasets=['flickr30k'], catalog=dict(flickr30k=dict(recipe='paper_f30k', protocols=['standard'], captions_per_image=None,
                reference_eval=False, overrides=tiny)), train=dict(overrides=dict(epochs=2, max_steps_per_epoch=3, batch_size=4, eval_batch_size=8, log_every=1)),
                evaluate=dict(n_examples=2, batch_size=8))
    got = {}
    for n in (1, 2):
        _set_params(repo, train=dict(nproc=n), evaluate=dict(nproc=n))
        for stage in ('train', 'evaluate'): run(BIN/'hat-nb', 'stage', stage, 'flickr30k', cwd=repo, env=env, timeout=900)
        cfg = json.loads((repo/'models/flickr30k/train_config.json').read_text())
        log = [json.loads(l) for l in (repo/'models/flickr30k/log.jsonl').read_text().splitlines()]
        metrics = {f: json.loads((repo/'metrics/flickr30k'/f).read_text()) for f in ('train.json', 'test.json')}
        got[n] = (metrics, [l['loss'] for l in log if l['kind'] == 'step'], cfg['world_size'])
        shutil.rmtree(repo/'models/flickr30k')
    (m1, steps1, w1), (m2, steps2, w2) = got[1], got[2]
    assert (w1, w2) == (1, 2) and len(steps1) == len(steps2) == 6
    assert steps2 == pytest.approx(steps1, rel=1e-4, abs=1e-5), (steps1, steps2)
    flat = lambda d, p='': {k2: v2 for k, v in d.items() for k2, v2 in (flat(v, f'{p}{k}.').items() if isinstance(v, dict) else [(p + k, v)])}
    f1, f2 = flat(m1), flat(m2)
    close = lambda a, b: a == pytest.approx(b, rel=1e-4, abs=1e-4) if isinstance(b, (int, float)) else a == b
    assert f1.keys() == f2.keys() and all(close(f2[k], f1[k]) for k in f1), (m1, m2)
    assert f1['test.json.standard.n_images'] == 5 and 'test.json.standard.scoring.i2t.rsum' in f1
