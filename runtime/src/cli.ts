import { parseArgs } from 'node:util';
import { UsageError, exitCodeOf, explain, isKnown } from './commands/failure';

/**
 * Each command's code, loaded when the command runs: a pool process does not load the local platform,
 * the router or HAProxy's control plane (their modules and dependencies would stay in its memory).
 */
const commands = {
  catalog: () => require('./commands/catalog') as typeof import('./commands/catalog'),
  diff: () => require('./commands/diff') as typeof import('./commands/diff'),
  plan: () => require('./commands/plan') as typeof import('./commands/plan'),
  status: () => require('./commands/status') as typeof import('./commands/status'),
  models: () => require('./local/command') as typeof import('./local/command'),
  pool: () => require('./pool/command') as typeof import('./pool/command'),
  haproxy: () => require('./haproxy/command') as typeof import('./haproxy/command'),
  router: () => require('./router/command') as typeof import('./router/command'),
  up: () => require('./local/up') as typeof import('./local/up'),
};

const USAGE = `usage: botshard <command> [options]

commands:
  catalog [--config FILE]                 print the normalised catalog JSON (what the ConfigMaps hold)
  plan [--config FILE | --catalog PATH] [--json]
                                          one row per pool: group, bots, memory used / budget, encoders
  plan --sizes STATUS [--json]            a memory per bot (and encoder) from the sizes the pools measured, where it differs
                                          from the declared one (STATUS: a saved \`botshard status --json\`)
  diff OLD NEW [--json]                   which bots move between two configs or catalogs, and why
  up [--config FILE] [--port 8080] [--grpc-port 8081] [--models DIR] [--tenant-keys DIR] [--router node|haproxy]
                                          run the whole platform locally: a process per pool and the router
  status [--url URL] [--json]             a running platform: each pool's readiness, bots, queue, generation, memory
                                          (URL: the router's metrics port, default http://127.0.0.1:9090)
  models [--config FILE] [--models DIR] [--degraded HEAD[=SHUFFLE[,TEMPERATURE]]]... [--sized]
                                          write demo ONNX models for the catalog's bots and candidates (default DIR:
                                          its modelRoot); --degraded trains a head worse: SHUFFLE (0-1, default 0.5) of
                                          its intents learn another's examples, TEMPERATURE (default 10) lower is less sure;
                                          --sized writes each head at its declared memory (real weights, same answers)
  pool --pool NAME --catalog PATH [--models DIR] [--port 8080] [--grpc-port 8081] [--metrics-port 9090] [--host 0.0.0.0]
                                          run one pool server (env: BOTSHARD_POOL, BOTSHARD_CATALOG, ...; docs/pool.md)
  router --catalog PATH (--pool-url TEMPLATE | --pool-urls FILE) [--pool-grpc-url TEMPLATE | --pool-grpc-urls FILE]
         [--pool-replicas URL] [--port 8080] [--grpc-port 8081] [--metrics-port 9090] [--tenant-keys DIR]
                                          run the router (env: BOTSHARD_CATALOG, BOTSHARD_POOL_URL, ...; docs/router.md)
  haproxy --catalog PATH (--pool-url TEMPLATE | --pool-urls FILE) [--pool-grpc-url TEMPLATE | --pool-grpc-urls FILE]
          [--pool-replicas URL] [--port 8080] [--grpc-port 8081] [--metrics-port 9090] [--haproxy-metrics-port 9101] [--tenant-keys DIR]
                                          the router with HAProxy carrying the requests (docs/router.md, "HAProxy mode")

FILE is a bots.config.ts (default ./bots.config.ts) or a catalog .json; PATH a catalog file or folder.`;

function run(argv: string[]): string {
  const [command, ...rest] = argv;
  const options = {
    config: { type: 'string' },
    catalog: { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
    models: { type: 'string' },
    pool: { type: 'string' },
    port: { type: 'string' },
    'metrics-port': { type: 'string' },
    'grpc-port': { type: 'string' },
    host: { type: 'string' },
    'pool-url': { type: 'string' },
    'pool-urls': { type: 'string' },
    'pool-grpc-url': { type: 'string' },
    'pool-grpc-urls': { type: 'string' },
    'pool-replicas': { type: 'string' },
    'haproxy-metrics-port': { type: 'string' },
    router: { type: 'string' },
    url: { type: 'string' },
    'tenant-keys': { type: 'string' },
    degraded: { type: 'string', multiple: true },
    sized: { type: 'boolean', default: false },
    sizes: { type: 'string' },
  } as const;
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help || command === undefined || command === 'help' || command === '--help' || command === '-h') return USAGE;
  const source = values.catalog ?? values.config ?? 'bots.config.ts';
  switch (command) {
    case 'catalog':
      return commands.catalog().catalogCommand({ config: source });
    case 'plan':
      if (values.catalog && values.config) throw new UsageError('give --config or --catalog, not both');
      if (values.sizes !== undefined) return commands.plan().sizesCommand({ file: values.sizes, json: values.json });
      return commands.plan().planCommand({ config: source, json: values.json });
    case 'diff':
      if (positionals.length !== 2) throw new UsageError(`diff takes two configs or catalogs (OLD NEW), got ${positionals.length}`);
      return commands.diff().diffCommand({ before: positionals[0], after: positionals[1], json: values.json });
    case 'models':
      return commands.models().modelsCommand({ config: source, models: values.models, degraded: values.degraded, sized: values.sized });
    case 'pool':
      return commands.pool().poolCommand({ pool: values.pool, catalog: values.catalog, models: values.models, port: values.port, metricsPort: values['metrics-port'], grpcPort: values['grpc-port'], host: values.host });
    case 'up':
      return commands.up().upCommand({ config: source, port: values.port, grpcPort: values['grpc-port'], models: values.models, tenantKeys: values['tenant-keys'], router: values.router });
    case 'router':
      return commands.router().routerCommand({ catalog: values.catalog, poolUrl: values['pool-url'], poolUrls: values['pool-urls'], poolGrpcUrl: values['pool-grpc-url'], poolGrpcUrls: values['pool-grpc-urls'], poolReplicas: values['pool-replicas'], port: values.port, metricsPort: values['metrics-port'], grpcPort: values['grpc-port'], host: values.host, tenantKeys: values['tenant-keys'] });
    case 'status':
      return commands.status().statusCommand({ url: values.url, json: values.json });
    case 'haproxy':
      return commands.haproxy().haproxyCommand({ catalog: values.catalog, poolUrl: values['pool-url'], poolUrls: values['pool-urls'], poolGrpcUrl: values['pool-grpc-url'], poolGrpcUrls: values['pool-grpc-urls'], poolReplicas: values['pool-replicas'], port: values.port, metricsPort: values['metrics-port'], grpcPort: values['grpc-port'], haproxyMetricsPort: values['haproxy-metrics-port'], host: values.host, tenantKeys: values['tenant-keys'] });
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

/** Runs the `botshard` command; returns the exit code. Errors users can meet never print a stack trace. */
export function main(argv: string[]): number {
  try {
    const out = run(argv);
    if (out) process.stdout.write(`${out}\n`); // `pool` prints nothing: it logs JSON lines
    return 0;
  } catch (e) {
    process.stderr.write(`botshard: ${explain(e)}\n${e instanceof UsageError ? `\n${USAGE}\n` : ''}`);
    if (!isKnown(e)) process.stderr.write('botshard: this is a bug: please report it with the lines above\n');
    return exitCodeOf(e);
  }
}
