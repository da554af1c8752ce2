/** Byte helpers shared by codecs (no I/O) */
const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

export function utf8Encode (s: string): Uint8Array {
  return encoder.encode(s)
}

/** Strict UTF-8: invalid bytes throw instead of turning into replacement characters */
export function utf8Decode (b: Uint8Array): string {
  return decoder.decode(b)
}

export function bytesToBase64 (b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64')
}

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/

/** Strict base64: anything that is not canonical base64 throws */
export function base64ToBytes (s: string): Uint8Array {
  if (s.length % 4 !== 0 || !BASE64_RE.test(s)) throw new TypeError('not base64')
  return new Uint8Array(Buffer.from(s, 'base64'))
}
