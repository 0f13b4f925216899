"""Where the seconds of the demo's `dvc repro` go: each part of the run timed on its own, pinned and native CPU numerics
side by side, scaled to the demo run's counts (steps, epochs, validations, stages). Run from the repository root after
`dvc repro` has built data/emoji:

    python benchmarks/profile_demo.py                 # about 4 minutes on 2 cores
    python benchmarks/profile_demo.py --steps 3       # quicker, noisier

Each numerics setting runs in its own process (the pinning is environment read when torch starts), which times: the
imports of a training stage (torch, timm, transformers, hat_nb); building the demo model; training steps of each kind of
epoch, split into data (decode, augment, tokenize), image tower forward, text tower forward, projections + scores + loss,
backward, optimizer (clip and step); the frozen text tower's features computed once (`frozen_eval`,
`hat_nb.train.FrozenTextFeatures`); one validation; the evaluate stage's scoring of the test split; one checkpoint.
Once, outside both: a `hat-nb` process start and a papermill kernel's start and shutdown (every stage pays both).
Frozen epochs are timed both ways: as the reference runs them (the frozen text tower run at every step, the demo's
recipe) and with `frozen_eval` (its features computed once); the table follows the recipe, its last row the other way.
"""
import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ('prepare', 'train', 'evaluate', 'report')      # each: a hat-nb process and a papermill kernel
TORCH_STAGES = ('train', 'evaluate')                      # the stages that import the model libraries


def clock():
    return time.perf_counter()


def child(out, steps):
    "The timings of one numerics setting (this process's environment), as JSON in `out`."
    t = clock()
    import torch
    from dataclasses import replace
    from torch.utils.data import DataLoader
    from hat_nb.config import recipe
    from hat_nb.data import CaptionDataset, Collate, find_karpathy_json, read_karpathy, train_transform
    from hat_nb.evaluate import evaluate
    from hat_nb.model import HATModel, load_tokenizer
    from hat_nb.train import EpochOrder, FrozenTextFeatures, loss_fn, make_optimizer, set_frozen
    got = dict(imports=clock() - t)
    mc, tc = recipe('demo')
    jp = find_karpathy_json(tc.data_dir)
    train_recs, val_recs = read_karpathy(jp, splits=tc.train_splits), read_karpathy(jp, splits=tc.val_split)
    test_recs = read_karpathy(jp, splits='test')
    torch.manual_seed(0)
    t = clock()
    model, tok = HATModel(mc), load_tokenizer(mc)
    got['model build'] = clock() - t
    ds = CaptionDataset(train_recs, train_transform(mc.img_size, tc.crop_scale, tc.hflip), seed=tc.seed)
    coll, order = Collate(tok, mc.max_len), EpochOrder(len(ds), tc.seed, tc.batch_size, drop_last=tc.drop_last)
    dl = DataLoader(ds, batch_sampler=order, collate_fn=coll)
    got['steps per epoch'] = order.batches(len(ds))
    opt, _ = make_optimizer(model, tc, got['steps per epoch'])
    loss = loss_fn(tc)
    for kind, epoch, frozen_eval in (('frozen, reference', 0, False), ('frozen', 0, True), ('training', tc.epochs, True)):
        model.train()
        set_frozen(model, epoch, replace(tc, frozen_eval=frozen_eval))
        text = None
        if kind == 'frozen':
            t = clock()
            text = FrozenTextFeatures(model, [c for _, c in ds.items], coll, batch_size=tc.eval_batch_size)
            got['text features once'] = clock() - t
        order.set(epoch)
        it, parts = iter(dl), {}
        for k in range(steps + 1):                        # the first step warms up, not counted
            s = {}
            t = clock(); b = next(it); s['data'] = clock() - t
            t = clock(); img = model.encode_images(b['images']); s['image tower forward'] = clock() - t
            t = clock()
            hidden = text(b['input_ids'], b['attention_mask']) if text else model.txt(b['input_ids'], b['attention_mask'].bool())
            s['text tower forward' if not text else 'text features looked up'] = clock() - t
            t = clock()
            txt, mask = model.encode_texts(b['input_ids'], b['attention_mask'], hidden)
            l = loss(model, img, txt, mask, b['img_idx']); s['projections, scores, loss'] = clock() - t
            t = clock(); opt.zero_grad(set_to_none=True); l.backward(); s['backward'] = clock() - t
            t = clock(); torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip); opt.step(); s['optimizer'] = clock() - t
            if k:
                for name, v in s.items(): parts[name] = parts.get(name, 0.0) + v / steps
        got[kind] = parts
    t = clock()
    evaluate(model, val_recs, tok, scoring=(mc.scoring,), batch_size=tc.eval_batch_size, amp=tc.amp, progress=False, verbose=False)
    got['validation'] = clock() - t
    t = clock()
    evaluate(model, test_recs, tok, scoring=('i2t', 't2i', 'both'), batch_size=128, amp='none', progress=False, verbose=False)
    got['test scoring (evaluate stage)'] = clock() - t
    with tempfile.TemporaryDirectory() as d:
        t = clock(); torch.save(dict(model=model.state_dict(), opt=opt.state_dict()), Path(d) / 'last.pt'); got['checkpoint write'] = clock() - t
    Path(out).write_text(json.dumps(got))


