import { createSpeechSession, resolveEngines } from './node/speech/index.js'
import { decodeToPcm16k } from './node/speech/audio.js'
import { execFileSync } from 'node:child_process'
const pcmOf = async (text: string) => await decodeToPcm16k(execFileSync('espeak-ng', ['--stdout', text]), 'audio/wav', resolveEngines(), { timeoutMs: 10000 })
const sil = (s: number) => Buffer.alloc(Math.round(s * 16000) * 2)
const parts = process.argv[2].split('|')
const bufs = [sil(1)]
for (const p of parts) { bufs.push(await pcmOf(p), sil(1.2)) }
bufs.push(sil(1))
const pcm = Buffer.concat(bufs)
const s = await createSpeechSession({ phrases: process.argv[3] === 'free' ? [] : ['what is the realm', 'hello there how are you'] })
s.on(e => console.log('session', JSON.stringify(e), e.type === 'error' ? e.error : ''))
;(s as any).run = ((orig) => async function (this: any, pcm: Buffer, mode: any, t: boolean) { const r = await orig.call(this, pcm, mode, t).catch((e: any) => { console.log('ERR', e); throw e }); console.log('run', mode.type, (pcm.length / 32000).toFixed(2), JSON.stringify(r)); return r })((s as any).run)
for (let i = 0; i < pcm.length; i += 3200) s.push(pcm.subarray(i, i + 3200))
await s.end()
console.log('state', s.state)
