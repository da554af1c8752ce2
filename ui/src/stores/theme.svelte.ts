/** Light or dark: remembered once chosen, else following the system (prefers-color-scheme) */
import { THEME_STORAGE_KEY, otherTheme, parseTheme, resolveTheme, type Theme } from '../lib/theme.js'
import { load, save } from '../lib/storage.js'

class ThemeStore {
  private readonly media = window.matchMedia('(prefers-color-scheme: dark)')
  theme = $state<Theme>(resolveTheme(load(THEME_STORAGE_KEY), this.media.matches))

  constructor () {
    this.apply()
    this.media.addEventListener('change', () => {
      if (parseTheme(load(THEME_STORAGE_KEY)) !== undefined) return
      this.theme = this.media.matches ? 'dark' : 'light'
      this.apply()
    })
  }

  toggle (): void {
    this.theme = otherTheme(this.theme)
    save(THEME_STORAGE_KEY, this.theme)
    this.apply()
  }

  private apply (): void {
    document.documentElement.dataset.theme = this.theme
    document.documentElement.style.colorScheme = this.theme
  }
}

export const theme = new ThemeStore()