def fixed_costs() -> dict:
    """A `hat-nb` process start (its CLI's imports) and a stage's notebook run by the stage runner
    (`hat_nb.pipeline.run_stage`: parameters checked, papermill, the kernel's start and shutdown) around one empty cell."""
    import nbformat
    from hat_nb.pipeline import run_stage
    t = clock()
    subprocess.run([str(Path(sys.executable).parent / 'hat-nb'), '--help'], capture_output=True, check=True)
    cli = clock() - t
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / 'pipelines').mkdir()
        cell = nbformat.v4.new_code_cell('n = 1', metadata=dict(tags=['parameters']))
        nb = nbformat.v4.new_notebook(cells=[cell], metadata=dict(kernelspec=dict(name='python3', display_name='Python 3', language='python')))
        nbformat.write(nb, Path(d) / 'pipelines/empty.ipynb')
        (Path(d) / 'params.yaml').write_text('empty: {}\n')
        t = clock()
        run_stage('empty', root=d)
        kernel = clock() - t
    return {'hat-nb process start': cli, 'papermill kernel start and stop': kernel}


def table(runs: dict, fixed: dict, tc):
    """One row per part: its count in the demo run and the seconds it costs there, per numerics setting; the frozen
    epochs as the recipe runs them (`frozen_eval` or not), and a last row with the other choice."""
    import pandas as pd
    p, val = runs['pinned'], validations(tc)
    steps, epochs, frozen = p['steps per epoch'], tc.epochs, tc.freeze_txt_epochs
    kinds = {True: 'frozen', False: 'frozen, reference'}
    rows = [('hat-nb process start', len(STAGES), lambda r: fixed['hat-nb process start']),
            ('papermill kernel start and stop', len(STAGES), lambda r: fixed['papermill kernel start and stop']),
            ('imports: torch, timm, transformers, hat_nb', len(TORCH_STAGES), lambda r: r['imports']),
            ('model build', len(TORCH_STAGES), lambda r: r['model build'])]
    for kind, label, n in ((kinds[tc.frozen_eval], 'frozen', frozen), ('training', 'training', epochs - frozen)):
        for part in p[kind]:
            rows.append((f'{label} epochs: {part}', n * steps, lambda r, k=kind, q=part: r[k][q]))
    if tc.frozen_eval:
        rows.append(('frozen epochs: text features once', 1 if frozen else 0, lambda r: r['text features once']))
    rows += [('validation', val, lambda r: r['validation']),
             ('checkpoint writes (each epoch)', epochs, lambda r: r['checkpoint write']),
             ('test scoring, three scorings (evaluate stage)', 1, lambda r: r['test scoring (evaluate stage)'])]
    df = pd.DataFrame([dict(part=name, count=n, **{f'{m} s': round(n * f(r), 1) for m, r in runs.items()}) for name, n, f in rows])
    total = {m: df[f'{m} s'].sum() for m in runs}
    sign = -1 if tc.frozen_eval else 1
    other = {m: total[m] - sign * (frozen * steps * (sum(r['frozen, reference'].values()) - sum(r['frozen'].values()))
                                   - r['text features once'] * (frozen > 0)) for m, r in runs.items()}
    df.loc[len(df)] = dict(part=f'total (frozen_eval: {tc.frozen_eval}, as the recipe runs)', count=None, **{f'{m} s': round(total[m], 1) for m in runs})
    df.loc[len(df)] = dict(part=f'total with frozen_eval: {not tc.frozen_eval}', count=None, **{f'{m} s': round(other[m], 1) for m in runs})
    return df


def validations(tc) -> int:
    return sum(1 for e in range(tc.epochs) if e == tc.epochs - 1 or (e >= tc.val_from_epoch and (e - tc.val_from_epoch) % tc.val_every == 0))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--steps', type=int, default=6, help='timed training steps per kind of epoch (after one warm-up)')
    ap.add_argument('--child', nargs=1, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        return child(a.child[0], a.steps)
    from hat_nb.config import recipe
    from hat_nb.pipeline import CPU_NUMERICS, cpu_numerics_env
    if not (ROOT / 'data/emoji').is_dir():
        sys.exit('data/emoji not found: run `dvc repro` (or `hat-nb build-emoji`) first')
    base = {k: v for k, v in os.environ.items() if k not in CPU_NUMERICS} | dict(CUDA_VISIBLE_DEVICES='')
    base |= {k: CPU_NUMERICS[k] for k in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS')}   # the same threads both ways
    fixed = fixed_costs()
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ('pinned', 'native'):
            out = Path(tmp) / f'{mode}.json'
            r = subprocess.run([sys.executable, __file__, '--steps', str(a.steps), '--child', str(out)], cwd=ROOT,
                               env=base | cpu_numerics_env(mode), capture_output=True, text=True)
            if r.returncode:
                sys.exit(f'{mode} failed:\n{r.stderr[-3000:]}')
            runs[mode] = json.loads(out.read_text())
    _, tc = recipe('demo')
    df = table(runs, fixed, tc)
    print(f"cpu: {os.cpu_count()} cores, {base['OMP_NUM_THREADS']} threads; demo recipe: {tc.epochs} epochs of "
          f"{runs['pinned']['steps per epoch']} steps, text tower frozen in {tc.freeze_txt_epochs}, {validations(tc)} validations")
    print(df.to_string(index=False))
    return df


if __name__ == '__main__':
    main()
