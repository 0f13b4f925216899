"A loopback HTTP server for download tests (127.0.0.1 only) and fabricated archives in the real datasets' formats."
import contextlib, functools, http.server, tarfile, threading, zipfile
from pathlib import Path

class _Handler(http.server.SimpleHTTPRequestHandler):
    "Serves files with `Range` support, as the real hosts do; the first GET of each name in `cut` sends half and hangs up."
    cut: set = set()
    def log_message(self, *a): pass
    def do_GET(self):
        f = Path(self.directory)/self.path.lstrip('/')
        if not f.is_file(): return self.send_error(404)
        body, rng = f.read_bytes(), self.headers['Range']
        start = int(rng.split('=')[1].rstrip('-')) if rng else 0
        self.send_response(206 if start else 200); self.send_header('Content-Length', str(len(body) - start)); self.end_headers()
        if f.name in self.cut and not start: self.cut.discard(f.name); self.wfile.write(body[:len(body) // 2]); return
        self.wfile.write(body[start:])

@contextlib.contextmanager
def serve(directory, cut=()):
    "Serve `directory` on a free loopback port; yields its base URL."
    handler = type('H', (_Handler,), dict(cut=set(cut)))
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(handler, directory=str(directory)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try: yield f'http://127.0.0.1:{srv.server_port}'
    finally: srv.shutdown(); srv.server_close()

def paper_archives(fixture: Path, kind: str, out: Path) -> list[Path]:
    "The files a researcher has, from a `make_fixture` folder: caption_datasets.zip and the image archive(s) of `kind`."
    out.mkdir(parents=True, exist_ok=True)
    split = next(fixture.glob('dataset_*.json'))
    with zipfile.ZipFile(out/'caption_datasets.zip', 'w') as z:
        z.write(split, 'dataset_flickr30k.json' if kind == 'flickr' else 'dataset_coco.json')
    if kind == 'flickr':                                    # the request form's archive: one folder of JPEGs in a .tar.gz
        with tarfile.open(out/'flickr30k-images.tar.gz', 'w:gz') as t: t.add(fixture/'images', 'flickr30k-images')
        return [out/'caption_datasets.zip', out/'flickr30k-images.tar.gz']
    for part in ('train2014', 'val2014'):                   # COCO: one zip per folder, the folder inside
        with zipfile.ZipFile(out/f'{part}.zip', 'w') as z:
            for f in sorted((fixture/'images'/part).iterdir()): z.write(f, f'{part}/{f.name}')
    return [out/'caption_datasets.zip', out/'train2014.zip', out/'val2014.zip']

def hub_test_copy(cache: Path, repo: str, fixture: Path, rev='0' * 40, edit=None) -> Path:
    """A huggingface_hub cache holding dataset `repo` as CLIP_benchmark's webdataset copies are: `test/0.tar` of the
    fixture's test images (lossless WebP) with their captions, the shard a link to a blob named by its sha256. `edit(i,
    captions)` may change sample i's captions."""
    import hashlib, io, json, os
    from PIL import Image
    test = [im for im in json.loads(next(fixture.glob('dataset_*.json')).read_text())['images'] if im['split'] == 'test']
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w') as t:
        for i, im in enumerate(test):
            pic = io.BytesIO(); Image.open(fixture/'images'/im.get('filepath', '')/im['filename']).save(pic, format='webp', lossless=True)
            caps = [s['raw'] for s in im['sentences']]
            for ext, data in (('.webp', pic.getvalue()), ('.txt', '\n'.join(edit(i, caps) if edit else caps).encode())):
                info = tarfile.TarInfo(f's{i:07d}{ext}'); info.size = len(data); t.addfile(info, io.BytesIO(data))
    r = cache/('datasets--' + repo.replace('/', '--')); snap = r/'snapshots'/rev/'test'
    for d in (r/'refs', r/'blobs', snap): d.mkdir(parents=True, exist_ok=True)
    (r/'refs/main').write_text(rev)
    blob = r/'blobs'/hashlib.sha256(buf.getvalue()).hexdigest(); blob.write_bytes(buf.getvalue())
    (snap/'0.tar').unlink(missing_ok=True); (snap/'0.tar').symlink_to(os.path.relpath(blob, snap))
    return cache
