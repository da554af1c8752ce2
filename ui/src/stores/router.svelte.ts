/** The current view, from the location hash (`#/chat`, `#/vision`, `#/imagine`, `#/realm`, `#/sysop`) */

export const VIEWS = ['chat', 'vision', 'imagine', 'realm', 'sysop'] as const
export type View = typeof VIEWS[number]

function fromHash (): View {
  const name = location.hash.replace(/^#\/?/, '')
  return (VIEWS as readonly string[]).includes(name) ? name as View : 'chat'
}

class RouterStore {
  view = $state<View>(fromHash())

  constructor () {
    window.addEventListener('hashchange', () => { this.view = fromHash() })
  }

  go (view: View): void {
    location.hash = `#/${view}`
  }
}

export const router = new RouterStore()
