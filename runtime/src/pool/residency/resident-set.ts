/**
 * Which bots a pool keeps loaded when its group overcommits: a resident set within a byte limit, in the
 * catalog's declared memory (the pool's overhead, each resident head, and each encoder once while any
 * resident bot uses it), the same bytes placement counts. Pure bookkeeping: on-demand.ts decides the loads
 * and evictions, the pool's engine loads and unloads the models.
 *
 * Which bot goes when room is needed: the one asked least lately, the least recently used among equals
 * (LFU with aging, as W-TinyLFU-style caches do; plain LRU keeps whatever was asked last, and under
 * skewed traffic a stream of rarely asked bots pushes out the hot ones). Every request counts for its
 * bot, resident or not, and every count halves each `agingRequests` requests, so a bot that was hot an
 * hour ago does not stay forever (bench:cold compares its hit rate with plain LRU's).
 */

/** What a bot costs resident: its head and, shared with the other bots that use it, its encoder. */
export interface ResidentCost {
  head: number;
  encoder?: string;
  /** The encoder's declared bytes (ignored without an encoder). */
  encoderBytes: number;
}

/** Counts halve every this many requests at least (and every 20 per resident bot in a larger set). */
const MIN_AGING_REQUESTS = 1000;

export class Residency {
  /** Resident (or reserved: being loaded) bots, least recently used first. */
  private readonly bots = new Map<string, ResidentCost>();
  /** Requests per bot lately (resident or not), halved every `agingRequests` requests. */
  private readonly heat = new Map<string, number>();
  private sinceAging = 0;
  /** Resident encoders and how many resident bots use each. */
  private readonly encoders = new Map<string, { bytes: number; users: number }>();
  private bytes: number;

  constructor(
    /** Most declared bytes resident at once: the pool's memory at its group's fill factor. */
    public limit: number,
    /** Declared bytes of the idle pool process. */
    private readonly overhead: number,
    /** Requests between two halvings of the counts, at least. */
    private readonly minAgingRequests = MIN_AGING_REQUESTS,
  ) {
    this.bytes = overhead;
  }

  /** Declared bytes resident now (the overhead included). */
  get used(): number {
    return this.bytes;
  }

  get size(): number {
    return this.bots.size;
  }

  has(id: string): boolean {
    return this.bots.has(id);
  }

  /** Resident bots, least recently used first. */
  order(): string[] {
    return [...this.bots.keys()];
  }

  /** Requests between two halvings of every count. */
  get agingRequests(): number {
    return Math.max(this.minAgingRequests, 20 * this.bots.size);
  }

  /** How often the bot was asked lately (requests, halved every `agingRequests`). */
  heatOf(id: string): number {
    return this.heat.get(id) ?? 0;
  }

  /** A request used the bot: it counts for it, and a resident bot becomes the most recently used. */
  touch(id: string): void {
    this.heat.set(id, this.heatOf(id) + 1);
    if (++this.sinceAging >= this.agingRequests) this.age();
    const cost = this.bots.get(id);
    if (!cost) return;
    this.bots.delete(id);
    this.bots.set(id, cost);
  }

  private age(): void {
    this.sinceAging = 0;
    for (const [id, n] of this.heat) {
      if (n < 1) this.heat.delete(id); // asked once, long ago: forgotten
      else this.heat.set(id, n / 2);
    }
  }

  /** What adding the bot would add now: its head, and its encoder unless a resident bot already uses it. */
  costOf(cost: ResidentCost): number {
    return cost.head + (cost.encoder !== undefined && !this.encoders.has(cost.encoder) ? cost.encoderBytes : 0);
  }

  /**
   * The bots to evict (asked least lately first, the least recently used among equals) for this bot to
   * fit: none if it fits now; undefined if it
   * cannot fit even once every bot `evictable` allows is gone (those in use are not). An encoder is
   * freed only with the last resident bot that uses it, and never when the new bot uses it too.
   */
  victims(cost: ResidentCost, evictable: (id: string) => boolean): string[] | undefined {
    let need = this.bytes + this.costOf(cost) - this.limit;
    if (need <= 0) return [];
    // The evictable bots with their counts, least recently used first; then the first in eviction order,
    // taken one at a time (a miss usually needs one or two: no sort of the whole set).
    const candidates: Array<{ id: string; heat: number; cost: ResidentCost }> = [];
    for (const [id, c] of this.bots) if (evictable(id)) candidates.push({ id, heat: this.heatOf(id), cost: c });
    const users = new Map<string, number>();
    const chosen: string[] = [];
    while (candidates.length > 0) {
      let next = 0;
      for (let i = 1; i < candidates.length; i++) if (candidates[i].heat < candidates[next].heat) next = i;
      const { id, cost: c } = candidates.splice(next, 1)[0];
      chosen.push(id);
      need -= c.head;
      if (c.encoder !== undefined && c.encoder !== cost.encoder) {
        const left = (users.get(c.encoder) ?? this.encoders.get(c.encoder)!.users) - 1;
        users.set(c.encoder, left);
        if (left === 0) need -= c.encoderBytes;
      }
      if (need <= 0) return chosen;
    }
    return undefined;
  }

  /** Counts a bot resident (from the moment its load starts, so that loads under way keep their room). */
  add(id: string, cost: ResidentCost): void {
    if (this.bots.has(id)) return;
    this.bytes += this.costOf(cost);
    this.bots.set(id, cost);
    if (cost.encoder === undefined) return;
    const e = this.encoders.get(cost.encoder);
    if (e) e.users++;
    else this.encoders.set(cost.encoder, { bytes: cost.encoderBytes, users: 1 });
  }

  /** The bot is no longer resident (evicted, failed to load, moved away or removed). */
  remove(id: string): void {
    const cost = this.bots.get(id);
    if (!cost) return;
    this.bots.delete(id);
    this.bytes -= cost.head;
    if (cost.encoder === undefined) return;
    const e = this.encoders.get(cost.encoder)!;
    if (--e.users === 0) {
      this.encoders.delete(cost.encoder);
      this.bytes -= e.bytes;
    }
  }

  /**
   * A resident bot's candidate version loaded (bytes > 0) or unloaded (bytes < 0): counted with the bot, so
   * that cold loads make room for it and evicting the bot frees it. Nothing for a bot that is not resident.
   */
  grow(id: string, bytes: number): void {
    const cost = this.bots.get(id);
    if (!cost) return;
    cost.head += bytes;
    this.bytes += bytes;
  }

  /** Encoders resident now. */
  residentEncoders(): string[] {
    return [...this.encoders.keys()];
  }

  /** Declared bytes of bots and encoders resident, without the overhead. */
  get modelBytes(): number {
    return this.bytes - this.overhead;
  }
}
