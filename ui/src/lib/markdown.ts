/**
 * Model output as HTML, safely: Markdown (marked, GitHub flavour) → a sanitizer (DOMPurify in
 * the browser, see sanitize-dom.ts) → shown. The policy is here, pure and tested
 * (test/unit/ui-markdown.test.ts); the browser end-to-end tests check it in Chromium.
 *
 * - Raw HTML in the text is shown as text, never as markup (`<img onerror=…>`, `<script>`).
 * - Links keep only http(s) and mailto URLs (no `javascript:`, `data:`, `vbscript:`…) and open
 *   in a new tab with rel="noopener noreferrer nofollow"; a link with any other URL is its text.
 * - Images are never loaded from the text (tracking, and CSP forbids it): they become links.
 * - Code blocks are highlighted with highlight.js.
 */
import { Marked, type Tokens } from 'marked'
import { escapeHtml, highlightCode } from './highlight.js'

/** URL schemes a link may have */
export const SAFE_LINK_PROTOCOLS: readonly string[] = ['http:', 'https:', 'mailto:']
/** rel of every link in model output */
export const LINK_REL = 'noopener noreferrer nofollow'

/** Elements the sanitizer keeps: what the Markdown renderer makes, nothing else */
export const ALLOWED_TAGS: readonly string[] = [
  'a', 'p', 'br', 'hr', 'strong', 'em', 'del', 'code', 'pre', 'blockquote', 'span', 'div',
  'ul', 'ol', 'li', 'input', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6',
  'table', 'thead', 'tbody', 'tr', 'th', 'td'
]
/** Attributes the sanitizer keeps (href is checked again by `safeHref`) */
export const ALLOWED_ATTR: readonly string[] = ['href', 'title', 'class', 'start', 'align', 'type', 'checked', 'disabled']

/** The sanitizer's settings (DOMPurify option names) */
export const SANITIZE_CONFIG = {
  ALLOWED_TAGS: [...ALLOWED_TAGS],
  ALLOWED_ATTR: [...ALLOWED_ATTR],
  ALLOW_DATA_ATTR: false,
  ALLOW_ARIA_ATTR: false,
  ALLOW_UNKNOWN_PROTOCOLS: false,
  ALLOWED_URI_REGEXP: /^(?:https?:|mailto:)/i,
  KEEP_CONTENT: true
}

/**
 * A link's URL if it is safe to follow, else `undefined`. Browsers ignore tabs and newlines in
 * URLs and trim control characters, so those are removed before the scheme is looked at
 * (`java\tscript:` is `javascript:`).
 */
export function safeHref (href: string | null | undefined): string | undefined {
  if (href == null) return undefined
  const cleaned = href.replace(/[\u0000-\u0020\u007f-\u009f]/g, '')
  if (cleaned === '') return undefined
  let url: URL
  try {
    url = new URL(cleaned)
  } catch {
    return undefined
  }
  if (!SAFE_LINK_PROTOCOLS.includes(url.protocol)) return undefined
  return url.href
}

export type Sanitize = (html: string) => string

/** Markdown → HTML under the policy above; `sanitize` runs last (identity only in tests) */
export function createMarkdown (sanitize: Sanitize): (src: string) => string {
  const marked = new Marked({
    gfm: true,
    breaks: false,
    async: false,
    renderer: {
      html (token: Tokens.HTML | Tokens.Tag): string {
        const text = escapeHtml(token.text)
        return token.block ? `<p>${text.trimEnd()}</p>\n` : text
      },
      link ({ href, title, tokens }: Tokens.Link): string {
        const inner = this.parser.parseInline(tokens)
        const safe = safeHref(href)
        if (safe === undefined) return inner
        const titleAttr = title != null && title !== '' ? ` title="${escapeHtml(title)}"` : ''
        return `<a href="${escapeHtml(safe)}"${titleAttr} rel="${LINK_REL}" target="_blank">${inner}</a>`
      },
      image ({ href, text }: Tokens.Image): string {
        const label = escapeHtml(text !== '' ? `image: ${text}` : 'image')
        const safe = safeHref(href)
        if (safe === undefined) return `[${label}]`
        return `<a href="${escapeHtml(safe)}" rel="${LINK_REL}" target="_blank">[${label}]</a>`
      },
      code ({ text, lang }: Tokens.Code): string {
        const { html, language } = highlightCode(text, lang)
        const cls = language !== undefined ? ` class="hljs language-${language}"` : ' class="hljs"'
        return `<pre><code${cls}>${html}</code></pre>\n`
      }
    }
  })
  return (src: string): string => sanitize(marked.parse(src, { async: false }))
}
