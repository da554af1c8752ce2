/**
 * Node 20 shims for libp2p 3, which assumes Node 22.
 * Imported before anything else by the CLI entry and the test runner.
 */
import { WebSocket as WsWebSocket } from 'ws'

if (typeof (Promise as any).withResolvers !== 'function') {
  (Promise as any).withResolvers = function withResolvers<T> () {
    let resolve!: (value: T | PromiseLike<T>) => void
    let reject!: (reason?: unknown) => void
    const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}

if (typeof (globalThis as any).WebSocket !== 'function') {
  (globalThis as any).WebSocket = WsWebSocket
}
