// A small namespace-aware XML reader for SOAP responses and the shipped XSD.
// vcsim writes the XML-Schema-instance prefix as `XMLSchema-instance:type`
// and real vCenter as `xsi:type`: names are resolved to (namespace, local
// name) here so callers never look at prefixes.

export const NS = {
  soapenv: 'http://schemas.xmlsoap.org/soap/envelope/',
  xsd: 'http://www.w3.org/2001/XMLSchema',
  xsi: 'http://www.w3.org/2001/XMLSchema-instance',
  vim25: 'urn:vim25',
} as const;

export interface XmlAttr {
  ns: string;
  local: string;
  value: string;
}

export interface XmlElement {
  ns: string;
  local: string;
  attrs: XmlAttr[];
  children: XmlElement[];
  /** Concatenated character data directly inside this element. */
  text: string;
  /** Prefix -> namespace in scope here (to resolve QName values like xsi:type). */
  scope: Map<string, string>;
}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

export function unescapeXml(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);/g, (all, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(parseInt(e.slice(1), 10));
    const v = ENTITIES[e];
    if (v === undefined) throw new XmlSyntaxError(`unknown entity ${all}`);
    return v;
  });
}

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export class XmlSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'XmlSyntaxError';
  }
}

const NAME = /[A-Za-z_][\w.\-:]*/y;
const ATTR = /\s*([A-Za-z_][\w.\-:]*)\s*=\s*("([^"]*)"|'([^']*)')/y;

/** Parses a document and returns its root element. */
export function parseXml(src: string): XmlElement {
  let pos = 0;
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  const rootScope = new Map<string, string>([['xml', 'http://www.w3.org/XML/1998/namespace']]);

  const fail = (msg: string): never => {
    throw new XmlSyntaxError(`${msg} at offset ${pos}`);
  };

  while (pos < src.length) {
    const lt = src.indexOf('<', pos);
    const textEnd = lt < 0 ? src.length : lt;
    if (textEnd > pos) {
      const top = stack[stack.length - 1];
      const raw = src.slice(pos, textEnd);
      if (top) top.text += unescapeXml(raw);
      else if (raw.trim()) fail('text outside the root element');
    }
    if (lt < 0) break;
    pos = lt;
    if (src.startsWith('<?', pos)) {
      const end = src.indexOf('?>', pos);
      if (end < 0) fail('unterminated processing instruction');
      pos = end + 2;
    } else if (src.startsWith('<!--', pos)) {
      const end = src.indexOf('-->', pos);
      if (end < 0) fail('unterminated comment');
      pos = end + 3;
    } else if (src.startsWith('<![CDATA[', pos)) {
      const end = src.indexOf(']]>', pos);
      if (end < 0) fail('unterminated CDATA');
      const top = stack[stack.length - 1];
      if (top) top.text += src.slice(pos + 9, end);
      pos = end + 3;
    } else if (src.startsWith('<!', pos)) {
      fail('DOCTYPE is not accepted');
    } else if (src.startsWith('</', pos)) {
      NAME.lastIndex = pos + 2;
      const m = NAME.exec(src);
      if (!m) fail('bad end tag');
      const qname = m![0];
      const top = stack.pop();
      if (!top) fail(`unexpected </${qname}>`);
      const close = src.indexOf('>', NAME.lastIndex);
      if (close < 0) fail('unterminated end tag');
      if (qname.split(':').pop() !== top!.local) fail(`</${qname}> closes <${top!.local}>`);
      pos = close + 1;
    } else {
      NAME.lastIndex = pos + 1;
      const m = NAME.exec(src);
      if (!m) fail('bad start tag');
      const qname = m![0];
      pos = NAME.lastIndex;
      const raw: Array<[string, string]> = [];
      for (;;) {
        ATTR.lastIndex = pos;
        const a = ATTR.exec(src);
        if (!a) break;
        raw.push([a[1]!, unescapeXml(a[3] ?? a[4] ?? '')]);
        pos = ATTR.lastIndex;
      }
      while (pos < src.length && /\s/.test(src[pos]!)) pos++;
      let selfClosing = false;
      if (src.startsWith('/>', pos)) {
        selfClosing = true;
        pos += 2;
      } else if (src[pos] === '>') {
        pos += 1;
      } else {
        fail(`bad start tag <${qname}`);
      }
      const parentScope = stack[stack.length - 1]?.scope ?? rootScope;
      let scope = parentScope;
      for (const [k, v] of raw) {
        if (k === 'xmlns' || k.startsWith('xmlns:')) {
          if (scope === parentScope) scope = new Map(parentScope);
          scope.set(k === 'xmlns' ? '' : k.slice(6), v);
        }
      }
      const resolve = (q: string, isAttr: boolean): { ns: string; local: string } => {
        const i = q.indexOf(':');
        if (i < 0) return { ns: isAttr ? '' : (scope.get('') ?? ''), local: q };
        const p = q.slice(0, i);
        const ns = scope.get(p);
        if (ns === undefined) fail(`undeclared prefix ${p}`);
        return { ns: ns!, local: q.slice(i + 1) };
      };
      const attrs: XmlAttr[] = [];
      for (const [k, v] of raw) {
        if (k === 'xmlns' || k.startsWith('xmlns:')) continue;
        attrs.push({ ...resolve(k, true), value: v });
      }
      const el: XmlElement = { ...resolve(qname, false), attrs, children: [], text: '', scope };
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(el);
      else if (root) fail('second root element');
      else root = el;
      if (!selfClosing) stack.push(el);
    }
  }
  if (stack.length) throw new XmlSyntaxError(`unclosed <${stack[stack.length - 1]!.local}>`);
  if (!root) throw new XmlSyntaxError('no root element');
  return root;
}

export function attr(el: XmlElement, local: string, ns = ''): string | undefined {
  return el.attrs.find((a) => a.local === local && a.ns === ns)?.value;
}

export function child(el: XmlElement, local: string): XmlElement | undefined {
  return el.children.find((c) => c.local === local);
}

/** Resolves a QName value (e.g. an xsi:type "vim25:VirtualDisk") against the element's scope. */
export function resolveQName(el: XmlElement, value: string): { ns: string; local: string } {
  const i = value.indexOf(':');
  if (i < 0) return { ns: el.scope.get('') ?? '', local: value };
  return { ns: el.scope.get(value.slice(0, i)) ?? '', local: value.slice(i + 1) };
}

/** The xsi:type of an element, whatever prefix the sender used. */
export function xsiType(el: XmlElement): { ns: string; local: string } | undefined {
  const v = attr(el, 'type', NS.xsi);
  return v === undefined ? undefined : resolveQName(el, v);
}
