/**
 * Request bodies of the compatibility routes, read with a size bound: JSON (any content type, as
 * Ollama reads it) and multipart/form-data (OpenAI's audio uploads, parsed by the runtime's own
 * `Response.formData()` once the bounded bytes are in).
 */
import type { Context } from 'koa'
import { CompatRequestError } from './errors.js'

function tooLarge (limitBytes: number): CompatRequestError {
  return new CompatRequestError('TOO_LARGE', `request body too large: the limit is ${limitBytes} bytes`, { limitBytes })
}

/** The raw body, at most `limitBytes`; a larger one is a TOO_LARGE error (the rest is discarded, not kept) */
export async function readRawBody (ctx: Context, limitBytes: number): Promise<Buffer> {
  const req = ctx.req
  const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase()
  if (encoding !== 'identity') throw new CompatRequestError('UNSUPPORTED_MEDIA_TYPE', `unsupported content encoding: ${encoding.slice(0, 32)}`)
  const declared = Number(req.headers['content-length'])
  if (Number.isFinite(declared) && declared > limitBytes) {
    // let node discard the body so the answer can still reach the client
    req.resume()
    throw tooLarge(limitBytes)
  }
  return await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const cleanup = (): void => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
      req.off('close', onClose)
    }
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size > limitBytes) {
        cleanup()
        chunks.length = 0
        req.resume()
        reject(tooLarge(limitBytes))
        return
      }
      chunks.push(chunk)
    }
    const onEnd = (): void => {
      cleanup()
      resolve(Buffer.concat(chunks, size))
    }
    const onError = (err: Error): void => {
      cleanup()
      reject(err)
    }
    const onClose = (): void => {
      if (req.complete) return
      cleanup()
      reject(new CompatRequestError('INVALID_JSON', 'request body cut short'))
    }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
    req.on('close', onClose)
  })
}

/** The body as JSON. Empty → EMPTY_BODY, not JSON → INVALID_JSON (with the parser's reason) */
export async function readJsonBody (ctx: Context, limitBytes: number): Promise<unknown> {
  const raw = await readRawBody(ctx, limitBytes)
  const text = raw.toString('utf8')
  if (text.trim() === '') throw new CompatRequestError('EMPTY_BODY', 'missing request body')
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new CompatRequestError('INVALID_JSON', `invalid JSON in request body: ${(err as Error).message.slice(0, 200)}`)
  }
}

export interface UploadedFile {
  filename: string
  /** media type the client gave, '' when none */
  type: string
  data: Buffer
}

export interface MultipartBody {
  /** text fields (the last value when a field repeats) */
  fields: Record<string, string>
  files: Record<string, UploadedFile>
}

/** A multipart/form-data body of at most `limitBytes` */
export async function readMultipartBody (ctx: Context, limitBytes: number): Promise<MultipartBody> {
  const type = ctx.get('content-type')
  if (!/^multipart\/form-data\s*;/i.test(type)) {
    throw new CompatRequestError('UNSUPPORTED_MEDIA_TYPE', `Invalid Content-Type header (${type === '' ? 'none' : type.split(';')[0]}), expected multipart/form-data.`)
  }
  const raw = await readRawBody(ctx, limitBytes)
  let form: FormData
  try {
    form = await new Response(Uint8Array.from(raw), { headers: { 'content-type': type } }).formData()
  } catch {
    throw new CompatRequestError('INVALID_MULTIPART', 'could not parse the multipart/form-data body')
  }
  const body: MultipartBody = { fields: {}, files: {} }
  const entries: Array<[string, FormDataEntryValue]> = []
  form.forEach((value, name) => { entries.push([name, value]) })
  for (const [name, value] of entries) {
    if (typeof value === 'string') {
      body.fields[name] = value
    } else {
      body.files[name] = { filename: value.name, type: value.type, data: Buffer.from(await value.arrayBuffer()) }
    }
  }
  return body
}
