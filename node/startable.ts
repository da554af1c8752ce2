/** A long-lived part of the node: `start()` registers handlers and timers, `stop()` removes them */
export interface Startable {
  start (): Promise<void> | void
  stop (): Promise<void> | void
}
