/**
 * The browser half of markdown.ts: DOMPurify with the policy's settings, and a hook that
 * re-checks every link's URL and gives it rel="noopener noreferrer nofollow" and a new tab.
 */
import DOMPurify from 'dompurify'
import { createMarkdown, LINK_REL, SANITIZE_CONFIG, safeHref } from './markdown.js'

const purify = DOMPurify(window)
purify.addHook('afterSanitizeAttributes', (node) => {
  if (node.nodeName !== 'A') return
  const href = safeHref(node.getAttribute('href'))
  if (href === undefined) node.removeAttribute('href')
  else node.setAttribute('href', href)
  node.setAttribute('rel', LINK_REL)
  node.setAttribute('target', '_blank')
})

export function sanitizeHtml (html: string): string {
  return purify.sanitize(html, { ...SANITIZE_CONFIG, RETURN_TRUSTED_TYPE: false }) as unknown as string
}

/** Model output (Markdown) as safe HTML */
export const renderMarkdown = createMarkdown(sanitizeHtml)
