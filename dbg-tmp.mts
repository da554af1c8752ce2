import { createSpeechSession } from './node/speech/index.js'
import { execFileSync } from 'node:child_process'
const text = process.argv[2] ?? 'computer chat what is the realm'
const wav = execFileSync('espeak-ng', ['--stdout', text])
const pcm = execFileSync('sox', ['-t', 'wav', '-', '-t', 'raw', '-r', '16000', '-c', '1', '-b', '16', '-e', 'signed-integer', '-', 'pad', '1', '2'], { input: wav })
const s = await createSpeechSession({ phrases: process.argv[3] === 'free' ? [] : ['what is the realm', 'hello there how are you'] })
s.on(e => console.log('session', JSON.stringify(e)))

for (let i = 0; i < pcm.length; i += 3200) s.push(pcm.subarray(i, i + 3200))
await s.end()
console.log('state', s.state)
import { writeFileSync } from 'node:fs'
