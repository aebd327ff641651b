/**
 * Quarantine: a bot whose runs keep taking more than a share of its group's timeout is confined to a lane
 * of its own (an extra thread, with copies of its models) until it is fast again, so it cannot hold up the
 * bots it shares a lane with. The rule (rule.ts), the quarantine lane (lane.ts) and the reporting of each
 * move (report.ts).
 */
export { Quarantine } from './rule';
export type { QuarantineOptions } from './rule';
export { QuarantineLane } from './lane';
export type { QuarantineChange, QuarantineHost } from './lane';
export { reportQuarantine } from './report';
