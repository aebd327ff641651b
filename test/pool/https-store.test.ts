/**
 * The model store against a real HTTPS server on loopback that misbehaves on purpose: 429 and 5xx
 * answers, a transfer cut in the middle, an attempt that hangs past its timeout, a cache folder that
 * cannot be created. The store runs in a child process that trusts the test's self-signed certificate
 * (NODE_EXTRA_CA_CERTS is read at start-up only); the test checks what it reports and what it left.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { openssl } from '../support/tools';
import { ROOT, ensureBuilt, tempDir } from './support';

const MODEL = Buffer.alloc(256 * 1024, 7); // any bytes: the store moves files, it does not parse them

/** Per path, what each successive request gets. */
type Behaviour = Array<'ok' | '429' | '503' | '500' | '404' | 'cut' | 'hang'>;

const RUN = `
const { ModelStore } = require(process.argv[1]);
const [base, root, cacheDir] = process.argv.slice(2);
(async () => {
  const out = {};
  const attempt = async (name, location, opts) => {
    const retries = [];
    const store = new ModelStore({ root, cacheDir: cacheDir || undefined, backoffMs: 20, attemptTimeoutMs: 3000, onRetry: (r) => retries.push(r.error), ...opts });
    try {
      const file = await store.resolve(base + location);
      out[name] = { ok: true, file, bytes: require('fs').statSync(file).size, attempts: store.attemptsMade, retries };
    } catch (e) {
      out[name] = { ok: false, error: e.message, attempts: store.attemptsMade, retries };
    }
    await store.close();
  };
  await attempt('busy', '/busy.onnx');
  await attempt('cut', '/cut.onnx');
  await attempt('hang', '/hang.onnx');
  await attempt('down', '/down.onnx', { attempts: 3 });
  await attempt('missing', '/missing.onnx');
  process.stdout.write(JSON.stringify(out));
})();
`;

openssl().describe('the HTTPS model source (certificate made with openssl)', () => {
  const dir = tempDir('tls');
  const requests = new Map<string, number>();
  const behaviours: Record<string, Behaviour> = {
    '/busy.onnx': ['429', '503', 'ok'],
    '/cut.onnx': ['cut', 'ok'],
    '/hang.onnx': ['hang', 'ok'],
    '/down.onnx': ['500', '500', '500', '500'],
    '/missing.onnx': ['404', 'ok'],
  };
  let server: https.Server;
  let base: string;

  beforeAll(async () => {
    ensureBuilt();
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'), '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1'], { stdio: 'ignore' });
    server = https.createServer({ key: fs.readFileSync(path.join(dir, 'key.pem')), cert: fs.readFileSync(path.join(dir, 'cert.pem')) }, (req, res) => {
      const n = requests.get(req.url!) ?? 0;
      requests.set(req.url!, n + 1);
      const what = behaviours[req.url!]?.[n] ?? 'ok';
      if (what === 'hang') return; // never answers: the attempt's timeout must end it
      if (what === 'cut') {
        res.writeHead(200, { 'content-length': String(MODEL.length) });
        res.write(MODEL.subarray(0, MODEL.length / 2), () => res.destroy());
        return;
      }
      if (what === 'ok') {
        res.writeHead(200, { 'content-length': String(MODEL.length) });
        res.end(MODEL);
        return;
      }
      res.writeHead(Number(what)).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    server?.closeAllConnections();
    server?.close();
  });

  const run = (root: string, cacheDir = ''): Promise<Record<string, { ok: boolean; file?: string; bytes?: number; error?: string; attempts: number; retries: string[] }>> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['-e', RUN, path.join(ROOT, 'runtime/lib/pool/store.js'), base, root, cacheDir], { env: { ...process.env, NODE_EXTRA_CA_CERTS: path.join(dir, 'cert.pem') } });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (err += d));
      child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`store child exited ${code}: ${err}`))));
    });

  test('retries 429 and 5xx, a transfer cut in the middle and an attempt past its timeout; not a 404; gives up in bounded attempts', async () => {
    const cache = tempDir('cache');
    const r = await run(tempDir('root'), cache);
    expect(r.busy).toMatchObject({ ok: true, bytes: MODEL.length, attempts: 3 });
    expect(r.busy.retries).toEqual([expect.stringMatching(/answered HTTP 429$/), expect.stringMatching(/answered HTTP 503$/)]);
    expect(r.cut).toMatchObject({ ok: true, bytes: MODEL.length, attempts: 2 });
    expect(r.cut.retries[0]).toMatch(/the transfer failed after \d+ bytes/);
    expect(r.hang).toMatchObject({ ok: true, bytes: MODEL.length, attempts: 2 });
    expect(r.hang.retries).toHaveLength(1);
    expect(r.down).toMatchObject({ ok: false, attempts: 3 });
    expect(r.down.error).toMatch(/down\.onnx answered HTTP 500 \(gave up after 3 attempts\)$/);
    expect(r.missing).toMatchObject({ ok: false, attempts: 1 });
    expect(r.missing.error).toMatch(/answered HTTP 404$/);
    // Nothing half-written is left in the cache: only the whole files.
    expect(fs.readdirSync(cache).filter((f) => f.endsWith('.part'))).toEqual([]);
    expect(fs.readdirSync(cache)).toHaveLength(3);
  }, 60_000);

  test('falls back to the temp folder when the cache cannot be created under the model root', async () => {
    const root = tempDir('root');
    fs.writeFileSync(path.join(root, '.cache'), 'a file where the cache folder would go');
    for (const k of Object.keys(behaviours)) requests.delete(k);
    const r = await run(root);
    expect(r.busy.ok).toBe(true);
    expect(path.dirname(r.busy.file!)).toBe(path.join(os.tmpdir(), 'botshard-models'));
  }, 60_000);
});
