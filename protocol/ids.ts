/** Protocol ids and gossip topic names: one place, never spelled twice */

/** Version of the node software, advertised in beacons and /api/version */
export const REALM_VERSION = '0.1.0'

export const PROTOCOL_PREFIX = '/rentahal'

/** Gossip topics */
export const TOPIC_PRESENCE = '/rentahal/1/presence'
export const TOPIC_BLOCKLIST = '/rentahal/1/blocklist'

/** Task stream protocol */
export const PROTOCOL_TASK = '/rentahal/task/1.0.0'

/** The DHT key realm nodes provide so they find each other through any DHT node */
export const RENDEZVOUS_NAMESPACE = '/rentahal/realm/1'
