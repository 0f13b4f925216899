"`hat-nb serve`: the JSON API over real HTTP, hostile requests, a burst of clients, and the page in headless Chromium."
import http.client, io, json, os, socket, sys, threading, time
from pathlib import Path
import pytest, torch
from PIL import Image
from conftest import cli
from hat_nb.config import tiny_config
from hat_nb.data import make_fixture
from hat_nb.model import HATModel, save_pretrained
from hat_nb.search import build_index
from hat_nb.serve import LIMITS, background_server

@pytest.fixture(scope='module')
def served(tmp_path_factory):
    "A server on 127.0.0.1 over a 9-image index of a tiny random model, with captions; a file outside the folder and a link to it."
    tmp = tmp_path_factory.mktemp('serve')
    torch.manual_seed(0)
    model = save_pretrained(HATModel(tiny_config()).eval(), tmp/'model')
    imgs = make_fixture(tmp/'data', 'flickr', n=9)/'images'
    (tmp/'secret.png').write_bytes((imgs/'img0.png').read_bytes())        # an image outside the indexed folder...
    (imgs/'link.png').symlink_to(tmp/'secret.png')                       # ...that a link inside points to
    build_index(imgs, model, tmp/'idx', progress=False)
    (tmp/'caps.txt').write_text('image number 1\nimage number 2\na cat\n')
    with background_server(tmp/'idx', captions=tmp/'caps.txt', workers=1, queue=4) as url:
        port = int(url.rsplit(':', 1)[1].strip('/'))
        yield port, tmp

def request(port, method, target, body=None, headers=None, host='127.0.0.1'):
    "One raw request (the target sent exactly as given, not normalised): (status, headers, body)."
    c = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
    c.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
    c.putheader('Host', f'{host}:{port}')
    for k, v in (headers or {}).items(): c.putheader(k, v)
    if body is not None: c.putheader('Content-Length', str(len(body)))
    c.endheaders(body)
    r = c.getresponse()
    out = r.status, dict(r.getheaders()), r.read()
    c.close()
    return out

def api(port, target, body=None):
    s, h, b = request(port, 'POST' if body is not None else 'GET', target, body)
    return s, json.loads(b)

def test_api_over_http(served):
    port, tmp = served
    s, h = api(port, '/api/health')
    assert s == 200 and h['images'] == 10 and h['captions'] == 3
    s, r = api(port, '/api/search?q=image+number+4&k=4&prefilter=2')
    assert s == 200 and len(r['results']) == 4 and r['reranked'] == 4                           # prefilter widened to k
    assert [x['score'] for x in r['results']] == sorted((x['score'] for x in r['results']), reverse=True)
    assert all(not Path(x['path']).is_absolute() for x in r['results'])
    top = r['results'][0]
    s, e = api(port, f"/api/explain?q=image+number+4&id={top['id']}&v={r['version']}")
    assert s == 200 and e['words'] == ['[CLS]', 'image', 'number', '4', '[SEP]']
    assert abs(sum(l['score'] for l in e['levels']) - top['score']) < 2e-3                        # the levels add up to the match
    assert all(len(l['maps']) == 5 and len(l['maps'][0]) == l['grid'][0] * l['grid'][1] for l in e['levels'])
    s, hd, b = request(port, 'GET', f"/api/thumb/{top['id']}?size=16")
    assert s == 200 and hd['Content-Type'] == 'image/jpeg' and Image.open(io.BytesIO(b)).size == (16, 16)
    s, c = api(port, '/api/captions?id=0&k=2')
    assert s == 200 and len(c['results']) == 2
    png = io.BytesIO(); Image.new('RGB', (30, 20), 'blue').save(png, 'PNG')
    s, c = api(port, '/api/captions?k=3', png.getvalue())
    assert s == 200 and sorted(x['caption'] for x in c['results']) == ['a cat', 'image number 1', 'image number 2']
    s, hd, b = request(port, 'GET', '/')
    assert s == 200 and b'<script src="app.js">' in b and "default-src 'self'" in hd['Content-Security-Policy']

