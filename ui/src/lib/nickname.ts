/** The nickname rule, as the node checks it (node/gateway/users.ts): 1–32 characters, no control characters */

export const MAX_NICKNAME_CHARS = 32
const FORBIDDEN_RE = /[\p{Cc}\u202A-\u202E\u2066-\u2069\u200E\u200F\u061C]/u

/** Why a nickname would be refused, or undefined when it is fine */
export function nicknameProblem (value: string): string | undefined {
  const nickname = value.normalize('NFC').trim()
  const chars = [...nickname].length
  if (chars === 0) return 'A nickname cannot be empty.'
  if (chars > MAX_NICKNAME_CHARS) return `At most ${MAX_NICKNAME_CHARS} characters (this one has ${chars}).`
  if (FORBIDDEN_RE.test(nickname)) return 'No control characters, please.'
  return undefined
}
