/**
 * One rule list for both data planes (runtime/src/routing/admission-rules.ts): every admission rule's
 * message is what the Node router answers (a real router app, requests injected) and what HAProxy's
 * rendered frontend answers, and a message changed in the list changes in both. The group limit is the one
 * rule HAProxy enforces in its backends (maxconn and queue) instead of its frontend.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { parseCatalog } from '@botshard/runtime/catalog';
import { ConfigInput, renderConfig } from '@botshard/runtime/haproxy/config';
import { buildRouter } from '@botshard/runtime/router/server';
import { ADMISSION_RULES, AdmissionRule, RULES, RefusalReason } from '@botshard/runtime/routing/admission-rules';
import { hashKey } from '@botshard/runtime/routing/tenants';
import { ProtocolError } from '@botshard/runtime/oip';
import { grpcError } from '@botshard/runtime/oip/grpc';

const bot = (id: string, tenant: string) => ({ id, tenant, realtime: true, model: { head: `heads/${id}.onnx`, memory: '2Mi' }, intents: [{ name: 'a' }] });
const catalog = parseCatalog({
  platform: { auth: 'tenant-keys' },
  tenants: [{ id: 'acme' }, { id: 'globex' }],
  groups: [{ name: 'rt', realtime: true, memory: '1Gi', pools: 1, locality: 'none', concurrency: 2, replicas: { min: 1, max: 1 } }],
  bots: [bot('acme-bot', 'acme'), bot('globex-bot', 'globex')],
});

const haproxyInput: ConfigInput = { host: '127.0.0.1', port: 8080, grpcPort: 8081, controlGrpc: '127.0.0.1:40000', metricsPort: 9101, dir: '/run/botshard', backends: [], auth: true, tenantRate: 5, version: '0.1.0' };

/** The Node router's answer to each rule's request, in the order of the list; `keysDir` empties last (no_keys). */
async function nodeAnswers(app: FastifyInstance, keysDir: string): Promise<Map<RefusalReason, { status: number; error: string; headers: Record<string, unknown> }>> {
  const out = new Map<RefusalReason, { status: number; error: string; headers: Record<string, unknown> }>();
  const ask = async (reason: RefusalReason, url: string, key?: string) => {
    const res = await app.inject({ method: 'GET', url, headers: key ? { authorization: `Bearer ${key}` } : {} });
    out.set(reason, { status: res.statusCode, error: res.json().error, headers: res.headers });
  };
  await ask('bad_id', '/v2/models/Bad_Id/ready', 'acme-secret');
  await ask('no_key', '/v2/models/acme-bot/ready');
  await ask('bad_key', '/v2/models/acme-bot/ready', 'wrong');
  await ask('unknown_bot', '/v2/models/nobody/ready', 'acme-secret');
  await ask('other_tenant', '/v2/models/globex-bot/ready', 'acme-secret');
  // The rate (1 a second, bursts of 2, on a clock that stands still): two requests pass it, to the group limit (0).
  await ask('group_concurrency', '/v2/models/acme-bot/ready', 'acme-secret');
  await ask('group_concurrency', '/v2/models/acme-bot/ready', 'acme-secret');
  await ask('rate_limit', '/v2/models/acme-bot/ready', 'acme-secret');
  fs.rmSync(path.join(keysDir, 'acme'));
  fs.rmSync(path.join(keysDir, 'globex'));
  for (let i = 0; i < 100 && (await app.inject({ url: '/v2/models/acme-bot/ready', headers: { authorization: 'Bearer acme-secret' } })).statusCode !== 401; i++) await new Promise((r) => setTimeout(r, 20));
  await ask('no_keys', '/v2/models/acme-bot/ready', 'acme-secret');
  return out;
}

function router(): { app: FastifyInstance; keysDir: string } {
  const keysDir = fs.mkdtempSync(path.join(os.tmpdir(), 'botshard-refusals-'));
  fs.writeFileSync(path.join(keysDir, 'acme'), `${hashKey('acme-secret')}\n`);
  fs.writeFileSync(path.join(keysDir, 'globex'), `${hashKey('globex-secret')}\n`);
  const app = buildRouter({ catalog, poolUrl: () => 'http://127.0.0.1:9', tenantKeys: keysDir, tenantRate: 1, now: () => 0, groupConcurrency: { rt: 0 }, pollMs: 20, logger: false, processMetrics: false });
  return { app, keysDir };
}

/** The frontend's refusals of a status: each line and its message, the message's `%[...]` samples replaced by `*`. */
function haproxyRefusals(config: string, status: number): Array<{ line: string; message: string }> {
  const lines = config.split('\n').filter((l) => l.startsWith(`  http-request return status ${status} `));
  const errors = lines.map((line) => ({ line, error: JSON.parse(/ (?:lf-)?string '(\{.*\})'/.exec(line)![1]).error as string | undefined }));
  // Not `{"ready":false}`: only error answers.
  return errors.filter((e) => e.error !== undefined).map(({ line, error }) => ({ line, message: error!.replace(/%\[[^\]]*\]/g, '*') }));
}
const haproxyMessages = (config: string, status: number) => haproxyRefusals(config, status).map((r) => r.message);

/** A rule's message with every field it names as `*` (the bot id of bad_id left out, as HAProxy does). */
const withStars = (rule: AdmissionRule) => rule.message({ bot: '*', generation: '*', tenant: '*', group: '*' } as never);

