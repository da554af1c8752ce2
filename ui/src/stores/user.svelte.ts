/** This browser's user: its nickname, and whether the sysop banned it */
import { ApiError, getJson, sendJson } from '../lib/api.js'
import type { MeResponse } from '../lib/types.js'

class UserStore {
  me = $state<MeResponse | undefined>()
  banned = $state(false)
  error = $state<string | undefined>()

  async load (): Promise<void> {
    try {
      this.me = await getJson<MeResponse>('/realm/me')
      this.error = undefined
    } catch (err) {
      this.noteError(err)
    }
  }

  /** Throws an ApiError when the node refuses the nickname */
  async setNickname (nickname: string): Promise<void> {
    this.me = await sendJson<MeResponse>('POST', '/realm/me', { nickname })
  }

  /** Any call that answered 403 USER_BANNED marks the user banned */
  noteError (err: unknown): void {
    if (err instanceof ApiError && err.code === 'USER_BANNED') this.banned = true
    else this.error = err instanceof Error ? err.message : String(err)
  }
}

export const user = new UserStore()