def bomb(w, h):
    b = io.BytesIO(); Image.new('1', (w, h)).save(b, 'PNG'); return b.getvalue()

HOSTILE = [  # (method, target, body, headers, status)
    ('GET', '/api/thumb/../../../etc/passwd', None, {}, 404),
    ('GET', '/api/thumb/..%2f..%2f..%2fetc%2fpasswd', None, {}, 404),
    ('GET', '/api/thumb/%2e%2e/%2e%2e/etc/passwd', None, {}, 404),
    ('GET', '/../../../../etc/passwd', None, {}, 404),
    ('GET', '//etc/passwd', None, {}, 404),
    ('GET', '/app.js/../../../etc/passwd', None, {}, 404),
    ('GET', 'http://127.0.0.1/etc/passwd', None, {}, 404),
    ('GET', '/api/thumb/-1', None, {}, 404),
    ('GET', '/api/thumb/99999999', None, {}, 400),
    ('GET', '/api/search?q=' + 'x' * (LIMITS['query_chars'] + 1), None, {}, 400),
    ('GET', '/api/search?q=cat&k=100000', None, {}, 400),
    ('GET', '/api/search?q=cat&prefilter=99999999', None, {}, 400),
    ('GET', '/api/explain?q=cat&id=0&v=1', None, {}, 410),
    ('POST', '/api/search?q=cat', b'x', {}, 405),
    ('POST', '/api/captions', b'not an image', {}, 400),
    ('POST', '/api/captions', bomb(5000, 5000), {}, 413),
    ('POST', '/api/captions', b'', {'Content-Length': str(LIMITS['body_bytes'] + 1)}, 413),
]

def test_hostile_requests_read_nothing_outside_the_index(served):
    port, tmp = served
    secret = (tmp/'secret.png').read_bytes()
    for method, target, body, headers, status in HOSTILE:
        if 'Content-Length' in headers:   # a declared size over the limit is refused before the body is read
            c = socket.create_connection(('127.0.0.1', port), timeout=30)
            c.sendall(f'POST {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {headers["Content-Length"]}\r\n\r\n'.encode())
            head = c.recv(65536).decode('latin-1'); c.close()
            assert head.split()[1] == str(status), (target, head[:200])
            continue
        s, h, b = request(port, method, target, body)
        assert s == status, (method, target[:60], s, b[:200])
        assert h.get('Content-Type', '').startswith('application/json') and json.loads(b)['status'] == status, (target[:60], b[:200])
        assert b'root:' not in b and secret not in b
    assert request(port, 'GET', '/api/thumb/1?id=/etc/passwd')[2] == request(port, 'GET', '/api/thumb/1')[2]  # the route's id wins
    links = [i for i, p in enumerate(json.loads((tmp/'idx/meta.json').read_text())['paths']) if p == 'link.png']
    s, h, b = request(port, 'GET', f'/api/thumb/{links[0]}')          # indexed, but its file lies outside the folder
    assert s == 404 and b'inside the indexed folder' in b
    s, h, b = request(port, 'GET', '/api/health', host='attacker.example')   # DNS rebinding: another name for 127.0.0.1
    assert s == 400 and b'Host' in b
    src = Path(sys.modules['hat_nb.serve'].__file__).read_text()
    assert 'pickle' not in src and 'torch.load' not in src                   # nothing on the request path unpickles

def test_burst_is_answered_or_refused_at_once(served):
    "24 clients at once against 1 worker and a queue of 4: each gets an answer (200) or an immediate 503 with Retry-After."
    port, _ = served
    out = []
    def client(i):
        s, h, b = request(port, 'GET', f'/api/search?q=image+number+{i % 9}&k=3')
        out.append((s, h.get('Retry-After'), json.loads(b)))
    ts = [threading.Thread(target=client, args=(i,)) for i in range(24)]
    for t in ts: t.start()
    for t in ts: t.join(60)
    assert len(out) == 24 and not any(t.is_alive() for t in ts)
    assert all(s == 200 or (s == 503 and ra == '1' and b['status'] == 503) for s, ra, b in out), out
    assert sum(s == 200 for s, _, _ in out) >= 5

