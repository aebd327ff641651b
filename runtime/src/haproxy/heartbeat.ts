/**
 * The control plane's heartbeat: when its loop last ended a pass, and the last pass HAProxy took. The
 * control container's probes read it (docs/router.md, "HAProxy mode"):
 * - ready: HAProxy took a pass within `staleMs` and routes the current catalog generation. While the
 *   control plane cannot update HAProxy its maps go stale: the pod leaves the Service until it can again,
 *   and HAProxy keeps serving its last maps meanwhile.
 * - live: the loop ended a pass within `staleMs` plus the Runtime API's timeout (a pass waiting on a slow
 *   HAProxy ends by then, with an error); a loop that stopped is restarted by the kubelet.
 */
export interface Health {
  live: boolean;
  ready: boolean;
  /** What the probe answers: both verdicts and what they rest on. */
  body: object;
}

export class Heartbeat {
  private passEndedAt = performance.now();
  private last?: { at: number; generation: string };
  private error?: string;

  /** A pass ended and HAProxy took it: it routes `generation`. */
  applied(generation: string): void {
    this.passEndedAt = performance.now();
    this.last = { at: this.passEndedAt, generation };
    this.error = undefined;
  }

  /** A pass ended without HAProxy taking it. */
  failed(error: string): void {
    this.passEndedAt = performance.now();
    this.error = error;
  }

  health(o: { generation: string; running: boolean; staleMs: number; apiTimeoutMs: number }): Health {
    const now = performance.now();
    const live = o.running && now - this.passEndedAt <= o.staleMs + o.apiTimeoutMs;
    const last = this.last;
    const ready = live && last !== undefined && now - last.at <= o.staleMs && last.generation === o.generation;
    return {
      live,
      ready,
      body: {
        live,
        ready,
        generation: o.generation,
        applied: last?.generation ?? null,
        lastPassMsAgo: Math.round(now - this.passEndedAt),
        appliedMsAgo: last ? Math.round(now - last.at) : null,
        ...(this.error ? { error: this.error } : {}),
      },
    };
  }
}
