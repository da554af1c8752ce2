/**
 * Code blocks highlighted with highlight.js: the core and a set of common languages only (the
 * whole library is ~1 MB). Returns HTML whose text is escaped by highlight.js.
 */
import hljs from 'highlight.js/lib/core'
import bash from 'highlight.js/lib/languages/bash'
import c from 'highlight.js/lib/languages/c'
import cpp from 'highlight.js/lib/languages/cpp'
import csharp from 'highlight.js/lib/languages/csharp'
import css from 'highlight.js/lib/languages/css'
import diff from 'highlight.js/lib/languages/diff'
import go from 'highlight.js/lib/languages/go'
import java from 'highlight.js/lib/languages/java'
import javascript from 'highlight.js/lib/languages/javascript'
import json from 'highlight.js/lib/languages/json'
import kotlin from 'highlight.js/lib/languages/kotlin'
import markdown from 'highlight.js/lib/languages/markdown'
import php from 'highlight.js/lib/languages/php'
import python from 'highlight.js/lib/languages/python'
import ruby from 'highlight.js/lib/languages/ruby'
import rust from 'highlight.js/lib/languages/rust'
import shell from 'highlight.js/lib/languages/shell'
import sql from 'highlight.js/lib/languages/sql'
import swift from 'highlight.js/lib/languages/swift'
import typescript from 'highlight.js/lib/languages/typescript'
import xml from 'highlight.js/lib/languages/xml'
import yaml from 'highlight.js/lib/languages/yaml'

const LANGUAGES = { bash, c, cpp, csharp, css, diff, go, java, javascript, json, kotlin, markdown, php, python, ruby, rust, shell, sql, swift, typescript, xml, yaml }
for (const [name, fn] of Object.entries(LANGUAGES)) hljs.registerLanguage(name, fn)

/** Longest code block highlighted; a longer one is shown plain (highlighting is superlinear on some grammars) */
export const MAX_HIGHLIGHT_CHARS = 100_000

export function escapeHtml (text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;')
}

/** The language a fence names, when highlight.js knows it (aliases too: `js`, `sh`, `html`, `py`) */
export function knownLanguage (lang: string | undefined): string | undefined {
  const name = (lang ?? '').trim().split(/\s+/, 1)[0]?.toLowerCase() ?? ''
  if (name === '' || !/^[a-z0-9_+#-]{1,32}$/.test(name)) return undefined
  return hljs.getLanguage(name) != null ? name : undefined
}

/** The code as highlighted HTML (escaped), and the language used */
export function highlightCode (code: string, lang?: string): { html: string, language?: string } {
  const language = knownLanguage(lang)
  if (language === undefined || code.length > MAX_HIGHLIGHT_CHARS) return { html: escapeHtml(code) }
  try {
    return { html: hljs.highlight(code, { language, ignoreIllegals: true }).value, language }
  } catch {
    return { html: escapeHtml(code) }
  }
}
