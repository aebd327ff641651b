/**
 * The quarantine lane: one more lane, started when a bot is first confined. A confined bot's models are
 * copied into it (its requests wait behind those loads), its waiting requests move there at once, and the
 * copies go when no confined bot uses them any more.
 */
import type { Lane, Payload } from '../lane';
import { ServiceTimes } from '../scheduler';
import { Quarantine } from './rule';

/** A bot moved into the quarantine lane or out of it. */
export interface QuarantineChange {
  bot: string;
  confined: boolean;
  /** Its average run time (ms). */
  meanMs: number;
  /** What a slow run is now (ms): the group's quarantine share of its timeout. */
  slowMs: number;
}

/** What the quarantine lane needs of the pool's lanes. */
export interface QuarantineHost {
  /** The home lanes (one per thread of the pool). */
  homes(): readonly Lane[];
  /** Starts the quarantine lane's thread: one message in flight, one request per message. */
  start(): Lane;
  /** Queues a load or an unload in a lane. */
  submit(lane: Lane, payload: Payload): Promise<unknown>;
  /** Sends what a lane can send now. */
  pump(lane: Lane): void;
  /** What a slow run is now (ms). */
  slowMs(): number;
  /** Called when a bot is confined or released. */
  onChange?(change: QuarantineChange): void;
}

/** The models a bot uses: its head, and its encoder if any. */
export interface ModelKeys {
  encoder?: string;
  head: string;
}

export class QuarantineLane {
  private readonly rule: Quarantine;
  /** The lane, once a bot has been confined. */
  private current?: Lane;
  /** The models of each confined bot copied into the lane. */
  private readonly copies = new Map<string, Set<string>>();
  /** The pool is stopping: loads failing now say nothing about the copies. */
  private closed = false;

  constructor(
    private readonly times: ServiceTimes,
    private readonly host: QuarantineHost,
  ) {
    this.rule = new Quarantine(times, { slowMs: () => host.slowMs() });
  }

  /** Bots in the quarantine lane. */
  get bots(): ReadonlySet<string> {
    return this.rule.bots;
  }

  has(bot: string): boolean {
    return this.rule.has(bot);
  }

  /** The quarantine lane, once started. */
  get lane(): Lane | undefined {
    return this.current;
  }

  /** Its thread died and was started again. */
  replaced(fresh: Lane): void {
    this.current = fresh;
  }

  /** A run of the bot was measured: it may enter quarantine (its waiting requests follow it) or leave it. */
  measured(bot: string): void {
    const change = this.rule.check(bot);
    if (!change) return;
    if (change === 'released') this.release(bot);
    else this.moveWaiting(bot);
    this.report(bot, change === 'confined');
  }

  /**
   * The lane a bot's request runs in: its home lane, or the quarantine lane while the bot is confined (its
   * models are copied there first: the request waits behind their loads).
   */
  laneFor(home: Lane, bot: string, models: ModelKeys): Lane {
    if (!this.rule.has(bot)) return home;
    const lane = (this.current ??= this.host.start());
    let keys = this.copies.get(bot);
    if (!keys) this.copies.set(bot, (keys = new Set()));
    for (const key of [models.encoder, models.head]) {
      if (key === undefined || keys.has(key)) continue;
      const model = home.models.get(key);
      if (model === undefined) return home; // not loaded at home (yet): nothing to copy
      keys.add(key);
      if (!lane.models.has(key)) {
        lane.models.set(key, model);
        this.host.submit(lane, { type: 'load', key, ...model }).catch(() => this.copyFailed(key));
      }
    }
    return lane;
  }

  /** A bot just confined: its requests still waiting in its home lane move to the quarantine lane at once. */
  private moveWaiting(bot: string): void {
    for (const home of this.host.homes()) {
      const waiting = [...home.queue.jobs()].filter((j) => j.bot === bot);
      for (const job of waiting) {
        if (job.payload.type !== 'infer') continue;
        const lane = this.laneFor(home, bot, job.payload);
        if (lane === home) continue;
        home.queue.remove(job);
        job.lane = lane;
        lane.queue.push(job);
      }
      this.host.pump(home);
    }
    if (this.current) this.host.pump(this.current);
  }

  /** A model was unloaded from its home lane: its copy goes too, and a bot left with no copy leaves quarantine. */
  unloaded(key: string): void {
    for (const [bot, keys] of this.copies) {
      if (!keys.delete(key)) continue;
      this.dropCopy(key);
      if (keys.size === 0) {
        this.copies.delete(bot);
        this.rule.forget(bot);
      }
    }
  }

  /**
   * A model could not be copied into the quarantine lane (or loaded there again after the lane's thread
   * died): the bots that needed it leave quarantine and run in their home lane again, rather than fail there.
   */
  copyFailed(key: string): void {
    if (this.closed) return;
    this.current?.models.delete(key);
    for (const [bot, keys] of [...this.copies]) {
      if (!keys.has(key)) continue;
      keys.delete(key);
      this.rule.forget(bot);
      this.release(bot);
      this.report(bot, false);
    }
  }

  /** A bot leaves quarantine: its copies go once no other confined bot uses them. */
  private release(bot: string): void {
    const keys = this.copies.get(bot);
    this.copies.delete(bot);
    for (const key of keys ?? []) this.dropCopy(key);
  }

  private dropCopy(key: string): void {
    const lane = this.current;
    if (!lane || [...this.copies.values()].some((keys) => keys.has(key))) return;
    if (lane.models.delete(key)) this.host.submit(lane, { type: 'unload', key }).catch(() => undefined);
  }

  /** The pool is stopping. */
  close(): void {
    this.closed = true;
  }

  private report(bot: string, confined: boolean): void {
    this.host.onChange?.({ bot, confined, meanMs: this.times.estimate(bot), slowMs: this.host.slowMs() });
  }
}
