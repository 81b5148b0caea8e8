import { decodeCursor, encodeCursor } from './cursor';

describe('page cursors', () => {
  it('round-trips', () => {
    const c = { createdAt: new Date('2026-11-26T02:00:00.123Z'), id: '0b0a6c1e-2f3a-4b5c-8d9e-0f1a2b3c4d5e' };
    expect(decodeCursor(encodeCursor(c))).toEqual(c);
  });
  it.each([
    ['not base64 json', 'bogus'],
    ['an empty string', ''],
    ['a wrong shape', Buffer.from(JSON.stringify({ a: 1 })).toString('base64url')],
    ['a non-uuid id', Buffer.from(JSON.stringify(['2026-11-26T02:00:00.000Z', "x' OR 1=1"])).toString('base64url')],
    ['a non-canonical date', Buffer.from(JSON.stringify(['2026-11-26', '0b0a6c1e-2f3a-4b5c-8d9e-0f1a2b3c4d5e'])).toString('base64url')],
  ])('rejects %s', (_n, raw) => {
    expect(decodeCursor(raw)).toBeNull();
  });
});
