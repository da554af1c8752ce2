/** Liveness helpers: wait for something with a generous deadline; never assert speed */

export const DEFAULT_DEADLINE_MS = 20_000

/** Poll `check` until it returns a truthy value (returned) or the deadline passes (throws) */
export async function waitFor<T> (check: () => T | Promise<T>, what: string, deadlineMs = DEFAULT_DEADLINE_MS, pollMs = 25): Promise<NonNullable<T>> {
  const end = Date.now() + deadlineMs
  let last: unknown
  for (;;) {
    try {
      const v = await check()
      if (v) return v as NonNullable<T>
    } catch (err) {
      last = err
    }
    if (Date.now() > end) {
      throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}${last != null ? ` (last error: ${(last as Error).message})` : ''}`)
    }
    await new Promise(resolve => setTimeout(resolve, pollMs))
  }
}

export async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}
