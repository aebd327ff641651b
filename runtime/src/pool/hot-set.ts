/**
 * What an overcommitted pool had resident, most recently used first, kept in a file beside its model cache
 * (an emptyDir in Kubernetes: it outlives a container restart), so that the restarted pool loads the bots
 * its traffic used last before it reports ready, instead of taking a miss for each.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import { writeAtomic } from '../io/atomic-write';

const FILE = 'resident-bots.json';

export class HotSet {
  /** A failed record was logged: the next failures in a row are not. */
  private warned = false;

  constructor(
    /** The folder to keep the file in (the model cache's). */
    private readonly folder: () => Promise<string>,
    private readonly pool: string,
  ) {}

  /** The bots recorded for this pool, most recently used first; none when there is no readable record of it. */
  async read(): Promise<string[]> {
    try {
      const record = JSON.parse(fs.readFileSync(path.join(await this.folder(), FILE), 'utf8'));
      if (record?.pool !== this.pool || !Array.isArray(record.bots)) return [];
      return record.bots.filter((b: unknown): b is string => typeof b === 'string');
    } catch {
      return [];
    }
  }

  /** Records the resident bots, most recently used first (written whole: a reader never sees half a file). */
  async write(bots: string[]): Promise<void> {
    writeAtomic(path.join(await this.folder(), FILE), JSON.stringify({ pool: this.pool, at: new Date().toISOString(), bots }));
  }

  /** Records the resident bots; a failure is logged once until a record succeeds again. */
  async record(bots: string[], log: FastifyBaseLogger): Promise<void> {
    await this.write(bots).then(
      () => (this.warned = false),
      (err: Error) => {
        if (!this.warned) log.warn({ err }, 'the resident bots could not be recorded: a restart warms only warm and pinned bots');
        this.warned = true;
      },
    );
  }
}
