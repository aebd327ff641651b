/**
 * The model store: turns a catalog model location into a local file a worker can load.
 *
 * - a relative path: a file under the model root (the default; verified when the catalog gives a sha256)
 * - `s3://bucket/key`: fetched with @aws-sdk/client-s3 (loaded only when such a model is used), with the
 *   standard credential chain, so IRSA and EKS Pod Identity work unchanged
 * - `https://host/path`: fetched with fetch
 *
 * Downloads go to a cache folder (write to a temporary name, verify, then rename: a reader never sees a
 * partial file), at most `concurrency` at once, retried with exponential backoff on network errors, 429
 * and 5xx. A file is cached under its URI and sha256: the same location and digest never download twice,
 * in this process (catalog reloads) or, with a digest, in the next one (the cache is an emptyDir that
 * outlives container restarts).
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Counter, Registry } from 'prom-client';
import { replaceWith } from '../io/atomic-write';

/** A model file could not be fetched or does not match its digest. */
export class ModelFetchError extends Error {
  constructor(
    message: string,
    /** Worth another attempt (network error, 429, 5xx). */
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'ModelFetchError';
  }
}

export interface ModelStoreOptions {
  /** Folder that relative model paths are relative to. */
  root: string;
  /** Folder for downloaded models. @default - `<root>/.cache`, or `<tmpdir>/botshard-models` when the root is read-only */
  cacheDir?: string;
  /** Downloads at once. @default 4 */
  concurrency?: number;
  /** Attempts per download, the first included. @default 5 */
  attempts?: number;
  /** Wait before the second attempt; doubles each time, up to `maxBackoffMs`. @default 250 */
  backoffMs?: number;
  /** @default 8000 */
  maxBackoffMs?: number;
  /** Time one attempt may take (connect and transfer). @default 300000 */
  attemptTimeoutMs?: number;
  /** S3-compatible endpoint (e.g. `http://127.0.0.1:4568`); requests then use path-style addressing. @default - AWS S3 */
  s3Endpoint?: string;
  /** @default - AWS_REGION or AWS_DEFAULT_REGION, else us-east-1 (redirects to the bucket's region are followed) */
  s3Region?: string;
  /** Registry for the download metrics. @default - none */
  registry?: Registry;
  /** Told about retries. */
  onRetry?(info: { location: string; attempt: number; delayMs: number; error: string }): void;
}

type Source = 's3' | 'https' | 'file';

