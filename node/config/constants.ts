/** The data dir's name in the home directory when neither `--data` nor `REALM_DATA` is given */
export const DATA_DIR_NAME = '.rentahal'

/** The config file's name inside the data dir */
export const CONFIG_FILE_NAME = 'config.toml'

/** Suffix of the copy kept of a config file before it is rewritten by a repair */
export const BROKEN_SUFFIX = '.broken'

/** Most bytes of config.toml read; a bigger file is not a config someone wrote by hand (1 MiB) */
export const MAX_CONFIG_BYTES = 1024 * 1024

/** A bad value is quoted in a repair message up to this many characters */
export const MAX_QUOTED_VALUE_CHARS = 60

/** Repair messages kept for one load; a file of garbage must not flood stderr */
export const MAX_REPAIR_MESSAGES = 50

/** Keys listed by name in the "added missing settings" message before "and N more" */
export const MAX_LISTED_MISSING_KEYS = 8

/** A multi-line array is looked for in this many following lines when recovering line by line */
export const MAX_ARRAY_CONTINUATION_LINES = 64

/** `HOST:PORT` without a host (`:5000`, `5000`) means loopback: never expose by accident */
export const DEFAULT_HOST = '127.0.0.1'
