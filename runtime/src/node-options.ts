/**
 * The Node.js options botshard's processes (pools, router, HAProxy control plane) run with, in
 * `NODE_OPTIONS` in the manifests and on the command line in `botshard up` and the benchmarks.
 *
 * A young generation of 4 MiB semi-spaces instead of Node's 16: a process that plans a large catalog
 * at start-up (thousands of bots) fills the default young generation once and keeps those pages
 * resident; with 4 MiB it keeps 16 MiB less, whatever the catalog (`npm run bench:catalog`: a pool's
 * RSS over a pool of its own bots alone went from 16.9 to 5.7 MiB at 10,000 bots). Requests allocate a
 * few KiB each: a scavenge every few hundred requests, well under a millisecond.
 */
export const NODE_OPTIONS = '--max-semi-space-size=4';

/** NODE_OPTIONS as arguments for `node`, before the script. */
export const nodeArgs = (): string[] => NODE_OPTIONS.split(' ');
