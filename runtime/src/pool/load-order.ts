/**
 * The order of loads and unloads in a lane, against its waiting requests, as plain rules over the lane's
 * queues (no thread: tested on their own). A request never runs before the load of a model it uses; other
 * requests go past waiting loads; an unload waits for the requests submitted before it that use its
 * model (they are for the copy it unloads), and does not hold up the loads queued behind it.
 */
import { Job, Lane, uses } from './lane';

/** What these rules read of a lane. */
export type LaneWork = Pick<Lane, 'control' | 'queue' | 'inflight'>;

/**
 * The first load or unload that can go now: an unload once no request submitted before it waits for its
 * model any more; a load unless an unload of the same model waits before it. So an unload held by its
 * model's requests does not hold up the loads queued behind it (other requests wait for those).
 */
export function nextControl(lane: LaneWork): Job | undefined {
  const pendingUnloads = new Set<string>();
  for (const job of lane.control) {
    const p = job.payload;
    if (p.type === 'unload') {
      if (!needed(lane, p.key, job.seq)) return job;
      pendingUnloads.add(p.key);
    } else if (p.type === 'load' && !pendingUnloads.has(p.key)) {
      return job;
    }
  }
  return undefined;
}

/**
 * An unload that can go now, with the load that follows it in the lane, as one message (the load first
 * in the list, the unloads it releases before loading after it): a cold bot's miss evicts one bot and
 * loads another, one message instead of two. Unloads wait for the end of the event loop's turn (see
 * `Lanes.submit`), so the load of the same miss is queued by then. Anything else goes alone.
 */
export function withLoad(lane: LaneWork, first: Job): Job[] {
  if (first.payload.type !== 'unload') return [first];
  const start = lane.control.indexOf(first);
  // Unloads held before this one (nextControl passed them): a load of their model must wait for them.
  const held = new Set(lane.control.slice(0, start).flatMap((j) => (j.payload.type === 'unload' ? [j.payload.key] : [])));
  const unloads: Job[] = [];
  for (const job of lane.control.slice(start)) {
    const p = job.payload;
    if (p.type === 'unload') {
      if (needed(lane, p.key, job.seq)) return [first]; // the load may depend on what this unload is held for
      if (!job.done) unloads.push(job);
    } else if (p.type === 'load') {
      return job.done || held.has(p.key) ? [first] : [job, ...unloads];
    }
  }
  return [first];
}

/** A load or unload is in flight in the lane. */
export function controlInFlight(lane: LaneWork): boolean {
  for (const jobs of lane.inflight.values()) if (jobs[0].payload.type !== 'infer') return true;
  return false;
}

/**
 * Bots with a waiting request that uses a model whose load has not been sent yet: they wait for it (the
 * thread runs its messages in order, so once the load is sent they may follow it). A request submitted
 * before an unload of that model, which waits ahead of the load, is for the copy being unloaded: it goes
 * first. Requests of other bots go past a waiting load.
 */
export function waitingForLoad(lane: LaneWork): Set<string> {
  const blocked = new Set<string>();
  if (!lane.control.some((j) => j.payload.type === 'load')) return blocked;
  // Per model with a load waiting: requests submitted after this sequence number wait for it.
  const after = new Map<string, number>();
  const lastUnload = new Map<string, number>();
  for (const job of lane.control) {
    const p = job.payload;
    if (p.type === 'unload') lastUnload.set(p.key, job.seq);
    else if (p.type === 'load' && !after.has(p.key)) after.set(p.key, lastUnload.get(p.key) ?? 0);
  }
  // A bot's requests go in order: its oldest waiting request decides.
  const seen = new Set<string>();
  for (const job of lane.queue.jobs()) {
    if (seen.has(job.bot)) continue;
    seen.add(job.bot);
    for (const [key, seq] of after) if (job.seq > seq && uses(job, key)) blocked.add(job.bot);
  }
  return blocked;
}

/** A waiting request of the lane uses the model (`before`: only a request submitted before that sequence number). */
export function needed(lane: LaneWork, key: string, before = Infinity): boolean {
  for (const job of lane.queue.jobs()) if (job.seq < before && uses(job, key)) return true;
  return false;
}
