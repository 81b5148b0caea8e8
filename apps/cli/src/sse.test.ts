import { SseParser } from './sse';

describe('SSE parser', () => {
  it('splits messages across arbitrary chunk boundaries and keeps the last id', () => {
    const text = 'retry: 2000\n\n: ping\n\nid: 7\nevent: progress\ndata: {"a":1}\n\nid: 8\r\nevent: job.succeeded\r\ndata: {"b":\r\ndata: 2}\r\n\r\n';
    for (const size of [1, 2, 3, 7, text.length]) {
      const p = new SseParser();
      const msgs = [];
      for (let i = 0; i < text.length; i += size) msgs.push(...p.push(text.slice(i, i + size)));
      expect(msgs).toEqual([
        { id: '7', event: 'progress', data: '{"a":1}' },
        { id: '8', event: 'job.succeeded', data: '{"b":\n2}' },
      ]);
      expect(p.lastEventId).toBe('8');
      expect(p.retryMs).toBe(2000);
      expect(p.comments).toBe(1);
    }
  });

  it('ignores a block without data and unknown fields', () => {
    const p = new SseParser();
    expect(p.push('event: x\n\nfoo: bar\ndata\n\n')).toEqual([{ id: null, event: 'message', data: '' }]);
  });
});
