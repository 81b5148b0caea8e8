import { attr, escapeXml, parseXml, xsiType, NS, XmlSyntaxError } from './xml';

describe('xml reader', () => {
  test('resolves namespaces by declaration, not by prefix', () => {
    const doc = parseXml(
      '<?xml version="1.0"?><!-- c --><e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body>'
        + '<R xmlns="urn:vim25" xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><v i:type="ArrayOfString"><s>a</s></v></R></e:Body></e:Envelope>',
    );
    expect(doc).toMatchObject({ ns: NS.soapenv, local: 'Envelope' });
    const v = doc.children[0]!.children[0]!.children[0]!;
    expect(v).toMatchObject({ ns: NS.vim25, local: 'v' });
    expect(xsiType(v)).toEqual({ ns: NS.vim25, local: 'ArrayOfString' });
    expect(v.children[0]).toMatchObject({ ns: NS.vim25, local: 's', text: 'a' });
  });

  test('an xsi:type with the xsd prefix resolves to the XML Schema namespace', () => {
    const el = parseXml(`<v xmlns:xsi="${NS.xsi}" xmlns:xsd="${NS.xsd}" xsi:type="xsd:int">3</v>`);
    expect(xsiType(el)).toEqual({ ns: NS.xsd, local: 'int' });
  });

  test('entities, character references, CDATA, attributes in either quote', () => {
    const el = parseXml(`<a x='1 &amp; 2' y="&lt;&#65;&#x42;&gt;">&quot;t&apos; <![CDATA[<raw&>]]></a>`);
    expect(attr(el, 'x')).toBe('1 & 2');
    expect(attr(el, 'y')).toBe('<AB>');
    expect(el.text).toBe(`"t' <raw&>`);
    expect(parseXml(`<a>${escapeXml('<&>"')}</a>`).text).toBe('<&>"');
  });

  test.each([
    ['<a><b></a>', /closes/],
    ['<a>', /unclosed/],
    ['<!DOCTYPE a><a/>', /DOCTYPE/],
    ['<p:a/>', /undeclared prefix/],
    ['<a>&bogus;</a>', /unknown entity/],
    ['<a/><b/>', /second root/],
    ['', /no root/],
  ])('refuses %s', (src, msg) => {
    expect(() => parseXml(src)).toThrow(XmlSyntaxError);
    expect(() => parseXml(src)).toThrow(msg);
  });
});
