/** Name of the trace folder inside the data dir */
export const TRACE_DIR_NAME = 'trace'

/** The file being appended to; rotated files are `trace.1.log` (newest) … `trace.N.log` (oldest) */
export const CURRENT_TRACE_FILE = 'trace.log'

/** Rotate when the current file would grow past this many bytes */
export const DEFAULT_MAX_BYTES = 10 * 1024 * 1024

/** Rotated files kept besides the current one */
export const DEFAULT_MAX_FILES = 5

/** Buffered events are written at most this long after they were appended */
export const DEFAULT_FLUSH_INTERVAL_MS = 100

/** An event whose JSON line is longer than this is replaced by a `truncated` marker */
export const DEFAULT_MAX_EVENT_BYTES = 256 * 1024

/** Events waiting for the disk beyond this are dropped (and counted in a `trace.dropped` event), so a stuck disk cannot eat the node's memory */
export const DEFAULT_MAX_BUFFER_BYTES = 32 * 1024 * 1024

/** Write at once, without waiting for the interval, when this much is buffered */
export const FLUSH_HIGH_WATER_BYTES = 1024 * 1024

/** After a failed rotation (permissions, full disk), keep appending and try again this much later */
export const ROTATE_RETRY_MS = 10_000

/** After a failed write, try again this much later (the events stay buffered) */
export const WRITE_RETRY_MS = 1_000

/** Fields of an oversized event kept in its marker: primitives with strings up to this many characters… */
export const MARKER_MAX_STRING_CHARS = 512

/** …up to this many characters in total */
export const MARKER_MAX_FIELDS_CHARS = 4096

/** Longest `type` kept in a marker */
export const MARKER_MAX_TYPE_CHARS = 200

/** How often a following reader looks for new lines */
export const DEFAULT_READ_POLL_MS = 200

/** Bytes read from a file at a time */
export const READ_CHUNK_BYTES = 64 * 1024

/** A reader gives up on a line longer than this (no writer makes one: events are capped well below) */
export const MAX_LINE_BYTES = 8 * 1024 * 1024

/** Attempts at a directory listing that two consecutive scans agree on, while a rotation moves files */
export const LISTING_ATTEMPTS = 5
