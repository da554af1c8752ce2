/** Light and dark themes: the stored choice wins, else the system's preference. Pure */

export type Theme = 'light' | 'dark'
export const THEME_STORAGE_KEY = 'rah.theme'

export function parseTheme (stored: string | null | undefined): Theme | undefined {
  return stored === 'light' || stored === 'dark' ? stored : undefined
}

export function resolveTheme (stored: string | null | undefined, prefersDark: boolean): Theme {
  return parseTheme(stored) ?? (prefersDark ? 'dark' : 'light')
}

export function otherTheme (theme: Theme): Theme {
  return theme === 'dark' ? 'light' : 'dark'
}
