/** Defaults of the sysop tools, with the reason for each */

/** Longest reason kept with a blocklist entry (as in the shared blocklist protocol) */
export { MAX_BLOCK_REASON_CHARS } from '../../protocol/blocklist.js'
/** Most entries (blocks + allows, local and followed) the node keeps: bounds memory and each check */
export const MAX_BLOCKLIST_ENTRIES = 10_000
/** Longest timer Node accepts (2^31 - 1 ms); a later expiry is re-armed when this one fires */
export const MAX_TIMER_MS = 2_147_483_647

/** Failed sysop attempts from one address within `AUTH_WINDOW_MS` before it is locked out */
export const AUTH_MAX_FAILURES = 5
/** Window of the failure count, and how long a lockout lasts after the last failure */
export const AUTH_WINDOW_MS = 60_000
/** Addresses whose failures are remembered (the oldest is forgotten beyond) */
export const AUTH_MAX_TRACKED_ADDRESSES = 10_000
/** A browser session lasts this long (absolute, not sliding) */
export const SESSION_TTL_MS = 12 * 60 * 60 * 1000
/** Most sessions at once (the oldest is dropped beyond) */
export const MAX_SESSIONS = 1_000
/** Name of the sysop session cookie */
export const SESSION_COOKIE = 'realm_sysop'
/** Random bytes of a session id (256 bits) */
export const SESSION_ID_BYTES = 32

/** A followed publisher's list is republished by its publisher this often, so late joiners get it */
export const BLOCKLIST_REPUBLISH_MS = 60_000
/** Local changes are republished after this pause (a burst of blocks makes one message) */
export const BLOCKLIST_REPUBLISH_DEBOUNCE_MS = 250

/** Longest broadcast message */
export const MAX_BROADCAST_CHARS = 500
