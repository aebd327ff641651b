/**
 * The Node.js options botshard's processes (pools, router, HAProxy control plane) run with, in
 * `NODE_OPTIONS` in the manifests and on the command line in `botshard up` and the benchmarks.
 *
 * A young generation of 2 MiB semi-spaces instead of Node's 16: V8 keeps both semi-spaces resident, so
 * every MiB here is two MiB of every process, pools holding no model included (`npm run bench:memory`
 * measures an idle pool), and a process that plans a large catalog at start-up keeps no extra pages from
 * it (`npm run bench:catalog`). Requests allocate a few KiB each: a scavenge every few hundred requests,
 * well under a millisecond; in alternating runs of a pool under load at 2 and at 4 MiB, the machine's noise
 * was larger than any difference.
 */
export const NODE_OPTIONS = '--max-semi-space-size=2';

/**
 * The environment botshard's processes run with beside NODE_OPTIONS (in the manifests' env, and in the
 * processes `botshard up` and the benchmarks start; a variable already set in the caller's environment
 * wins locally).
 *
 * glibc's malloc with a fixed mmap threshold of 1 MiB: by default glibc raises its threshold to the
 * largest block freed so far, so once the first model files are read and freed, later files' buffers and
 * onnxruntime's copies of their weights come from the threads' heaps, and what they free there stays in
 * the process. Fixed, a block of 1 MiB or more is mapped on its own and returned when freed
 * (`npm run bench:approaches` measures sharding's overhead both ways: bench/results/approaches.json).
 */
export const PROCESS_ENV: Readonly<Record<string, string>> = { MALLOC_MMAP_THRESHOLD_: '1048576' };

/** NODE_OPTIONS as arguments for `node`, before the script. */
export const nodeArgs = (): string[] => NODE_OPTIONS.split(' ');
