/**
 * Stand-ins for the AI backends that cannot run here. Each is a real HTTP server on loopback that
 * speaks its API's documented wire protocol (checked against test/fixtures/ by
 * test/unit/standins.test.ts and test/unit/standins-paid.test.ts), with deterministic answers
 * and run-time fault modes.
 */
export * from './base.js'
export * from './media.js'
export * from './ollama.js'
export * from './openai.js'
export * from './a1111.js'
export * from './anthropic.js'
export * from './hf.js'
export * from './agent.js'
export * from './shape.js'
