/** localStorage / sessionStorage that never throws (private modes, quota, disabled storage) */

export function load (key: string, store: 'local' | 'session' = 'local'): string | null {
  try {
    return (store === 'local' ? localStorage : sessionStorage).getItem(key)
  } catch {
    return null
  }
}

/** false when the browser refused (quota) */
export function save (key: string, value: string | null, store: 'local' | 'session' = 'local'): boolean {
  try {
    const s = store === 'local' ? localStorage : sessionStorage
    if (value === null) s.removeItem(key)
    else s.setItem(key, value)
    return true
  } catch {
    return false
  }
}