/** Where a location points and what its cache entry is called. */
function sourceOf(location: string): Source {
  if (location.startsWith('s3://')) return 's3';
  if (location.startsWith('https://')) return 'https';
  return 'file';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Minimal shape of the S3 client used here (the SDK is imported lazily). */
interface S3Like {
  send(command: unknown): Promise<{ Body?: unknown }>;
  destroy(): void;
}

export class ModelStore {
  /** Downloads that reached the store (requests made, retries included), for tests and logs. */
  attemptsMade = 0;
  readonly root: string;
  private cacheDir?: string;
  private readonly memo = new Map<string, Promise<string>>();
  private readonly verified = new Map<string, Promise<string>>();
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  private s3?: Promise<{ client: S3Like; GetObjectCommand: new (input: { Bucket: string; Key: string }) => unknown }>;
  private readonly downloads?: Counter<'source' | 'result'>;
  private readonly bytes?: Counter<'source'>;

  constructor(private readonly opts: ModelStoreOptions) {
    this.root = path.resolve(opts.root);
    if (opts.registry) {
      const registers = [opts.registry];
      this.downloads = new Counter({
        name: 'botshard_pool_model_downloads_total',
        help: 'Model files resolved from a remote store, by source (s3, https) and result (downloaded, cached, failed, mismatch)',
        labelNames: ['source', 'result'],
        registers,
      });
      this.bytes = new Counter({ name: 'botshard_pool_model_download_bytes_total', help: 'Bytes of model files downloaded, by source', labelNames: ['source'], registers });
    }
  }

  /**
   * The local file of a model location, fetched and verified if need be. Throws ModelFetchError with
   * the location, what went wrong and how to fix it.
   */
  resolve(location: string, sha256?: string): Promise<string> {
    const source = sourceOf(location);
    if (source === 'file') return this.local(location, sha256);
    const key = `${location}\n${sha256 ?? ''}`;
    let file = this.memo.get(key);
    if (file) {
      this.downloads?.inc({ source, result: 'cached' });
      return file;
    }
    file = this.fetchToCache(location, source, sha256);
    this.memo.set(key, file);
    // A failure is not cached: the next catalog (or reload) tries again.
    file.catch(() => this.memo.get(key) === file && this.memo.delete(key));
    return file;
  }

  /** Closes the S3 client's connections. */
  async close(): Promise<void> {
    const s3 = this.s3;
    this.s3 = undefined;
    if (s3) (await s3.catch(() => undefined))?.client.destroy();
  }

  private local(location: string, sha256?: string): Promise<string> {
    const file = path.resolve(this.root, location);
    if (!sha256) return Promise.resolve(file);
    const key = `${file}\n${sha256}`;
    let done = this.verified.get(key);
    if (!done) {
      done = (async () => {
        const actual = await new Promise<string>((resolve, reject) => {
          const h = createHash('sha256');
          fs.createReadStream(file).on('error', reject).on('data', (c) => h.update(c)).on('end', () => resolve(h.digest('hex')));
        }).catch((e: Error) => {
          throw new ModelFetchError(`${location} cannot be read: ${e.message}`, false);
        });
        if (actual !== sha256) throw mismatch(location, sha256, actual);
        return file;
      })();
      this.verified.set(key, done);
      done.catch(() => this.verified.delete(key));
    }
    return done;
  }

  private async fetchToCache(location: string, source: Exclude<Source, 'file'>, sha256?: string): Promise<string> {
    const dir = await this.cacheFolder();
    const name = `${createHash('sha256').update(location).digest('hex').slice(0, 32)}${sha256 ? `-${sha256}` : ''}${path.extname(location) || '.onnx'}`;
    const target = path.join(dir, name);
    // With a digest the name is content-addressed: a file left by an earlier process is the right one.
    if (sha256 && fs.existsSync(target)) {
      this.downloads?.inc({ source, result: 'cached' });
      return target;
    }
    await this.slot();
    try {
      const attempts = Math.max(1, this.opts.attempts ?? 5);
      let delay = this.opts.backoffMs ?? 250;
      for (let attempt = 1; ; attempt++) {
        try {
          await this.download(location, source, target, sha256);
          this.downloads?.inc({ source, result: 'downloaded' });
          return target;
        } catch (e) {
          const err = e instanceof ModelFetchError ? e : new ModelFetchError(String((e as Error)?.message ?? e), true);
          if (!err.retryable || attempt >= attempts) {
            this.downloads?.inc({ source, result: err.message.includes('sha256 mismatch') ? 'mismatch' : 'failed' });
            if (err.retryable) err.message = `${err.message} (gave up after ${attempt} attempts)`;
            throw err;
          }
          this.opts.onRetry?.({ location, attempt, delayMs: delay, error: err.message });
          await sleep(delay);
          delay = Math.min(delay * 2, this.opts.maxBackoffMs ?? 8000);
        }
      }
    } finally {
      this.release();
    }
  }

  /** One attempt: stream into a temporary file while hashing, check the digest, rename into place. */
  private async download(location: string, source: Exclude<Source, 'file'>, target: string, sha256?: string): Promise<void> {
    this.attemptsMade++;
    const timeout = this.opts.attemptTimeoutMs ?? 300_000;
    const body = source === 's3' ? await this.getS3(location, timeout) : await this.getHttps(location, timeout);
    const temp = `${target}.${randomBytes(6).toString('hex')}.part`;
    const hash = createHash('sha256');
    let size = 0;
    try {
      await pipeline(
        body,
        new Transform({
          transform(chunk: Buffer, _enc, done) {
            hash.update(chunk);
            size += chunk.length;
            done(null, chunk);
          },
        }),
        fs.createWriteStream(temp),
        { signal: AbortSignal.timeout(timeout) },
      );
    } catch (e) {
      fs.rmSync(temp, { force: true });
      throw new ModelFetchError(`${location}: the transfer failed after ${size} bytes: ${(e as Error).message}`, true);
    }
    const actual = hash.digest('hex');
    if (sha256 && actual !== sha256) {
      fs.rmSync(temp, { force: true });
      throw mismatch(location, sha256, actual);
    }
    replaceWith(temp, target);
    this.bytes?.inc({ source }, size);
  }

  private async getHttps(location: string, timeout: number): Promise<Readable> {
    let res: Response;
    try {
      res = await fetch(location, { signal: AbortSignal.timeout(timeout) });
    } catch (e) {
      throw new ModelFetchError(`${location} is unreachable: ${causeOf(e)}`, true);
    }
    if (!res.ok || !res.body) {
      await res.body?.cancel().catch(() => undefined);
      throw new ModelFetchError(`${location} answered HTTP ${res.status}${res.ok ? ' without a body' : ''}`, res.status === 429 || res.status >= 500);
    }
    return Readable.fromWeb(res.body as import('node:stream/web').ReadableStream);
  }

  private async getS3(location: string, timeout: number): Promise<Readable> {
    const rest = location.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const Bucket = rest.slice(0, slash);
    const Key = rest.slice(slash + 1);
    const { client, GetObjectCommand } = await this.s3Client(timeout);
    let out: { Body?: unknown };
    try {
      out = await client.send(new GetObjectCommand({ Bucket, Key }));
    } catch (e) {
      const err = e as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
      const status = err.$metadata?.httpStatusCode;
      const retryable = status === undefined || status === 429 || status >= 500;
      const fix =
        status === 403 ? ' (fix: give the pool role s3:GetObject on the bucket, see docs/aws.md)'
        : status === 404 ? ' (fix: upload the object, or correct the key in the catalog)'
        : '';
      throw new ModelFetchError(`${location}: ${status ? `S3 answered ${status} ${err.name}` : `S3 is unreachable: ${causeOf(e)}`}${fix}`, retryable);
    }
    if (!(out.Body instanceof Readable)) throw new ModelFetchError(`${location}: S3 returned no body`, true);
    return out.Body;
  }

  private s3Client(timeout: number) {
    this.s3 ??= import('@aws-sdk/client-s3').then(({ S3Client, GetObjectCommand }) => {
      const endpoint = this.opts.s3Endpoint;
      const client = new S3Client({
        region: this.opts.s3Region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
        followRegionRedirects: true,
        ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
        maxAttempts: 1, // retries are ours: one backoff policy, counted once
        requestHandler: { connectionTimeout: Math.min(timeout, 10_000), requestTimeout: timeout },
      });
      return { client: client as unknown as S3Like, GetObjectCommand: GetObjectCommand as never };
    });
    return this.s3;
  }

  /** The folder downloaded models go to (writable; the first that is, of those configured). */
  async cacheFolder(): Promise<string> {
    if (this.cacheDir) return this.cacheDir;
    const candidates = this.opts.cacheDir ? [this.opts.cacheDir] : [path.join(this.root, '.cache'), path.join(os.tmpdir(), 'botshard-models')];
    let last: Error | undefined;
    for (const dir of candidates) {
      try {
        fs.mkdirSync(dir, { recursive: true });
        fs.accessSync(dir, fs.constants.W_OK);
        this.cacheDir = path.resolve(dir);
        return this.cacheDir;
      } catch (e) {
        last = e as Error;
      }
    }
    throw new ModelFetchError(`the model cache folder ${candidates.join(' or ')} is not writable: ${last?.message} (fix: set BOTSHARD_MODEL_CACHE to a writable folder)`, false);
  }

  private async slot(): Promise<void> {
    if (this.active < Math.max(1, this.opts.concurrency ?? 4)) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }
}

function mismatch(location: string, expected: string, actual: string): ModelFetchError {
  return new ModelFetchError(
    `${location}: sha256 mismatch: the catalog expects ${expected}, the file has ${actual} (fix: upload the right file, or update sha256 in the catalog)`,
    false,
  );
}

/** The innermost message of a network error (fetch wraps ECONNREFUSED in "fetch failed"). */
function causeOf(e: unknown): string {
  let err = e as { message?: string; code?: string; cause?: unknown; errors?: unknown[] } | undefined;
  const parts: string[] = [];
  for (let depth = 0; err && depth < 4; depth++) {
    const text = err.code && !(err.message ?? '').includes(err.code) ? `${err.code} ${err.message ?? ''}`.trim() : (err.message ?? err.code ?? '');
    if (text) parts.push(text);
    err = (err.cause ?? (Array.isArray(err.errors) ? err.errors[0] : undefined)) as typeof err;
  }
  return parts.join(': ') || String(e);
}
