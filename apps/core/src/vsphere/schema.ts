// The shipped vim25 schema (wsdl/vim25.xsd), loaded once: complex types with
// their element sequence (base type's elements first, as XSD extension
// defines), simple types, and the top-level elements of each operation. The
// serializer writes fields in this order, the parser types values by it, and
// schema-check verifies requests against it.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NS, attr, parseXml, resolveQName, type XmlElement } from './xml';

/** A type name: `xsd:int`-like built-ins are { ns: NS.xsd }, vim25 types { ns: NS.vim25 }. */
export interface TypeName {
  ns: string;
  name: string;
}

export interface SchemaField {
  name: string;
  type: TypeName;
  min: number;
  /** true when the element may repeat (maxOccurs="unbounded"). */
  list: boolean;
}

export interface ComplexType {
  name: string;
  base?: string;
  /** Only this type's own elements, in order. */
  own: SchemaField[];
  /** simpleContent (ManagedObjectReference): text plus attributes. */
  simpleContent: boolean;
}

export class Schema {
  readonly complex = new Map<string, ComplexType>();
  readonly simple = new Set<string>();
  /** Top-level element name -> its type (e.g. CreateSnapshot_Task -> CreateSnapshotRequestType). */
  readonly elements = new Map<string, TypeName>();
  private readonly flat = new Map<string, SchemaField[]>();
  private readonly index = new Map<string, Map<string, { field: SchemaField; pos: number }>>();

  constructor(xsd: string) {
    const root = parseXml(xsd);
    for (const el of root.children) {
      const name = attr(el, 'name');
      if (!name) continue;
      if (el.local === 'simpleType') this.simple.add(name);
      else if (el.local === 'complexType') this.complex.set(name, readComplex(name, el));
      else if (el.local === 'element') {
        const t = attr(el, 'type');
        if (t) this.elements.set(name, typeName(el, t));
        else {
          const ct = el.children.find((c) => c.local === 'complexType');
          if (ct) {
            const anon = `${name}#element`;
            this.complex.set(anon, readComplex(anon, ct));
            this.elements.set(name, { ns: NS.vim25, name: anon });
          }
        }
      }
    }
  }

  /** All elements of a complex type, base types first. */
  fields(type: string): SchemaField[] {
    let f = this.flat.get(type);
    if (f) return f;
    const ct = this.complex.get(type);
    if (!ct) throw new Error(`type ${type} is not in the shipped vim25 schema`);
    f = [...(ct.base ? this.fields(ct.base) : []), ...ct.own];
    this.flat.set(type, f);
    return f;
  }

  /** Field by element name with its position in the type's sequence. */
  field(type: string, name: string): { field: SchemaField; pos: number } | undefined {
    let idx = this.index.get(type);
    if (!idx) {
      idx = new Map();
      this.fields(type).forEach((field, pos) => idx!.set(field.name, { field, pos }));
      this.index.set(type, idx);
    }
    return idx.get(name);
  }

  isSubtype(type: string, base: string): boolean {
    for (let t: string | undefined = type; t; t = this.complex.get(t)?.base) if (t === base) return true;
    return false;
  }

  isComplex(t: TypeName): boolean {
    return t.ns === NS.vim25 && this.complex.has(t.name);
  }
}

function typeName(el: XmlElement, qname: string): TypeName {
  const { ns, local } = resolveQName(el, qname);
  return { ns, name: local };
}

function readComplex(name: string, el: XmlElement): ComplexType {
  let base: string | undefined;
  let seq: XmlElement | undefined;
  let simpleContent = false;
  for (const c of el.children) {
    if (c.local === 'sequence') seq = c;
    if (c.local === 'complexContent' || c.local === 'simpleContent') {
      simpleContent = c.local === 'simpleContent';
      const ext = c.children.find((x) => x.local === 'extension');
      if (ext) {
        const b = attr(ext, 'base');
        if (b && !simpleContent) base = resolveQName(ext, b).local;
        seq = ext.children.find((x) => x.local === 'sequence');
      }
    }
  }
  const own: SchemaField[] = (seq?.children ?? [])
    .filter((e) => e.local === 'element')
    .map((e) => ({
      name: attr(e, 'name') ?? '',
      type: typeName(e, attr(e, 'type') ?? 'xsd:anyType'),
      min: Number(attr(e, 'minOccurs') ?? '1'),
      list: attr(e, 'maxOccurs') === 'unbounded',
    }));
  return base ? { name, base, own, simpleContent } : { name, own, simpleContent };
}

/** Where the shipped files are: beside this module in src, or in src when running from dist. */
export function wsdlDir(): string {
  const candidates = [join(__dirname, 'wsdl'), join(__dirname, '..', '..', 'src', 'vsphere', 'wsdl')];
  const dir = candidates.find((d) => existsSync(join(d, 'vim25.xsd')));
  if (!dir) throw new Error(`vim25.xsd not found in ${candidates.join(' or ')}`);
  return dir;
}

export function shippedXsd(): string {
  return readFileSync(join(wsdlDir(), 'vim25.xsd'), 'utf8');
}

let shipped: Schema | undefined;
/** The shipped schema, parsed once. */
export function vim25Schema(): Schema {
  shipped ??= new Schema(shippedXsd());
  return shipped;
}
