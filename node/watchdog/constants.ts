/** Defaults of the watchdog (see WatchdogInit in index.ts) and of the failpoints */

/** How often the main thread beats: the freeze monitor's resolution */
export const HEARTBEAT_INTERVAL_MS = 100

/** No beat for this long is a frozen event loop (config `watchdog.freeze_ms`) */
export const DEFAULT_FREEZE_MS = 10_000

/**
 * A run that made no progress (no token, no progress event) for this long while another task
 * waited as long for its worker's slot is cancelled (config `watchdog.stuck_ms`). Above the
 * workers' own idle timeout (120 s without a byte): this catches what that one cannot, a backend
 * that keeps the connection busy without producing anything
 */
export const DEFAULT_STUCK_MS = 180_000

/** Longest pause between two looks for stuck runs (shorter when `stuckMs` is short) */
export const STUCK_CHECK_MAX_MS = 5_000

/** Event loop delay worth reporting: a `watchdog.lag` event when the worst delay of a window passes it */
export const LAG_WARN_MS = 1_000

/** Length of one event loop delay window (one `watchdog.lag` event at most per window) */
export const LAG_WINDOW_MS = 60_000

/** Sampling resolution of `monitorEventLoopDelay` */
export const LOOP_DELAY_RESOLUTION_MS = 20

/**
 * The freeze monitor looks at the beat this many times per `freezeMs`; a check that itself
 * comes later than half of `freezeMs` means the whole process was not running (suspend, swap),
 * which is not the main thread's fault: the count starts again
 */
export const FREEZE_CHECKS_PER_PERIOD = 10

/** Written by the freeze monitor before it kills the process, read by the next start */
export const RESTART_MARKER_FILE = 'watchdog-restart.json'

/** Where the restarter and the restarted node write their output, in the trace folder */
export const RESTART_LOG_FILE = 'restart.log'

/** Restarts kept in the marker to tell a crash loop */
export const RESTART_HISTORY = 10

/** More freeze restarts than this within `RESTART_WINDOW_MS`: the watchdog stops restarting (the process is only killed) */
export const MAX_RESTARTS_IN_WINDOW = 5
export const RESTART_WINDOW_MS = 10 * 60_000

/** How long the restarter waits for the frozen process to be gone before it gives up */
export const RESTARTER_WAIT_MS = 60_000

/** How often the restarter looks whether the frozen process is gone */
export const RESTARTER_POLL_MS = 50

/** Environment variables a restarted node does not get: test hooks fire once, not in a loop */
export const TEST_ONLY_ENV_PREFIXES = ['REALM_TEST_', 'REALM_FAILPOINTS'] as const

/** Test only: the node busy-loops this many ms after its watchdog starts (a frozen event loop) */
export const TEST_FREEZE_ENV = 'REALM_TEST_FREEZE_AFTER_MS'

/** Test only: named points where the process SIGKILLs itself, `name[@N]` comma separated */
export const FAILPOINTS_ENV = 'REALM_FAILPOINTS'