describe('the admission rules, rendered into both data planes', () => {
  test('every rule is in the list once, in the order the Node router checks them', () => {
    expect(ADMISSION_RULES.map((r) => r.reason)).toEqual(['bad_id', 'no_keys', 'no_key', 'bad_key', 'unknown_bot', 'other_tenant', 'rate_limit', 'group_concurrency']);
    expect(ADMISSION_RULES.map((r) => r.reason).sort()).toEqual(Object.keys(RULES).sort());
  });

  test("the Node router answers each rule with the rule's status, message and headers", async () => {
    const { app, keysDir } = router();
    try {
      const answers = await nodeAnswers(app, keysDir);
      const generation = app.router.table.generation;
      const expected: Record<RefusalReason, string> = {
        bad_id: RULES.bad_id.message({ id: '"Bad_Id"' }),
        no_keys: RULES.no_keys.message({}),
        no_key: RULES.no_key.message({}),
        bad_key: RULES.bad_key.message({}),
        unknown_bot: RULES.unknown_bot.message({ bot: 'nobody', generation }),
        other_tenant: RULES.other_tenant.message({ bot: 'globex-bot' }),
        rate_limit: RULES.rate_limit.message({ tenant: 'acme' }),
        group_concurrency: RULES.group_concurrency.message({ group: 'rt' }),
      };
      for (const rule of ADMISSION_RULES) {
        const a = answers.get(rule.reason)!;
        expect([rule.reason, a.status, a.error]).toEqual([rule.reason, rule.status, expected[rule.reason]]);
        for (const [name, value] of Object.entries(rule.headers ?? {})) expect([rule.reason, a.headers[name]]).toEqual([rule.reason, value]);
        if (rule.retryAfterSeconds !== undefined) expect([rule.reason, a.headers['retry-after']]).toEqual([rule.reason, expect.stringMatching(/^[1-9]\d*$/)]);
      }
    } finally {
      await app.close();
    }
  });

  test("HAProxy's frontend answers each rule but the group limit (its backends' maxconn) with the rule's status, message and headers", () => {
    const config = renderConfig(haproxyInput);
    for (const rule of ADMISSION_RULES) {
      const rendered = haproxyMessages(config, rule.status);
      if (rule.reason === 'group_concurrency') {
        expect(rendered).not.toContain(withStars(rule));
        continue;
      }
      // bad_id: HAProxy cannot JSON-quote the id, so its message leaves it out.
      expect([rule.reason, rendered]).toEqual([rule.reason, expect.arrayContaining([withStars(rule)])]);
      const { line } = haproxyRefusals(config, rule.status).find((r) => r.message === withStars(rule))!;
      for (const [name, value] of Object.entries(rule.headers ?? {})) expect(line).toContain(` hdr ${name} ${value} `);
      if (rule.retryAfterSeconds !== undefined) expect(line).toContain(` hdr retry-after ${rule.retryAfterSeconds} `);
    }
  });

  test("HAProxy's gRPC frontend answers each rule but the group limit with the status, message and metadata of the Node router's gRPC refusal", () => {
    const config = renderConfig(haproxyInput);
    // Each trailers-only refusal of the gRPC frontend: its headers (HAProxy's argument quoting undone), samples as `*`.
    const refusals = config
      .split('\n')
      .filter((l) => l.startsWith('  http-request return status 200 hdr grpc-status '))
      .map((l) => Object.fromEntries([...l.matchAll(/ hdr ([a-z-]+) ("(?:[^"\\]|\\.)*"|\S+)/g)].map(([, k, v]) => [k, (v.startsWith('"') ? v.slice(1, -1).replace(/\\(.)/g, '$1') : v).replace(/%\[[^\]]*\]/g, '*')])));
    for (const rule of ADMISSION_RULES) {
      const found = refusals.find((r) => r['grpc-message'] === withStars(rule));
      if (rule.reason === 'group_concurrency') {
        expect(found).toBeUndefined();
        continue;
      }
      const node = grpcError(new ProtocolError(rule.status, withStars(rule), { retryAfterSeconds: rule.retryAfterSeconds, overloaded: rule.overloaded, headers: rule.headers }));
      const { 'grpc-status': code, 'grpc-message': message, ...metadata } = found!;
      expect([rule.reason, Number(code), message, metadata]).toEqual([rule.reason, node.code, node.details, node.metadata!.getMap()]);
    }
    expect(refusals).toHaveLength(ADMISSION_RULES.length - 1);
  });

  describe('a message changed in the list', () => {
    const originals = new Map<RefusalReason, AdmissionRule['message']>();
    beforeAll(() => {
      for (const rule of ADMISSION_RULES) {
        const message = rule.message;
        originals.set(rule.reason, message);
        (rule as { message: AdmissionRule['message'] }).message = (f) => `changed ${rule.reason}: ${message(f)}`;
      }
    });
    afterAll(() => {
      for (const rule of ADMISSION_RULES) (rule as { message: AdmissionRule['message'] }).message = originals.get(rule.reason)!;
    });

    test('changes in the Node router and in HAProxy alike', async () => {
      const config = renderConfig(haproxyInput);
      const { app, keysDir } = router();
      try {
        const answers = await nodeAnswers(app, keysDir);
        for (const rule of ADMISSION_RULES) {
          expect([rule.reason, answers.get(rule.reason)!.error]).toEqual([rule.reason, expect.stringMatching(new RegExp(`^changed ${rule.reason}: `))]);
          if (rule.reason !== 'group_concurrency') expect([rule.reason, haproxyMessages(config, rule.status).some((m) => m.startsWith(`changed ${rule.reason}: `))]).toEqual([rule.reason, true]);
        }
      } finally {
        await app.close();
      }
    });
  });
});
