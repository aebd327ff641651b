/** A real S3-protocol server (s3rver) on loopback for the model store tests, and a proxy that can fail or slow requests. */
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { tempDir } from '../pool/support';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const S3rver = require('s3rver');

export const BUCKET = 'botshard-models';

export interface S3Server {
  endpoint: string;
  /** Requests the server received, as "METHOD /path". */
  requests: string[];
  /** GET requests for one object key. */
  gets(key: string): number;
  put(key: string, body: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/** s3rver's fixed credentials, given to the SDK through the standard chain (environment variables). */
export function useS3rverCredentials(): () => void {
  const saved = { ...process.env };
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1', AWS_EC2_METADATA_DISABLED: 'true' });
  delete process.env.AWS_PROFILE;
  delete process.env.AWS_SESSION_TOKEN;
  return () => {
    for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_REGION', 'AWS_EC2_METADATA_DISABLED', 'AWS_PROFILE', 'AWS_SESSION_TOKEN']) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  };
}

/** Starts s3rver on 127.0.0.1 (a free port) over a temp folder, with the models bucket. */
export async function startS3(): Promise<S3Server> {
  const server = new S3rver({ address: '127.0.0.1', port: 0, directory: tempDir('s3rver'), silent: true, configureBuckets: [{ name: BUCKET }] });
  const address = (await server.run()) as AddressInfo;
  const endpoint = `http://127.0.0.1:${address.port}`;
  const requests: string[] = [];
  (server.httpServer as http.Server).on('request', (req: http.IncomingMessage) => requests.push(`${req.method} ${decodeURIComponent((req.url ?? '').split('?')[0])}`));
  const client = new S3Client({ endpoint, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, requestChecksumCalculation: 'WHEN_REQUIRED' });
  return {
    endpoint,
    requests,
    gets: (key) => requests.filter((r) => r === `GET /${BUCKET}/${key}`).length,
    put: async (key, body) => {
      await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
    },
    close: async () => {
      client.destroy();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        (server.httpServer as http.Server).closeAllConnections();
      });
    },
  };
}

export interface Proxy {
  endpoint: string;
  /** Requests answered 503 without reaching the upstream. */
  failed: number;
  /** Most requests in flight at once. */
  peak: number;
  close(): Promise<void>;
}

/** A loopback proxy to `upstream`: answers 503 to the first `fail` requests, and delays the others by `delayMs`. */
export async function startProxy(upstream: string, opts: { fail?: number; delayMs?: number } = {}): Promise<Proxy> {
  const target = new URL(upstream);
  let inflight = 0;
  const proxy: Proxy = { endpoint: '', failed: 0, peak: 0, close: async () => undefined };
  const server = http.createServer((req, res) => {
    if (proxy.failed < (opts.fail ?? 0)) {
      proxy.failed++;
      res.writeHead(503, { 'content-type': 'application/xml' }).end('<Error><Code>SlowDown</Code><Message>try again</Message></Error>');
      return;
    }
    inflight++;
    proxy.peak = Math.max(proxy.peak, inflight);
    setTimeout(() => {
      const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
        r.on('end', () => inflight--);
      });
      up.on('error', () => {
        inflight--;
        res.destroy();
      });
      req.pipe(up);
    }, opts.delayMs ?? 0);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return proxy;
}

export const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
