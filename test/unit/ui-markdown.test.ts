/**
 * The markdown policy of the web UI (ui/src/lib/markdown.ts): raw HTML as text, safe links only,
 * no remote images, highlighted code. DOMPurify itself runs in the browser tests (test/e2e/ui.test.ts).
 */
import assert from 'node:assert/strict'
import { createMarkdown, safeHref, LINK_REL, ALLOWED_TAGS, SANITIZE_CONFIG } from '../../ui/src/lib/markdown.js'
import { highlightCode, knownLanguage } from '../../ui/src/lib/highlight.js'

const md = createMarkdown(html => html)

describe('ui: markdown policy', () => {
  it('renders Markdown: emphasis, lists, tables, code', () => {
    const html = md('**bold** and *it*\n\n- a\n- b\n\n| x | y |\n|---|---|\n| 1 | 2 |\n\n`inline`')
    assert.match(html, /<strong>bold<\/strong>/)
    assert.match(html, /<em>it<\/em>/)
    assert.match(html, /<li>a<\/li>/)
    assert.match(html, /<td>1<\/td>/)
    assert.match(html, /<code>inline<\/code>/)
  })

  it('shows raw HTML as text, inline and as a block: no element is made', () => {
    const html = md('Hi <img src=x onerror=alert(1)> there\n\n<script>alert(2)</script>\n\n<div onclick="x()">block</div>\n\n<iframe src="https://evil"></iframe>')
    assert.ok(!/<img|<script|<div|<iframe/i.test(html), html)
    assert.match(html, /&lt;img src=x onerror=alert\(1\)&gt;/)
    assert.match(html, /&lt;script&gt;alert\(2\)&lt;\/script&gt;/)
    assert.match(html, /&lt;iframe/)
  })

  it('keeps http(s) and mailto links, with rel=noopener and a new tab; drops every other scheme', () => {
    const ok = md('[site](https://example.org/a?b=1) [mail](mailto:a@b.c)')
    assert.match(ok, new RegExp(`<a href="https://example.org/a\\?b=1" rel="${LINK_REL}" target="_blank">site</a>`))
    assert.match(ok, /href="mailto:a@b.c"/)
    for (const bad of ['javascript:alert(1)', 'JaVaScRiPt:alert(1)', 'java\tscript:alert(1)', 'data:text/html,<b>x</b>', 'vbscript:msgbox(1)', '//evil.example/x', '/realm/status', '  javascript:alert(1)']) {
      const html = md(`[click](${bad.replace(/\s/g, (c) => c === '\t' ? '%09' : c)}) and <${bad}>`)
      assert.ok(!/href=/.test(html), `${bad} → ${html}`)
      assert.match(html, /click/)
    }
  })

  it('never loads images from the text: an image becomes a link (or text) with its alt', () => {
    const html = md('![a cat](https://example.org/cat.png) ![x](javascript:alert(1))')
    assert.ok(!/<img/.test(html))
    assert.match(html, /<a href="https:\/\/example.org\/cat.png"[^>]*>\[image: a cat\]<\/a>/)
    assert.match(html, /\[image: x\]/)
  })

  it('escapes link titles and texts', () => {
    const html = md('[<b>x</b>](https://e.org "a\\" onmouseover=\\"alert(1)")')
    assert.ok(!/<b>/.test(html))
    assert.ok(!/" onmouseover/.test(html), html)
  })

  it('highlights code blocks of known languages, escapes the rest', () => {
    const js = md('```js\nconst a = "<b>"\n```')
    assert.match(js, /<pre><code class="hljs language-js"><span class="hljs-keyword">const<\/span>/)
    assert.ok(!js.includes('"<b>"'))
    const plain = md('```nosuchlang\n<script>x</script>\n```')
    assert.match(plain, /<code class="hljs">&lt;script&gt;x&lt;\/script&gt;<\/code>/)
    assert.equal(knownLanguage('sh'), 'sh')
    assert.equal(knownLanguage('"><script>'), undefined)
    assert.equal(highlightCode('x'.repeat(200_001), 'js').language, undefined)
  })

  it('runs the sanitizer last, on the whole output', () => {
    let seen = ''
    const withSanitizer = createMarkdown(html => { seen = html; return 'SANITIZED' })
    assert.equal(withSanitizer('**x**'), 'SANITIZED')
    assert.match(seen, /<strong>x<\/strong>/)
  })

  it('safeHref: only absolute http(s)/mailto URLs pass, normalised', () => {
    assert.equal(safeHref('https://example.org'), 'https://example.org/')
    assert.equal(safeHref(' https://example.org/x '), 'https://example.org/x')
    assert.equal(safeHref('mailto:a@b.c'), 'mailto:a@b.c')
    for (const bad of [null, undefined, '', 'javascript:alert(1)', 'java\nscript:alert(1)', '\u0000javascript:x', 'data:image/png;base64,AA', 'file:///etc/passwd', 'ftp://x', 'relative/path', '#frag']) {
      assert.equal(safeHref(bad), undefined, String(bad))
    }
  })

  it('the sanitizer settings allow no scripts, styles, frames, images, forms or event attributes', () => {
    for (const tag of ['script', 'style', 'iframe', 'img', 'svg', 'math', 'form', 'object', 'embed', 'link', 'meta', 'video', 'audio']) {
      assert.ok(!ALLOWED_TAGS.includes(tag), tag)
    }
    assert.ok(SANITIZE_CONFIG.ALLOWED_ATTR.every(a => !a.startsWith('on') && a !== 'style' && a !== 'src'))
    assert.equal(SANITIZE_CONFIG.ALLOW_DATA_ATTR, false)
    assert.ok(!SANITIZE_CONFIG.ALLOWED_URI_REGEXP.test('javascript:alert(1)'))
  })
})