def test_serve_refuses_a_taken_port_and_forked_gpus(served):
    port, tmp = served
    r = cli('serve', tmp/'idx', '--port', port)
    assert r.returncode == 2 and f'cannot listen on 127.0.0.1:{port}' in r.stderr and len(r.stderr.splitlines()) == 1
    r = cli('serve', tmp/'idx', '--port', '0', '--device', 'cuda', '--processes', '2')     # a CUDA context cannot be forked
    assert r.returncode == 2 and 'use --processes 1' in r.stderr and len(r.stderr.splitlines()) == 1

from cdp import CHROMIUM, Browser

@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM, reason='needs the chromium package (tools/setup.sh --tests installs it where apt-get runs as root)')
def test_page_in_chromium(served, tmp_path):
    "A person's visit: type a query, the grid shows k thumbnails, a click draws one heatmap per word and level; no console error."
    port, _ = served
    b = Browser(tmp_path/'profile')
    try:
        b.call('Page.navigate', url=f'http://127.0.0.1:{port}/')
        b.wait("document.getElementById('about').textContent.includes('10 images')")
        b.js("document.getElementById('q').value = 'image number 4'; document.getElementById('k').value = '5';"
             "document.getElementById('search').requestSubmit(); true")
        b.wait("document.querySelectorAll('#grid figure').length === 5 && "
               "[...document.querySelectorAll('#grid img')].every(i => i.complete && i.naturalWidth > 0)")
        b.js("document.querySelector('#grid figure').click(); true")
        b.wait("!document.getElementById('detail').hidden && document.querySelectorAll('#maps canvas[data-drawn]').length === 9")
        assert b.js("document.querySelectorAll('#maps .level').length") == 3                 # 3 levels x 3 words
        bare = ("(async () => { const i = new Image(); i.src = document.getElementById('maps').dataset.image; await i.decode();"
                "const c = document.createElement('canvas'); c.width = c.height = 112; const x = c.getContext('2d');"
                "x.drawImage(i, 0, 0, 112, 112); return x.getImageData(0, 0, 112, 112).data.join(); })()")
        maps = b.js("[...document.querySelectorAll('#maps canvas')].map(c => c.getContext('2d').getImageData(0, 0, 112, 112).data.join())")
        assert b.js(bare) not in maps                                                         # every map is drawn over the image
        assert b.js("document.getElementById('dscore').textContent").count('+') == 2
        b.js("document.getElementById('capbtn').click(); true")
        b.wait("document.querySelectorAll('#dcaps li').length === 3")
        assert b.errors() == []
    finally:
        b.close()

@pytest.mark.slow
def test_cli_serves_from_several_processes(served):
    "`hat-nb serve --processes 2`: forked after loading, both answer a burst; Ctrl-C stops them all."
    import signal, subprocess
    port, tmp = served
    p = subprocess.Popen([str(Path(sys.executable).parent/'hat-nb'), 'serve', str(tmp/'idx'), '--port', '0', '--processes', '2'],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert '2 process(es)' in line, line + p.stderr.read()
        new = int(line.split('http://127.0.0.1:')[1].split('/')[0])
        out = []
        def client(i):
            out.append(request(new, 'GET', f'/api/search?q=image+number+{i}&k=2')[0])
        ts = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for t in ts: t.start()
        for t in ts: t.join(60)
        assert out == [200] * 8
        kids = Path(f'/proc/{p.pid}/task/{p.pid}/children').read_text().split()
        assert len(kids) == 2                                                   # a supervisor and two server processes
        p.kill()                                                                # the supervisor killed: its processes follow
        p.wait(20)
        t0 = time.time()
        def alive(pid):
            try: return Path(f'/proc/{pid}/stat').read_text().split()[2] != 'Z'
            except OSError: return False
        while any(alive(k) for k in kids):
            assert time.time() - t0 < 20, 'server processes outlived their supervisor'
            time.sleep(0.2)
    finally:
        if p.poll() is None: p.kill(); p.wait(20)
