/**
 * The probes of the HAProxy mode's control container, on its metrics port (HAProxy answers the OIP health
 * paths itself): live while its loop ends a pass, ready while HAProxy routes the current catalog.
 */
export const CONTROL_LIVE_PATH = '/botshard/live';
export const CONTROL_READY_PATH = '/botshard/ready';
