/**
 * A fast path in libp2p's length-prefixed decoder (`@libp2p/utils` LengthPrefixedDecoder), which
 * noise runs on every message of every connection. After each message it asks its length
 * decoder for the next length even when its buffer is empty, and learns there is none from a
 * thrown RangeError: an Error, stack trace captured, on every network read. Profiled on a mesh
 * hop streaming an answer, that throw was the largest single CPU cost of the whole process (~8 %,
 * more than encryption). An empty buffer can never hold a length, so each decoder's length
 * function is wrapped to answer "a message as long as allowed" for an empty buffer, which the
 * decoder's own loop reads as "not enough bytes yet" and stops, exactly as after the throw.
 * Nothing else changes; a decoder without the expected fields is left alone.
 *
 * Imported for its effect by the task protocol (node/tasks/protocol.ts), so every node has it.
 */
import { LengthPrefixedDecoder } from '@libp2p/utils'
import type { Uint8ArrayList } from 'uint8arraylist'

type LengthDecoder = (data: Uint8ArrayList | Uint8Array) => number

interface DecoderFields {
  lengthDecoder?: LengthDecoder
  maxDataLength?: number
  /** set once this decoder's length function is wrapped */
  realmFastPathWrapped?: true
}

const proto = LengthPrefixedDecoder.prototype as unknown as { decode: (this: DecoderFields, buf: Uint8Array | Uint8ArrayList) => Generator<Uint8ArrayList>, realmFastPathInstalled?: true }

if (proto.realmFastPathInstalled !== true) {
  const decode = proto.decode
  proto.realmFastPathInstalled = true
  proto.decode = function (this: DecoderFields, buf: Uint8Array | Uint8ArrayList): Generator<Uint8ArrayList> {
    if (this.realmFastPathWrapped !== true) {
      this.realmFastPathWrapped = true
      const inner = this.lengthDecoder
      const max = this.maxDataLength
      if (typeof inner === 'function' && typeof max === 'number' && max > 0) {
        this.lengthDecoder = (data) => data.byteLength === 0 ? max : inner(data)
      }
    }
    return decode.call(this, buf)
  }
}
